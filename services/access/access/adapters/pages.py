"""The access service's web pages (D45): the applicant's form, the reviewer's checklist and vote,
the chair's decision with its conditions; plain HTML forms over the same commands as the JSON
API, behind the same signed-in accounts (``biostream.web_auth``), every value through
``html.escape``, a CSRF token bound to the session on every form."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import jwt
from aiohttp import web
from biostream.logs import get_logger
from biostream.release_vocabulary import RELEASABLE_FIELDS, RELEASABLE_RECORD_TYPES
from biostream.web_auth import Session, Sessions, verify_password
from multidict import MultiDictProxy

from access.adapters.risk_page import risk_section
from access.adapters.stream import Clock, CommandDesk, utc_now
from access.adapters.visas import VisaSigner, issue_visa
from access.adapters.web import COOKIE
from access.domain.application import Application
from access.handlers import (
    BadRequest,
    Decided,
    new_application_id,
    read_command,
    read_create,
)

Form = MultiDictProxy[Any]
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:70rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}header{display:flex;gap:1rem;
align-items:center;margin-bottom:1rem}.note{color:#666}.status{font-weight:bold}
.approved{color:#17632a}.rejected,.revoked{color:#a01818}fieldset{margin:.6rem 0}
label{display:inline-block;margin:.15rem .6rem .15rem 0}textarea{width:40rem;height:4rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto}#refusal{color:#a01818}
"""


def _e(value: object) -> str:
    return "" if value is None else html.escape(str(value))


def _secure(headers: MutableMapping[str, str]) -> None:
    headers["Cache-Control"] = "no-store"
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )


class AccessPages:
    """D45: the pages of applicants, reviewers and the chair."""

    def __init__(
        self,
        desk: CommandDesk,
        users: dict[str, str],
        sessions: Sessions,
        secure_cookie: bool,
        clock: Clock = utc_now,
        ready: Callable[[], bool] = lambda: True,
        visas: VisaSigner | None = None,
    ) -> None:
        self.visas = visas
        self.desk = desk
        self.users = users
        self.sessions = sessions
        self.secure_cookie = secure_cookie
        self.clock = clock
        self.ready = ready
        self._log = get_logger("access.pages")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/signin", self.signin_form),
            web.post("/signin", self.signin),
            web.post("/signout", self.signout),
            web.get("/", self.home),
            web.get("/apply", self.apply_form),
            web.post("/apply", self.apply),
            web.get("/application", self.application_page),
            web.post("/act", self.act),
        ]

    # ---------------------------------------------------------------------------- plumbing

    def _page(
        self, title: str, body: str, session: Session | None = None, status: int = 200
    ) -> web.Response:
        who = ""
        if session is not None:
            who = (
                f"<span class='note'>signed in as <b id='account'>{_e(session.account)}</b></span>"
                "<a href='/'>Applications</a><form method='post' action='/signout'>"
                f"<input type='hidden' name='csrf' value='{_e(self.sessions.csrf(session))}'>"
                "<button type='submit' id='signout'>Sign out</button></form>"
            )
        text = (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}"
            f"</title><style>{STYLE}</style></head><body><header><b>biostream data access"
            f"</b>{who}</header>{body}</body></html>"
        )
        response = web.Response(text=text, status=status, content_type="text/html")
        _secure(response.headers)
        return response

    def _session(self, request: web.Request) -> Session:
        session = self.sessions.read(request.cookies.get(COOKIE), int(time.time()))
        if session is None or session.account not in self.users:
            raise web.HTTPSeeOther("/signin")
        if not self.ready():
            raise web.HTTPServiceUnavailable(
                text="The access service is still reading its events. Try again in a moment.",
                headers={"Retry-After": "5"},
            )
        return session

    async def _form(self, request: web.Request, session: Session) -> Form:
        form = await request.post()
        if not self.sessions.csrf_ok(session, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="invalid or missing CSRF token")
        return form

    def _csrf(self, session: Session) -> str:
        return f"<input type='hidden' name='csrf' value='{_e(self.sessions.csrf(session))}'>"

    def _refused(self, session: Session, decided: Decided) -> web.Response:
        assert decided.refusal is not None
        back = f"/application?id={quote(decided.application_id, safe='')}"
        return self._page(
            "Refused",
            f"<h1>Refused</h1><p id='refusal'><code>{_e(decided.refusal.code)}</code>: "
            f"{_e(decided.refusal.reason)}</p><p>Nothing was recorded but the refusal itself."
            f" <a href='{back}'>Back</a></p>",
            session,
            409,
        )

    # ------------------------------------------------------------------------------ sign in

    async def signin_form(self, request: web.Request) -> web.Response:
        failed = request.query.get("failed") == "1"
        body = (
            ("<p id='error'>Unknown account or wrong password.</p>" if failed else "")
            + "<form method='post' action='/signin'><p><label>Account <input name='account' "
            "autocomplete='username' required></label></p><p><label>Password <input "
            "name='password' type='password' autocomplete='current-password' required></label>"
            "</p><button type='submit' id='signin'>Sign in</button></form>"
        )
        return self._page("Sign in", body)

    async def signin(self, request: web.Request) -> web.Response:
        form = await request.post()
        account, password = str(form.get("account", "")), str(form.get("password", ""))
        stored = self.users.get(account)
        if stored is None or not verify_password(password, stored):
            self._log.warning("login refused", outcome="refused")
            raise web.HTTPSeeOther("/signin?failed=1")
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE, self.sessions.issue(account, int(time.time())), httponly=True,
            samesite="Strict", secure=self.secure_cookie, path="/",
        )  # fmt: skip
        raise response

    async def signout(self, request: web.Request) -> web.Response:
        session = self._session(request)
        await self._form(request, session)
        response = web.HTTPSeeOther("/signin")
        response.del_cookie(COOKIE, path="/")
        raise response

    # -------------------------------------------------------------------------------- pages

    async def home(self, request: web.Request) -> web.Response:
        session = self._session(request)
        handler = self.desk.handler
        rows = "".join(
            f"<tr><td><a class='application' href='/application?id={quote(a.application_id, safe='')}'>"
            f"{_e(a.application_id)}</a></td><td>{_e(a.kind)}</td><td>{_e(a.form.title)}</td>"
            f"<td>{_e(a.dataset)}</td><td class='status {_e(a.status)}'>{_e(a.status)}</td>"
            f"<td>{_e(a.updated_at.date())}</td></tr>"
            for a in sorted(handler.applications.values(), key=lambda a: a.created_at)
            if handler.may_see(session.account, a)
        )
        member = handler.rules.board.board.member(session.account)
        role = f"board {member.role}" if member else "applicant"
        body = (
            f"<h1>Applications</h1><p class='note'>You are a {_e(role)}.</p>"
            + ("" if member else "<p><a id='new' href='/apply'>New application</a></p>")
            + "<table id='applications'><tr><th>Application</th><th>Kind</th><th>Title</th>"
            f"<th>Dataset</th><th>Status</th><th>Updated</th></tr>{rows}</table>"
        )
        return self._page("Applications", body, session)

    async def apply_form(self, request: web.Request) -> web.Response:
        session = self._session(request)
        types = "".join(
            f"<label><input type='checkbox' name='record_types' value='{t}'> {t}</label>"
            for t in sorted(RELEASABLE_RECORD_TYPES)
        )
        fields = "".join(
            f"<label><input type='checkbox' name='fields' value='{f}'> {f}</label>"
            for f in sorted(RELEASABLE_FIELDS)
        )

        def select(name: str, options: tuple[str, ...], chosen: str) -> str:
            items = "".join(
                f"<option{' selected' if o == chosen else ''}>{o}</option>" for o in options
            )
            return f"<select name='{name}'>{items}</select>"

        body = (
            "<h1>New application</h1><form method='post' action='/apply' id='apply'>"
            + self._csrf(session)
            + "<fieldset><legend>Who</legend><label>Institution code <input name='institution' "
            "required pattern='[A-Z0-9][A-Z0-9_-]{0,31}'></label><label>Team (account ids, "
            "comma-separated) <input name='team'></label></fieldset>"
            "<fieldset><legend>Why</legend><p><label>Title <input name='title' size='60' "
            "required></label></p><p><label>Purpose<br><textarea name='purpose' required>"
            "</textarea></label></p><p><label>Lay summary<br><textarea name='lay_summary' "
            "required></textarea></label></p></fieldset>"
            "<fieldset><legend>IRB approval</legend><label>Number <input name='irb_number' "
            "required></label><label>Date <input name='irb_date' type='date' required></label>"
            "<label>SHA-256 of the approval document <input name='irb_sha256' size='66' "
            "required pattern='[0-9a-f]{64}'></label></fieldset>"
            "<fieldset><legend>Data requested (a draft release policy)</legend><p><label>Dataset "
            "name <input name='dataset' required pattern='[a-z0-9][a-z0-9-]{1,62}'></label></p>"
            f"<p>Record types: {types}</p><p>Fields: {fields}</p><p>"
            "<label>Birth "
            + select("birth", ("year", "age_band_5", "drop"), "age_band_5")
            + "</label><label>Sex "
            + select("sex", ("keep", "drop"), "keep")
            + "</label><label>Address "
            + select("address", ("province", "district", "drop"), "province")
            + "</label><label>Event date "
            + select("event_date", ("month", "keep", "drop"), "month")
            + "</label><label>Free text "
            + select("free_text", ("drop", "scrub"), "drop")
            + "</label></p><p><label>k (smallest group) <input name='min_k' type='number' "
            "min='1' value='5'></label><label><input type='checkbox' name='consent_required' "
            "value='yes' checked> consent required</label><label>Duration (months) <input "
            "name='duration_months' type='number' min='1' max='60' value='12'></label></p>"
            "</fieldset><fieldset><legend>Data use (GA4GH DUO codes)</legend><label>Codes, "
            "space-separated (e.g. HMB IRB NPUNCU) <input name='duo_codes' size='40' required>"
            "</label></fieldset><p><button type='submit' id='submit'>Submit to the board</button>"
            "</p></form>"
        )
        return self._page("New application", body, session)

    async def apply(self, request: web.Request) -> web.Response:
        session = self._session(request)
        form = await self._form(request, session)
        team = [t.strip() for t in str(form.get("team", "")).split(",") if t.strip()]
        body = {
            "kind": "dataset",
            "form": {
                "applicant": session.account,
                "institution": str(form.get("institution", "")).strip(),
                "team": [{"account": t} for t in team],
                "title": str(form.get("title", "")),
                "purpose": str(form.get("purpose", "")),
                "lay_summary": str(form.get("lay_summary", "")),
                "irb": {
                    "number": str(form.get("irb_number", "")),
                    "date": str(form.get("irb_date", "")),
                    "document_sha256": str(form.get("irb_sha256", "")).strip().lower(),
                },
                "requested": {
                    "dataset": str(form.get("dataset", "")).strip(),
                    "record_types": [str(v) for v in form.getall("record_types", [])],
                    "fields": [str(v) for v in form.getall("fields", [])],
                    "generalisation": {
                        "birth": str(form.get("birth", "age_band_5")),
                        "sex": str(form.get("sex", "keep")),
                        "address": str(form.get("address", "province")),
                        "event_date": str(form.get("event_date", "month")),
                    },
                    "free_text": str(form.get("free_text", "drop")),
                    "min_k": _int(form.get("min_k"), 5),
                    "consent_required": form.get("consent_required") == "yes",
                    "duration_months": _int(form.get("duration_months"), 12),
                },
                "duo_codes": str(form.get("duo_codes", "")).split(),
            },
        }
        application_id = new_application_id()
        try:
            create = read_create(self.desk.handler, application_id, session.account, body)
        except BadRequest as error:
            return self._page(
                "Not accepted", f"<h1>Not accepted</h1><p id='refusal'>{_e(error)}</p>"
                "<p>Go back to correct the form.</p>", session, 400,
            )  # fmt: skip
        now = self.clock()
        submit = read_command("submit", session.account, {})
        decided = await self.desk.run(lambda h: h.decide_all(application_id, [create, submit], now))
        if decided.refusal is not None:
            return self._refused(session, decided)
        raise web.HTTPSeeOther(f"/application?id={quote(application_id, safe='')}")

    async def application_page(self, request: web.Request) -> web.Response:
        """D45: the application, and the commands the account may give on it; D48: a board
        member reads the disclosure-risk report before the checklist, vote and decision."""
        session = self._session(request)
        application = self.desk.handler.applications.get(request.query.get("id", ""))
        if application is None or not self.desk.handler.may_see(session.account, application):
            return self._page("Not found", "<p>No such application.</p>", session, 404)
        # D48: board members read the disclosure-risk report before the decision form.
        board = self.desk.handler.rules.board.board
        risk = risk_section(application) if board.member(session.account) is not None else ""
        return self._page(
            application.form.title,
            self._details(application) + risk + self._actions(application, session),
            session,
        )

    def _details(self, a: Application) -> str:
        form = a.form
        match = self.desk.handler.rules.duo_match_of(a)  # D47: shown to the board
        requested = form.requested
        rows = [
            ("Status", f"<span id='status' class='status {_e(a.status)}'>{_e(a.status)}</span>"
             + (f" <span class='note'>({_e(a.reason)})</span>" if a.reason else "")),
            ("Kind", _e(a.kind)),
            ("Applicant", f"{_e(form.applicant)} ({_e(form.institution)})"),
            ("Team", _e(", ".join(m.account for m in form.team)) or "none"),
            ("Purpose", _e(form.purpose)),
            ("Lay summary", _e(form.lay_summary)),
            ("IRB", f"{_e(form.irb.number)} of {_e(form.irb.date)}, document "
             f"<code>{_e(form.irb.document_sha256[:16])}&hellip;</code>"),
            ("DUO", _e(" ".join(form.duo_codes))),
            ("DUO match", f"<span id='duo-match' class='status'>{_e(match.outcome)}</span>"
             + "".join(f"<br><span class='note'>{_e(r)}</span>" for r in match.reasons)),
        ]  # fmt: skip
        if requested is not None:
            rows += [
                ("Dataset", _e(requested.dataset)),
                ("Record types", _e(", ".join(sorted(requested.record_types)))),
                ("Fields", _e(", ".join(sorted(requested.fields)))),
                ("Generalisation", _e(json.dumps(requested.generalisation.policy()))),
                ("k, consent, months", _e(f"k={requested.min_k}, consent "
                 f"{'required' if requested.consent_required else 'not required'}, "
                 f"{requested.duration_months} months")),
            ]  # fmt: skip
        if a.visas:
            rows.append(("Visas issued", _e(", ".join(
                f"{v.subject} (until {v.expires_at.date()})" for v in a.visas
            ))))  # fmt: skip
        if a.recused:
            rows.append(("Recused", _e(", ".join(sorted(a.recused)))))
        table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        reviews = "".join(
            f"<tr><td>{_e(m)}</td><td>{sum(r.answers.values())} of {len(r.answers)} yes</td>"
            f"<td>{_e(r.note)}</td><td class='vote'>{_e(a.votes.get(m, ''))}</td></tr>"
            for m, r in sorted(a.reviews.items())
        )
        out = (
            f"<h1>{_e(form.title)}</h1><p class='note'>{_e(a.application_id)}</p>"
            f"<table id='application'>{table}</table>"
        )
        if reviews:
            out += (
                "<h2>Reviews</h2><table id='reviews'><tr><th>Member</th><th>Checklist</th>"
                f"<th>Note</th><th>Vote</th></tr>{reviews}</table>"
            )
        if a.approval is not None:
            conditions = a.approval.conditions.model_dump(mode="json", exclude_defaults=True)
            out += (
                f"<div id='approval'><h2>Approved until {_e(a.approval.valid_until.date())}</h2>"
                f"<p>Approvers: {_e(', '.join(a.approval.approvers))}</p>"
                f"<p>Conditions: <code id='conditions'>{_e(json.dumps(conditions))}</code></p>"
                f"<h3>Release policy</h3><pre id='policy'>"
                f"{_e(json.dumps(a.approval.policy, indent=2, ensure_ascii=False))}</pre></div>"
            )
        released = self.desk.handler.releases.get(a.dataset or "")
        if released is not None and released.application_id == a.application_id:
            # D49: where the decision stands on the stream (the version this service signed).
            record = released.record
            status = record["status"] + (
                f" ({record['withdrawn_reason']})" if record["withdrawn_reason"] else ""
            )
            out += (
                f"<p id='published'>On <code>access.policies</code>: {_e(record['dataset'])} "
                f"version {record['version']}, {_e(status)}, readable by "
                f"<code>{_e(record['principal'])}</code></p>"
            )
        return out

    def _actions(self, a: Application, session: Session) -> str:
        account = session.account
        board = self.desk.handler.rules.board.board
        member = board.member(account)
        target = f"<input type='hidden' name='id' value='{_e(a.application_id)}'>" + self._csrf(
            session
        )
        parts: list[str] = []
        if member is not None and account not in a.recused:
            if a.status in ("submitted", "under_review") and account not in a.reviews:
                items = "".join(
                    f"<tr><td>{_e(item.question)}</td><td><label><input type='radio' "
                    f"name='answer:{_e(item.id)}' value='yes' required> yes</label><label>"
                    f"<input type='radio' name='answer:{_e(item.id)}' value='no'> no</label>"
                    "</td></tr>"
                    for item in board.checklist
                )
                parts.append(
                    "<h2>Your review</h2><form method='post' action='/act' id='review'>"
                    f"{target}<input type='hidden' name='command' value='review'>"
                    f"<table id='checklist'>{items}</table><p><label>Note<br><textarea "
                    "name='note'></textarea></label></p><button type='submit' "
                    "id='submit-review'>Record my review</button></form>"
                )
            elif a.status == "under_review" and account not in a.votes:
                buttons = "".join(
                    f"<button type='submit' name='vote' value='{v}' id='vote-{v}'>{v}</button>"
                    for v in ("approve", "reject", "abstain")
                )
                parts.append(
                    "<h2>Your vote</h2><form method='post' action='/act' id='vote'>"
                    f"{target}<input type='hidden' name='command' value='vote'>{buttons}</form>"
                )
            if member.role == "chair" and a.status in ("submitted", "under_review"):
                fields = "".join(
                    f"<label><input type='checkbox' name='fields_removed' value='{f}'> {f}</label>"
                    for f in sorted(RELEASABLE_FIELDS)
                )
                parts.append(
                    "<h2>The board's decision</h2><form method='post' action='/act' "
                    f"id='decide'>{target}<input type='hidden' name='command' value='decide'>"
                    "<p><label>Outcome <select name='outcome' id='outcome'><option>approve"
                    "</option><option>reject</option><option>return</option></select></label>"
                    "</p><fieldset><legend>Conditions</legend><label>k at least <input "
                    "name='min_k' type='number' min='2' id='min-k'></label><label><input "
                    "type='checkbox' name='no_free_text' value='yes' id='no-free-text'> no free "
                    "text</label><label>expires in (months) <input name='expires_in_months' "
                    "type='number' min='1' max='60' id='expires'></label><label><input "
                    "type='checkbox' name='consent_required' value='yes'> consent required"
                    f"</label><p>Remove fields: {fields}</p><p><label>Other conditions (one a "
                    "line)<br><textarea name='text'></textarea></label></p></fieldset><p><label>"
                    "Reason (to reject or return)<br><textarea name='reason'></textarea></label>"
                    "</p><button type='submit' id='record-decision'>Record the decision</button>"
                    "</form>"
                )
            if member.role == "chair" and a.status == "approved":
                parts.append(
                    "<h2>Revoke</h2><form method='post' action='/act' id='revoke'>"
                    f"{target}<input type='hidden' name='command' value='revoke'><label>Reason "
                    "<input name='reason' required></label><button type='submit'>Revoke</button>"
                    "</form>"
                )
        members = {a.form.applicant} | {m.account for m in a.form.team}
        if (
            account in members and a.status == "approved" and a.kind != "reidentification"
            and self.visas is not None
        ):  # fmt: skip
            parts.append(
                "<h2>Your visa</h2><p class='note'>A GA4GH Passport visa "
                "(ControlledAccessGrants) for this dataset, signed by the board, valid until "
                "the approval's end date.</p><form method='post' action='/act' id='visa'>"
                f"{target}<input type='hidden' name='command' value='visa'><button "
                "type='submit' id='get-visa'>Get my visa</button></form>"
            )
        if account == a.form.applicant:
            if a.status in ("draft", "submitted", "returned", "under_review"):
                parts.append(
                    "<form method='post' action='/act' id='withdraw'>"
                    f"{target}<input type='hidden' name='command' value='withdraw'>"
                    "<button type='submit'>Withdraw the application</button></form>"
                )
            if a.status in ("approved", "expired", "revoked"):
                parts.append(
                    "<h2>Close-out</h2><form method='post' action='/act' id='close-out'>"
                    f"{target}<input type='hidden' name='command' value='close-out'><label>"
                    "SHA-256 of the signed destruction attestation <input "
                    "name='destruction_sha256' size='66' required></label><button "
                    "type='submit'>Close out</button></form>"
                )
        return "".join(parts)

    async def act(self, request: web.Request) -> web.Response:
        session = self._session(request)
        form = await self._form(request, session)
        application_id = str(form.get("id", ""))
        application = self.desk.handler.applications.get(application_id)
        if application is None or not self.desk.handler.may_see(session.account, application):
            return self._page("Not found", "<p>No such application.</p>", session, 404)
        name = str(form.get("command", ""))
        if name == "visa":
            return await self._visa(session, application_id)
        try:
            command = read_command(name, session.account, _command_body(name, form))
        except BadRequest as error:
            return self._page(
                "Not accepted", f"<h1>Not accepted</h1><p id='refusal'>{_e(error)}</p>",
                session, 400,
            )  # fmt: skip
        now = self.clock()
        decided = await self.desk.run(lambda h: h.decide(application_id, command, now))
        if decided.refusal is not None:
            return self._refused(session, decided)
        raise web.HTTPSeeOther(f"/application?id={quote(application_id, safe='')}")

    async def _visa(self, session: Session, application_id: str) -> web.Response:
        """D47: the member's visa, shown once: the token and what it says."""
        if self.visas is None:
            return self._page("No visas", "<p>No visa key is configured.</p>", session, 503)
        decided, token = await issue_visa(
            self.desk, self.visas, application_id, session.account, self.clock()
        )
        if token is None:
            return self._refused(session, decided)
        claims = jwt.decode(token, options={"verify_signature": False})
        back = f"/application?id={quote(application_id, safe='')}"
        return self._page(
            "Your visa",
            "<h1>Your visa</h1><p>Keep it like a password: whoever holds it is granted access "
            f"until {_e(decided.events[0].expires_at.date())}.</p>"  # type: ignore[union-attr]
            f"<pre id='visa-token'>{_e(token)}</pre><h2>What it says</h2><pre id='visa-claims'>"
            f"{_e(json.dumps(claims, indent=2, ensure_ascii=False))}</pre>"
            f"<p><a href='{back}'>Back to the application</a></p>",
            session,
        )


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _command_body(name: str, form: Form) -> dict[str, Any]:
    """A page's form fields as the command's request body (the API's words)."""
    if name == "review":
        answers = {
            key.removeprefix("answer:"): str(value) == "yes"
            for key, value in form.items()
            if key.startswith("answer:")
        }
        return {"answers": answers, "note": str(form.get("note", ""))}
    if name == "decide":
        conditions: dict[str, Any] = {
            "no_free_text": form.get("no_free_text") == "yes",
            "consent_required": form.get("consent_required") == "yes",
            "fields_removed": [str(v) for v in form.getall("fields_removed", [])],
            "text": [t.strip() for t in str(form.get("text", "")).splitlines() if t.strip()],
        }
        for number in ("min_k", "expires_in_months"):
            if str(form.get(number, "")).strip():
                conditions[number] = _int(form.get(number), 0)
        return {
            "outcome": str(form.get("outcome", "")),
            "reason": str(form.get("reason", "")),
            "conditions": conditions,
        }
    return {key: str(value) for key, value in form.items() if key not in ("csrf", "id", "command")}
