"""No page or API of the review desk returns identifying data without a steward login; forged or
missing sessions and CSRF tokens are refused; identifying pages are never cached."""

from __future__ import annotations

import re
from urllib.parse import quote

import aiohttp
import pytest
from biostream.contracts import AUDIT_EVENT, REVIEW_DECISION
from biostream.settings import KafkaSettings
from biostream_harness.linkage_stream import read_all
from biostream_harness.review_desk import CODEC, IDENTIFYING, STEWARD, RunningDesk, running_desk

pytestmark = pytest.mark.integration


def assert_nothing_identifying(body: str) -> None:
    leaked = [value for value in IDENTIFYING if value in body]
    assert leaked == []


async def fetch(
    client: aiohttp.ClientSession, method: str, url: str, **kwargs: object
) -> tuple[int, str, aiohttp.ClientResponse]:
    async with client.request(method, url, allow_redirects=False, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.text(), response


async def login(desk: RunningDesk, client: aiohttp.ClientSession, password: str) -> int:
    status, _, _ = await fetch(
        client, "POST", f"{desk.url}/login", data={"account": STEWARD, "password": password}
    )
    return status


async def test_without_login_nothing_identifying_is_returned(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    async with running_desk(kafka, topic_prefix) as desk:
        await desk.publish_grey_pair()
        task_id = await desk.wait_for_task()
        task = quote(task_id, safe="")
        pages = ["/", f"/task?id={task}", "/login", "/?hospital=H002"]
        apis = ["/api/tasks", f"/api/task?id={task}"]

        # Health, readiness and metrics (on the metrics port): the backlog the alert rule uses.
        metrics_url = f"http://127.0.0.1:{desk.review.metrics_port}"
        async with aiohttp.ClientSession() as probe:
            assert (await fetch(probe, "GET", f"{metrics_url}/readyz"))[0] == 200
            _, metrics, _ = await fetch(probe, "GET", f"{metrics_url}/metrics")
            assert "biostream_linkage_review_backlog_tasks 1.0" in metrics
            assert "biostream_review_oldest_task_age_seconds" in metrics

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anonymous:
            for path in pages:
                status, body, response = await fetch(anonymous, "GET", desk.url + path)
                assert_nothing_identifying(body)
                assert response.headers["Cache-Control"] == "no-store"
                if path != "/login":
                    assert (status, response.headers["Location"]) == (303, "/login")
            for path in apis:
                status, body, _ = await fetch(anonymous, "GET", desk.url + path)
                assert status == 401
                assert_nothing_identifying(body)
            # A decision without a session is not recorded.
            status, body, response = await fetch(
                anonymous, "POST", f"{desk.url}/decide",
                data={"task_id": task_id, "decision": "SAME_PERSON", "reason": "x", "csrf": "x"},
            )  # fmt: skip
            assert (status, response.headers["Location"]) == (303, "/login")
            assert desk.review.handler.desk.decided == {}

        # A wrong password and a forged cookie are no better than no login.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as intruder:
            status = await login(desk, intruder, "not-the-password")
            assert status == 303
            status, body, _ = await fetch(intruder, "GET", f"{desk.url}/api/task?id={task}")
            assert status == 401
            forged = f"{STEWARD}|n|9999999999"
            intruder.cookie_jar.update_cookies({"review_session": f"{forged}.c2lnbmF0dXJl"})
            status, body, _ = await fetch(intruder, "GET", f"{desk.url}/api/task?id={task}")
            assert status == 401
            assert_nothing_identifying(body)

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as steward:
            assert await login(desk, steward, desk.password) == 303
            status, body, response = await fetch(steward, "GET", f"{desk.url}/api/task?id={task}")
            assert status == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert "하은" in body and "01098761234" in body
            status, body, response = await fetch(steward, "GET", f"{desk.url}/task?id={task}")
            assert status == 200 and "올림픽로" in body
            assert response.headers["Cache-Control"] == "no-store"
            # Signed in but without the form's CSRF token: refused, nothing recorded.
            status, _, _ = await fetch(
                steward, "POST", f"{desk.url}/decide",
                data={"task_id": task_id, "decision": "SAME_PERSON", "reason": "x", "csrf": ""},
            )  # fmt: skip
            assert status == 403
            assert desk.review.handler.desk.decided == {}
            # Signing out (with the page's token) ends the session in this browser.
            _, page, _ = await fetch(steward, "GET", f"{desk.url}/")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf is not None
            status, _, _ = await fetch(
                steward, "POST", f"{desk.url}/logout", data={"csrf": csrf.group(1)}
            )
            assert status == 303
            status, body, _ = await fetch(steward, "GET", f"{desk.url}/api/task?id={task}")
            assert status == 401
            assert_nothing_identifying(body)


async def test_a_web_decision_names_the_signed_in_account(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    """D35 (kept from D-review-2): on the pages, the reviewer is the account the steward signed in
    with, in the ReviewDecision and in the desk's `review.decided` event, whose principal is the
    desk's own (`svc-review`); no form field can name anyone else."""
    async with running_desk(kafka, topic_prefix) as desk:
        await desk.publish_grey_pair()
        task_id = await desk.wait_for_task()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as steward:
            assert await login(desk, steward, desk.password) == 303
            _, page, _ = await fetch(
                steward, "GET", f"{desk.url}/task?id={quote(task_id, safe='')}"
            )
            csrf = re.search(r"name='csrf' value='([^']+)'", page)
            assert csrf is not None
            status, _, _ = await fetch(
                steward, "POST", f"{desk.url}/decide",
                data={"task_id": task_id, "decision": "ESCALATE", "reason": "unsure",
                      "csrf": csrf.group(1), "reviewer": "someone-else", "steward": "x"},
            )  # fmt: skip
            assert status == 303
        [decision] = await read_all(
            kafka, CODEC, desk.topics.review_decisions, REVIEW_DECISION, lambda out: len(out) == 1
        )
        assert decision["reviewer"] == STEWARD
        events = await read_all(
            kafka, CODEC, desk.topics.audit_events_of("svc-review"), AUDIT_EVENT,
            lambda out: any(e["action"] == "review.decided" for e in out),
        )  # fmt: skip
        [decided] = [e for e in events if e["action"] == "review.decided"]
        assert decided["principal"] == f"User:{topic_prefix}svc-review"
        assert f"steward:{STEWARD}" in decided["outputs"]
        assert "someone-else" not in str(events)
