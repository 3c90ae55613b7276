"""The JSON API (D45) without a broker (its writer records each transaction): sessions, CSRF,
who sees what, a refusal as 409 with its code, an unreadable form as 400, 503 while catching up,
and nothing applied when the transaction fails."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from access import testing
from access.adapters.stream import CommandDesk
from access.adapters.web import AccessApi
from access.handlers import SERVICE, AccessHandler, AccessMetrics
from aiohttp.test_utils import TestClient, TestServer
from biostream.codec import default_codec
from biostream.envelopes import Envelopes
from biostream.topics import Topics
from biostream.web_auth import Sessions, hash_password
from prometheus_client import CollectorRegistry

PASSWORD = secrets.token_urlsafe(12)
ACCOUNTS = (testing.APPLICANT, "other-applicant", "chair", "rev-a")


def build(writer: testing.RecordingWriter, ready: bool = True) -> AccessApi:
    codec, topics = default_codec(), Topics()
    handler = AccessHandler(
        testing.rules(), codec, topics, Envelopes(SERVICE, "User:svc-access", codec, topics),
        AccessMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    users = {a: hash_password(PASSWORD) for a in ACCOUNTS}
    return AccessApi(
        CommandDesk(handler, writer), users, Sessions(secrets.token_bytes(32), 3600), False,
        ready=lambda: ready,
    )  # fmt: skip


async def client(api: AccessApi) -> TestClient:  # type: ignore[type-arg]
    test_client: TestClient = TestClient(TestServer(api.app()))  # type: ignore[type-arg]
    await test_client.start_server()
    return test_client


async def login(c: TestClient, account: str) -> dict[str, str]:  # type: ignore[type-arg]
    response = await c.post("/login", json={"account": account, "password": PASSWORD})
    assert response.status == 200
    return {"X-CSRF-Token": (await response.json())["csrf"]}


@pytest.fixture
async def writer() -> AsyncIterator[testing.RecordingWriter]:
    yield testing.RecordingWriter()


async def test_sessions_csrf_visibility_and_refusals(writer: testing.RecordingWriter) -> None:
    api = build(writer)
    applicant = await client(api)
    other = await client(api)
    try:
        assert (await applicant.get("/api/applications")).status == 401
        bad = await applicant.post("/login", json={"account": "chair", "password": "wrong"})
        assert bad.status == 401
        csrf = await login(applicant, testing.APPLICANT)
        form: dict[str, Any] = testing.form().model_dump(mode="json")
        no_token = await applicant.post("/api/applications", json={"form": form})
        assert no_token.status == 403 and writer.transactions == []
        unreadable = await applicant.post(
            "/api/applications", json={"form": {**form, "irb": None}}, headers=csrf
        )
        assert unreadable.status == 400 and "irb" in (await unreadable.json())["error"]
        created = await applicant.post("/api/applications", json={"form": form}, headers=csrf)
        assert created.status == 201
        app_id = (await created.json())["application_id"]
        assert len(writer.transactions) == 1  # the event and its audit event, together
        assert [m.topic for m in writer.transactions[0]] == [
            "access.events", "audit.events.svc-access",
        ]  # fmt: skip

        other_csrf = await login(other, "other-applicant")
        assert (await other.get(f"/api/applications/{app_id}")).status == 404
        assert (await (await other.get("/api/applications")).json())["applications"] == []
        stolen = await other.post(f"/api/applications/{app_id}/withdraw", headers=other_csrf)
        assert stolen.status == 404

        refused = await applicant.post(
            f"/api/applications/{app_id}/vote", json={"vote": "approve"}, headers=csrf
        )
        body = await refused.json()
        assert refused.status == 409 and body["code"] == "ILLEGAL_TRANSITION"
        # the refusal's audit event, alone in its transaction
        assert [m.topic for m in writer.transactions[-1]] == ["audit.events.svc-access"]
        unknown = await applicant.post(f"/api/applications/{app_id}/dance", headers=csrf)
        assert unknown.status == 400
    finally:
        await applicant.close()
        await other.close()


async def test_nothing_is_applied_when_the_transaction_fails() -> None:
    api = build(testing.RecordingWriter(failing=True))
    c = await client(api)
    try:
        csrf = await login(c, testing.APPLICANT)
        form = testing.form().model_dump(mode="json")
        response = await c.post("/api/applications", json={"form": form}, headers=csrf)
        assert response.status == 500
        assert api.desk.handler.applications == {}
    finally:
        await c.close()


async def test_everything_but_login_waits_for_the_replay() -> None:
    c = await client(build(testing.RecordingWriter(), ready=False))
    try:
        await login(c, "chair")
        assert (await c.get("/api/applications")).status == 503
    finally:
        await c.close()
