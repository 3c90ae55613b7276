"""The stewards' web pages and JSON API (aiohttp).

Every route except /login needs a steward session; pages that show identifying data send
``Cache-Control: no-store`` (every response here does), and each such view is audited. The
decision form carries a CSRF token bound to the session; the cookie is HttpOnly, SameSite=Strict.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from aiohttp import web
from biostream.logs import get_logger
from biostream.web_auth import Session, Sessions, verify_password

from review.adapters.stream import Clock, Publisher, utc_now
from review.domain.desk import DECISIONS, DISPLAY_FIELDS, TaskView
from review.handlers import ReviewHandler, UnknownTask

COOKIE = "review_session"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DECISION_LABELS = {
    "SAME_PERSON": "Same person",
    "DIFFERENT_PEOPLE": "Different people",
    "ESCALATE": "Not sure, escalate",
}

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left}th{background:#f3f3f3}.SAME{background:#e3f6e3}.DIFFERENT{background:#fbe4e4}
.partial{background:#fff6d6}.w{font-variant-numeric:tabular-nums;text-align:right}
header{display:flex;gap:1rem;align-items:center;margin-bottom:1rem}.note{color:#666}
textarea{width:30rem;height:4rem}button{margin-right:.5rem}
"""


def _page(title: str, body: str, account: str | None = None, csrf: str = "") -> str:
    who = ""
    if account:
        who = (
            f'<span class="note">signed in as <b id="steward">{html.escape(account)}</b></span>'
            '<a href="/">Queue</a><form method="post" action="/logout">'
            f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
            '<button type="submit" id="logout">Sign out</button></form>'
        )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><header><b>biostream review desk</b>{who}"
        f"</header>{body}</body></html>"
    )


def _secure(headers: MutableMapping[str, str]) -> None:
    """D-review-2: identifying data must not outlive the page in the browser or any proxy:
    ``Cache-Control: no-store``, no framing, no referrer, a strict CSP on every response."""
    headers["Cache-Control"] = "no-store"
    headers["Pragma"] = "no-cache"
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# Signing in and out show nothing read from the topics.
OPEN_WHILE_CATCHING_UP = frozenset({"/login", "/logout"})
CATCHING_UP = (
    "The review desk is still reading its topics up to where they ended when it started. Until "
    "then its queue could miss tasks or show decided ones as open, so it shows nothing and takes "
    "no decision. Try again in a moment."
)


def catching_up(api: bool) -> web.HTTPServiceUnavailable:
    """D26: every page, the API and the decision form answer 503 until the desk has read its
    topics to the end offsets they had at its start."""
    headers = {"Retry-After": "5"}
    if api:
        body = _json({"error": "catching up", "detail": CATCHING_UP})
        return web.HTTPServiceUnavailable(
            text=body, content_type="application/json", headers=headers
        )
    page = _page("Catching up", f"<h1>Catching up</h1><p id='catching-up'>{CATCHING_UP}</p>")
    return web.HTTPServiceUnavailable(text=page, content_type="text/html", headers=headers)


def _e(value: object) -> str:
    return "" if value is None else html.escape(str(value))


class DeskApp:
    """D-review-1: the desk's pages and JSON API on aiohttp, on the event loop of its aiokafka
    reader; every value through ``html.escape``, every route but the login behind a session."""

    def __init__(
        self,
        handler: ReviewHandler,
        publisher: Publisher,
        users: dict[str, str],
        sessions: Sessions,
        secure_cookie: bool,
        clock: Clock = utc_now,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.handler = handler
        self.ready = ready
        self.publisher = publisher
        self.users = users
        self.sessions = sessions
        self.secure_cookie = secure_cookie
        self.clock = clock
        self._log = get_logger("review.web")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers])
        app.add_routes(
            [
                web.get("/login", self.login_form),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/", self.queue),
                web.get("/task", self.task_page),
                web.post("/decide", self.decide),
                web.get("/api/tasks", self.api_tasks),
                web.get("/api/task", self.api_task),
            ]
        )
        return app

    # ------------------------------------------------------------------------- plumbing

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path not in OPEN_WHILE_CATCHING_UP and not self.ready():
                raise catching_up(request.path.startswith("/api/"))
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and refusals are raised, not returned
            _secure(exc.headers)
            raise
        _secure(response.headers)
        return response

    def _session(self, request: web.Request) -> Session | None:
        session = self.sessions.read(request.cookies.get(COOKIE), int(time.time()))
        if session is not None and session.account not in self.users:
            return None  # account removed since the cookie was issued
        return session

    def _html(self, text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html")

    # ---------------------------------------------------------------------------- login

    async def login_form(self, request: web.Request) -> web.Response:
        failed = request.query.get("failed") == "1"
        body = (
            ("<p id='error'>Unknown account or wrong password.</p>" if failed else "")
            + "<form method='post' action='/login'><p><label>Account <input name='account' "
            "autocomplete='username' required></label></p><p><label>Password <input "
            "name='password' type='password' autocomplete='current-password' required></label>"
            "</p><button type='submit' id='login'>Sign in</button></form>"
        )
        return self._html(_page("Sign in", body))

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        account, password = str(form.get("account", "")), str(form.get("password", ""))
        stored = self.users.get(account)
        if stored is None or not verify_password(password, stored):
            self._log.warning("login refused", outcome="refused")
            raise web.HTTPSeeOther("/login?failed=1")
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE,
            self.sessions.issue(account, int(time.time())),
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
            path="/",
        )
        self._log.info("login", outcome="ok")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        session = self._session(request)
        form = await request.post()
        if session is None or not self.sessions.csrf_ok(session, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="forbidden")
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    def _page_session(self, request: web.Request) -> Session:
        session = self._session(request)
        if session is None:
            raise web.HTTPSeeOther("/login")
        return session

    def _api_session(self, request: web.Request) -> Session:
        session = self._session(request)
        if session is None:
            raise web.HTTPUnauthorized(
                text='{"error":"steward login required"}', content_type="application/json"
            )
        return session

    # ---------------------------------------------------------------------------- pages

    async def queue(self, request: web.Request) -> web.Response:
        session = self._page_session(request)
        hospital = request.query.get("hospital") or None
        now = self.clock()
        desk = self.handler.desk
        options = "".join(
            f"<option value='{_e(h)}'{' selected' if h == hospital else ''}>{_e(h)}</option>"
            for h in desk.hospitals()
        )
        rows = "".join(
            f"<tr><td><a class='task' href='/task?id={quote(t['task_id'], safe='')}'>{_e(t['task_id'])}</a>"
            f"</td><td>{_e(t['hospital'])}</td><td>{_e(t['created_at'])}</td>"
            f"<td class='w'>{_e(t['score'])}</td><td>{_e(t['reason'])}</td>"
            f"<td>{'escalated' if t['escalated'] else ''}</td></tr>"
            for t in (task.summary(now) for task in desk.open_tasks(hospital))
        )
        body = (
            f"<h1>Open review tasks</h1><form method='get' action='/'><label>Hospital "
            f"<select name='hospital'><option value=''>all</option>{options}</select></label> "
            "<button type='submit'>Filter</button></form>"
            "<table id='queue'><tr><th>Task</th><th>Hospital</th><th>Opened</th>"
            f"<th>Score</th><th>Why</th><th></th></tr>{rows}</table>"
            f"<p class='note'>{len(desk.open_tasks(hospital))} open, oldest first.</p>"
        )
        return self._html(_page("Review queue", body, session.account, self.sessions.csrf(session)))

    async def task_page(self, request: web.Request) -> web.Response:
        session = self._page_session(request)
        task_id = request.query.get("id", "")
        view = self.handler.desk.view(task_id)
        if view is None:
            return self._html(_page("Not found", "<p>No such task.</p>", session.account), 404)
        await self.publisher.publish([self.handler.viewed(task_id, session.account, self.clock())])
        return self._html(
            _page(
                f"Task {task_id}",
                self._task_body(view, session),
                session.account,
                self.sessions.csrf(session),
            )
        )

    def _task_body(self, view: TaskView, session: Session) -> str:
        task = view.task
        head = "".join(
            f"<th>{_e(s.title)}<br><span class='note'>person {_e(s.person_id)}</span></th>"
            for s in view.sides
        )
        rows = ""
        for name, label in DISPLAY_FIELDS:
            comparison = view.agreement.get(name)
            css = ""
            level, weight = "", ""
            if comparison is not None:
                css = comparison.level if comparison.level in ("SAME", "DIFFERENT") else "partial"
                level, weight = comparison.level, f"{comparison.weight:+.2f}"
            cells = "".join(f"<td>{_e(s.values.get(name))}</td>" for s in view.sides)
            rows += (
                f"<tr class='{css}' data-field='{name}'><th>{label}</th>{cells}"
                f"<td class='level'>{level}</td><td class='w'>{weight}</td></tr>"
            )
        table = (
            f"<table id='comparison'><tr><th></th>{head}<th>Agreement</th><th>Weight</th></tr>"
            f"{rows}<tr><th>Match weight</th><td colspan='{len(view.sides)}'></td><td></td>"
            f"<td class='w' id='score'>{task.score:+.2f}</td></tr></table>"
        )
        intro = (
            f"<h1>Task {_e(task.task_id)}</h1><p>Hospital {_e(task.hospital)}, opened "
            f"{_e(task.created_at.isoformat())}. Linkage's reasons: <code>{_e(task.reason)}"
            "</code></p>"
        )
        if view.decided is not None:
            outcome = (
                f"<div id='outcome'><h2>Decided: {_e(DECISION_LABELS[view.decided.decision])}</h2>"
                f"<p>by {_e(view.decided.reviewer)} at {_e(view.decided.decided_at.isoformat())}"
                "</p>"
            )
            if view.resulting_person:
                outcome += (
                    f"<p>The record now belongs to person <b id='resulting-person'>"
                    f"{_e(view.resulting_person)}</b> ({view.resulting_members} hospital "
                    "patient records).</p>"
                )
            else:
                outcome += (
                    "<p id='pending'>Waiting for the linkage service to apply the decision "
                    "&hellip; <a href=''>refresh</a></p>"
                )
            if view.decided.decision != "ESCALATE":
                return intro + table + outcome + "</div>"
            intro += outcome + "</div>"
        candidates = "".join(
            f"<option value='{_e(p)}'>{_e(p)}</option>" for p in task.candidate_person_ids
        )
        choose = (
            f"<p><label>Candidate for &ldquo;same person&rdquo; <select name='candidate'>"
            f"{candidates}</select></label></p>"
            if len(task.candidate_person_ids) > 1
            else ""
        )
        buttons = "".join(
            f"<button type='submit' name='decision' value='{d}' id='decide-{d.lower()}'>"
            f"{DECISION_LABELS[d]}</button>"
            for d in DECISIONS
        )
        form = (
            "<form method='post' action='/decide' id='decision'>"
            f"<input type='hidden' name='task_id' value='{_e(task.task_id)}'>"
            f"<input type='hidden' name='csrf' value='{self.sessions.csrf(session)}'>{choose}"
            "<p><label>Reason<br><textarea name='reason' id='reason' required></textarea>"
            f"</label></p><p>{buttons}</p></form>"
        )
        return intro + table + form

    async def decide(self, request: web.Request) -> web.Response:
        session = self._page_session(request)
        form = await request.post()
        if not self.sessions.csrf_ok(session, str(form.get("csrf", ""))):
            self._log.warning("decision refused", reason_code="CSRF_TOKEN_INVALID")
            raise web.HTTPForbidden(text="invalid or missing CSRF token")
        task_id = str(form.get("task_id", ""))
        candidate = str(form.get("candidate", "")) or None
        try:
            messages = self.handler.decide(
                task_id,
                str(form.get("decision", "")),
                str(form.get("reason", "")),
                session.account,
                self.clock(),
                candidate,
            )
        except UnknownTask:
            return self._html(
                _page("Closed", "<p>This task is closed or unknown.</p>", session.account), 409
            )
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from error
        await self.publisher.publish(messages)
        # Before the redirect: the task page must show the decision just recorded, not race
        # the desk's own consumer reading it back from the topic.
        self.handler.published(messages)
        raise web.HTTPSeeOther(f"/task?id={quote(task_id, safe='')}")

    # ------------------------------------------------------------------------------ API

    async def api_tasks(self, request: web.Request) -> web.Response:
        self._api_session(request)
        now = self.clock()
        hospital = request.query.get("hospital") or None
        tasks = [t.summary(now) for t in self.handler.desk.open_tasks(hospital)]
        return web.json_response({"tasks": tasks}, dumps=_json)

    async def api_task(self, request: web.Request) -> web.Response:
        session = self._api_session(request)
        task_id = request.query.get("id", "")
        view = self.handler.desk.view(task_id)
        if view is None:
            raise web.HTTPNotFound(text='{"error":"no such task"}', content_type="application/json")
        await self.publisher.publish([self.handler.viewed(task_id, session.account, self.clock())])
        body: dict[str, Any] = {
            "task": view.task.summary(self.clock()),
            "sides": [
                {"title": s.title, "person_id": s.person_id, "values": s.values} for s in view.sides
            ],
            "comparisons": [
                {"field": c.field, "level": c.level, "weight": c.weight}
                for c in view.task.comparisons
            ],
            "decided": view.decided.decision if view.decided else None,
            "resulting_person_id": view.resulting_person,
        }
        return web.json_response(body, dumps=_json)
