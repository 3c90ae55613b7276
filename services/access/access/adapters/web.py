"""The access service's JSON API (aiohttp), behind signed-in accounts (``biostream.web_auth``).

``POST /login`` (account, password) sets an HttpOnly, SameSite=Strict session cookie and answers
the session's CSRF token, which every writing request carries as ``X-CSRF-Token``. The acting
account of every command is the session's, never a field of the request (D45). Board members
see every application; anyone else only those they apply for or are a team member of.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from biostream.logs import get_logger
from biostream.web_auth import Session, Sessions, verify_password

from access.adapters.stream import Clock, CommandDesk, utc_now
from access.adapters.visas import JWKS_PATH, VisaSigner, issue_visa
from access.domain.application import Application, VisaIssued
from access.handlers import (
    BadRequest,
    Decided,
    application_view,
    new_application_id,
    read_command,
    read_create,
)

COOKIE = "access_session"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _error(status: type[web.HTTPException], error: str, **more: Any) -> web.HTTPException:
    return status(text=_json({"error": error, **more}), content_type="application/json")


class AccessApi:
    """D45: the API of applicants and board members; every route but ``/login`` needs a
    session, and answers 503 until the replay of ``access.events`` has caught up."""

    def __init__(
        self,
        desk: CommandDesk,
        users: dict[str, str],
        sessions: Sessions,
        secure_cookie: bool,
        clock: Clock = utc_now,
        ready: Callable[[], bool] = lambda: True,
        pages: list[web.RouteDef] | None = None,
        visas: VisaSigner | None = None,
    ) -> None:
        self.pages = pages or []
        self.visas = visas
        self.desk = desk
        self.users = users
        self.sessions = sessions
        self.secure_cookie = secure_cookie
        self.clock = clock
        self.ready = ready
        self._log = get_logger("access.web")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes(
            [
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/api/board", self.board),
                web.get("/api/applications", self.list_applications),
                web.post("/api/applications", self.create),
                web.get("/api/applications/{id}", self.show),
                web.post("/api/applications/{id}/visa", self.visa),
                web.post("/api/applications/{id}/{command}", self.command),
                web.get(JWKS_PATH, self.jwks),
                *self.pages,
            ]
        )
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            # The pages answer for themselves (a page, not JSON).
            if request.path.startswith("/api/") and not self.ready():
                raise _error(web.HTTPServiceUnavailable, "catching up")
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["Cache-Control"] = "no-store"
            raise
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def _session(self, request: web.Request, writing: bool = False) -> Session:
        session = self.sessions.read(request.cookies.get(COOKIE), int(time.time()))
        if session is None or session.account not in self.users:
            raise _error(web.HTTPUnauthorized, "sign in first (POST /login)")
        if writing and not self.sessions.csrf_ok(session, request.headers.get("X-CSRF-Token")):
            raise _error(web.HTTPForbidden, "missing or invalid X-CSRF-Token")
        return session

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            raise _error(web.HTTPBadRequest, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise _error(web.HTTPBadRequest, "the body is a JSON object")
        return body

    # ---------------------------------------------------------------------------- sessions

    async def login(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        account, password = str(body.get("account", "")), str(body.get("password", ""))
        stored = self.users.get(account)
        if stored is None or not verify_password(password, stored):
            self._log.warning("login refused", outcome="refused")
            raise _error(web.HTTPUnauthorized, "unknown account or wrong password")
        token = self.sessions.issue(account, int(time.time()))
        session = self.sessions.read(token, int(time.time()))
        assert session is not None
        response = web.json_response(
            {"account": account, "csrf": self.sessions.csrf(session)}, dumps=_json
        )
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="Strict", secure=self.secure_cookie, path="/"
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        self._session(request, writing=True)
        response = web.json_response({"signed_out": True})
        response.del_cookie(COOKIE, path="/")
        return response

    # ------------------------------------------------------------------------------- reads

    def _may_see(self, account: str, application: Application) -> bool:
        return self.desk.handler.may_see(account, application)

    async def board(self, request: web.Request) -> web.Response:
        self._session(request)
        board = self.desk.handler.rules.board
        return web.json_response(
            {**board.board.model_dump(mode="json"), "sha256": board.sha256}, dumps=_json
        )

    async def list_applications(self, request: web.Request) -> web.Response:
        session = self._session(request)
        status = request.query.get("status")
        found = [
            a.summary()
            for a in sorted(self.desk.handler.applications.values(), key=lambda a: a.created_at)
            if self._may_see(session.account, a) and (status is None or a.status == status)
        ]
        return web.json_response({"applications": found}, dumps=_json)

    async def show(self, request: web.Request) -> web.Response:
        session = self._session(request)
        application = self.desk.handler.applications.get(request.match_info["id"])
        if application is None or not self._may_see(session.account, application):
            raise _error(web.HTTPNotFound, "no such application")
        return web.json_response(
            application_view(application, self.desk.handler.rules), dumps=_json
        )

    # ------------------------------------------------------------------------------ writes

    async def create(self, request: web.Request) -> web.Response:
        session = self._session(request, writing=True)
        body = await self._body(request)
        application_id = new_application_id()
        now = self.clock()
        try:
            command = read_create(self.desk.handler, application_id, session.account, body)
        except BadRequest as error:
            raise _error(web.HTTPBadRequest, str(error)) from None
        decided = await self.desk.run(lambda h: h.decide(application_id, command, now))
        return self._answer(decided, created=True)

    async def command(self, request: web.Request) -> web.Response:
        session = self._session(request, writing=True)
        body = await self._body(request)
        application_id, name = request.match_info["id"], request.match_info["command"]
        application = self.desk.handler.applications.get(application_id)
        if application is None or not self._may_see(session.account, application):
            raise _error(web.HTTPNotFound, "no such application")
        try:
            command = read_command(name, session.account, body)
        except BadRequest as error:
            raise _error(web.HTTPBadRequest, str(error)) from None
        now = self.clock()
        decided = await self.desk.run(lambda h: h.decide(application_id, command, now))
        return self._answer(decided)

    async def visa(self, request: web.Request) -> web.Response:
        """D47: the signed-in member's visa for an approved application: the ``visa_issued``
        event (and its audit event) committed first, then the token signed and answered."""
        session = self._session(request, writing=True)
        if self.visas is None:
            raise _error(web.HTTPServiceUnavailable, "no visa key configured")
        application_id = request.match_info["id"]
        application = self.desk.handler.applications.get(application_id)
        if application is None or not self._may_see(session.account, application):
            raise _error(web.HTTPNotFound, "no such application")
        decided, token = await issue_visa(
            self.desk, self.visas, application_id, session.account, self.clock()
        )
        self._answer(decided)  # raises the refusal
        issued = decided.events[0]
        assert isinstance(issued, VisaIssued)
        return web.json_response(
            {"application_id": application_id, "jti": issued.jti,
             "expires_at": issued.expires_at.isoformat(), "visa": token},
            dumps=_json,
        )  # fmt: skip

    async def jwks(self, request: web.Request) -> web.Response:
        """D47: the visa key's public half, for anyone verifying a visa (no session)."""
        if self.visas is None:
            raise _error(web.HTTPNotFound, "no visa key configured")
        return web.json_response(self.visas.jwks(), content_type="application/jwk-set+json")

    def _answer(self, decided: Decided, created: bool = False) -> web.Response:
        if decided.refusal is not None:
            # 409: the request was understood; the application's state does not allow it.
            raise _error(
                web.HTTPConflict,
                "refused",
                code=decided.refusal.code,
                reason=decided.refusal.reason,
                application_id=decided.application_id,
            )
        application = self.desk.handler.applications[decided.application_id]
        return web.json_response(
            {
                "application_id": decided.application_id,
                "status": application.status,
                "events": [e.event_id for e in decided.events],
            },
            status=201 if created else 200,
            dumps=_json,
        )
