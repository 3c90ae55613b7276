"""The web pages (D45) without a broker: sign-in first, a form without its CSRF token refused,
the recused member offered no review, a refusal shown with its code, and the expiry sweep of the
running service writing an approval's expired event once its end date has come."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
from typing import Any

from access import testing
from access.adapters.pages import AccessPages
from access.adapters.service import AccessService
from access.adapters.stream import CommandDesk
from access.adapters.web import AccessApi
from access.domain.commands import Create, Decide, Review, Submit, Vote
from access.handlers import SERVICE, AccessHandler, AccessMetrics
from access.settings import AccessSettings
from aiohttp.test_utils import TestClient, TestServer
from biostream.codec import default_codec
from biostream.contracts import ACCESS_EVENT
from biostream.envelopes import Envelopes
from biostream.topics import Topics
from biostream.web_auth import Sessions, hash_password
from prometheus_client import CollectorRegistry

PASSWORD = secrets.token_urlsafe(12)
CODEC = default_codec()


def desk(writer: testing.RecordingWriter) -> CommandDesk:
    topics = Topics()
    handler = AccessHandler(
        testing.rules(), CODEC, topics, Envelopes(SERVICE, "User:svc-access", CODEC, topics),
        AccessMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    return CommandDesk(handler, writer)


async def browser(command_desk: CommandDesk) -> TestClient:  # type: ignore[type-arg]
    users = {a: hash_password(PASSWORD) for a in (testing.APPLICANT, "rev-applicant-home", "rev-a")}
    sessions = Sessions(secrets.token_bytes(32), 3600)
    pages = AccessPages(command_desk, users, sessions, False)
    api = AccessApi(command_desk, users, sessions, False, pages=pages.routes())
    client: TestClient = TestClient(TestServer(api.app()))  # type: ignore[type-arg]
    await client.start_server()
    return client


async def sign_in(client: TestClient, account: str) -> str:  # type: ignore[type-arg]
    response = await client.post("/signin", data={"account": account, "password": PASSWORD})
    assert response.status == 200 and "id='applications'" in await response.text()
    return re.findall(r"name='csrf' value='([^']+)'", await response.text())[0]


def submitted(command_desk: CommandDesk) -> str:
    decided = command_desk.handler.decide_all(
        "APP-1",
        [Create("APP-1", testing.APPLICANT, "dataset", testing.form()), Submit(testing.APPLICANT)],
        testing.NOW,
    )
    command_desk.handler.applied(decided.events)
    return "APP-1"


async def test_pages_need_a_session_and_a_csrf_token() -> None:
    client = await browser(desk(testing.RecordingWriter()))
    try:
        response = await client.get("/application?id=APP-1", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/signin"
        csrf = await sign_in(client, testing.APPLICANT)
        assert (await client.post("/apply", data={"title": "x"})).status == 403
        unreadable = await client.post("/apply", data={"csrf": csrf, "title": "x"})
        assert unreadable.status == 400 and "Not accepted" in await unreadable.text()
    finally:
        await client.close()


async def test_the_recused_member_gets_no_review_form_and_a_refusal_shows_its_code() -> None:
    command_desk = desk(testing.RecordingWriter())
    app_id = submitted(command_desk)
    client = await browser(command_desk)
    try:
        csrf = await sign_in(client, "rev-applicant-home")
        page = await (await client.get(f"/application?id={app_id}")).text()
        assert "id='review'" not in page and "rev-applicant-home" in page
        data: dict[str, Any] = {"csrf": csrf, "id": app_id, "command": "review"}
        data |= {f"answer:{k}": "yes" for k in testing.CHECKLIST_YES}
        refused = await client.post("/act", data=data)
        assert refused.status == 409 and "RECUSED_REVIEWER" in await refused.text()
        other = await browser(command_desk)
        try:
            await sign_in(other, "rev-a")
            assert "id='review'" in await (await other.get(f"/application?id={app_id}")).text()
        finally:
            await other.close()
    finally:
        await client.close()


async def test_the_sweep_expires_an_approval_at_its_end_date() -> None:
    writer = testing.RecordingWriter()
    command_desk = desk(writer)
    app_id = submitted(command_desk)
    handler = command_desk.handler
    for member in ("rev-a", "rev-b"):
        for command in (Review(member, testing.CHECKLIST_YES), Vote(member, "approve")):
            handler.applied(handler.decide(app_id, command, testing.NOW).events)
    handler.applied(handler.decide(app_id, Decide("chair", "approve"), testing.NOW).events)
    end = handler.applications[app_id].valid_until
    assert end is not None

    class Replayed:
        ready = True

    settings = AccessSettings(expiry_check_s=0.01)
    service = AccessService(
        settings, CollectorRegistry(), Replayed(), writer, command_desk,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        clock=lambda: end + dt.timedelta(seconds=1),
    )  # fmt: skip
    stop = asyncio.Event()
    sweep = asyncio.create_task(service._sweep(stop))
    for _ in range(500):
        if handler.applications[app_id].status == "expired":
            break
        await asyncio.sleep(0.01)
    stop.set()
    await sweep
    assert handler.applications[app_id].status == "expired"
    [expired] = [
        CODEC.decode(m.value, ACCESS_EVENT)
        for m in writer.transactions[-1]
        if m.topic == "access.events"
    ]
    assert (expired["event_type"], expired["actor"]) == ("expired", "system")
