"""The access service (D45) on the real broker, as its own principal ``svc-access`` with exactly
the ACLs of deploy/acl-matrix.yaml: an applicant submits through the JSON API, three reviewers
complete the checklist and vote in their own sessions, the chair approves with conditions; the
service restarted rebuilds the same state from ``access.events`` alone; a refused command (a
recused reviewer's vote) writes no event and is audited with its reason code; the command line
lists, shows and says what is wrong with a refused command (exit 1)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from access import testing
from biostream.codec import default_codec
from biostream.contracts import ACCESS_EVENT, AUDIT_EVENT
from biostream.settings import KafkaSettings
from biostream_dev.access import kafka_environment
from biostream_harness.access_board import ROLE, access_board, running
from biostream_harness.linkage_stream import read_all

from .conftest import topic_messages

pytestmark = pytest.mark.integration

CODEC = default_codec()
ACCOUNTS = (testing.APPLICANT, "chair", *testing.REVIEWERS, "rev-applicant-home")


class Client:
    """One person's session on the API (their own cookie jar and CSRF token)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url, self.csrf = http, url, ""

    async def login(self, account: str, password: str) -> None:
        async with self.http.post(
            f"{self.url}/login", json={"account": account, "password": password}
        ) as response:
            assert response.status == 200, await response.text()
            self.csrf = (await response.json())["csrf"]

    async def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with self.http.post(
            f"{self.url}{path}", json=body or {}, headers={"X-CSRF-Token": self.csrf}
        ) as response:
            return response.status, await response.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(f"{self.url}{path}") as response:
            return response.status, await response.json()


@asynccontextmanager
async def people(url: str, passwords: dict[str, str]) -> AsyncIterator[dict[str, Client]]:
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in passwords]
    try:
        clients = {a: Client(s, url) for a, s in zip(passwords, sessions, strict=True)}
        for account, client in clients.items():
            await client.login(account, passwords[account])
        yield clients
    finally:
        for session in sessions:
            await session.close()


async def access_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "access", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_apply_review_decide_restart_and_refuse(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    board = await access_board(
        kafka, topic_prefix, testing.BOARD_YAML.replace("RULE", "majority"), ACCOUNTS, tmp_path
    )
    topics, passwords, users, role = board.topics, board.passwords, board.users, ROLE
    service_kafka, board_file = board.kafka, board.settings.board_file
    form = testing.form().model_dump(mode="json")

    async with running(board) as service:
        url = f"http://127.0.0.1:{service.web_port}"
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.get(f"{url}/api/applications") as response,
        ):
            assert response.status == 401
        async with people(url, passwords) as who:
            applicant, chair = who[testing.APPLICANT], who["chair"]
            status, created = await applicant.post(
                "/api/applications", {"kind": "dataset", "form": form}
            )
            assert status == 201, created
            app_id = created["application_id"]
            path = f"/api/applications/{app_id}"
            # a write without the session's CSRF token is refused
            async with applicant.http.post(f"{url}{path}/submit", json={}) as response:
                assert response.status == 403
            assert (await applicant.post(f"{path}/submit"))[0] == 200
            for member in ("rev-a", "rev-b", "rev-c"):
                status, body = await who[member].post(
                    f"{path}/review", {"answers": testing.CHECKLIST_YES, "note": "fine"}
                )
                assert status == 200, body
            status, before = await chair.get(path)
            assert status == 200 and before["status"] == "under_review"
            assert before["recused"] == ["rev-applicant-home"]

            # Refused: a recused reviewer's vote. Nothing changes; the refusal is audited.
            status, refusal = await who["rev-applicant-home"].post(
                f"{path}/vote", {"vote": "approve"}
            )
            assert status == 409 and refusal["code"] == "RECUSED_REVIEWER"
            assert "recused" in refusal["reason"]
            assert (await chair.get(path))[1] == before

            for member, vote in (("rev-a", "approve"), ("rev-b", "approve"), ("rev-c", "reject")):
                assert (await who[member].post(f"{path}/vote", {"vote": vote}))[0] == 200
            status, decided = await chair.post(
                f"{path}/decide",
                {"outcome": "approve", "conditions": {"min_k": 10, "no_free_text": True}},
            )
            assert status == 200 and decided["status"] == "approved", decided
            status, approved = await chair.get(path)
            # the applicant sees their own application; another applicant would not
            assert (await applicant.get(path))[1] == approved
    policy = approved["approval"]["policy"]
    assert policy["k_anonymity"] == {"min_k": 10} and "value_text" not in policy["fields"]
    assert approved["approval"]["approvers"] == ["rev-a", "rev-b"]

    # Every transition is an event on access.events, keyed by the application.
    events = await read_all(
        kafka, CODEC, topics.access_events, ACCESS_EVENT, lambda out: len(out) >= 10
    )
    assert [e["event_type"] for e in events] == [
        # D48: the submission asks for the disclosure-risk report in the same transaction
        "created", "submitted", "risk_requested", "reviewed", "reviewed", "reviewed", "voted",
        "voted", "voted", "approved",
    ]  # fmt: skip
    assert [e["sequence"] for e in events] == list(range(1, 11))
    audits = await read_all(
        kafka, CODEC, topics.audit_events_of(role), AUDIT_EVENT, lambda out: len(out) >= 11
    )
    refused = [a for a in audits if a["action"] == "access.refused"]
    assert [(a["reason_code"], a["outcome"]) for a in refused] == [("RECUSED_REVIEWER", "refused")]
    assert {a["principal"] for a in audits} == {f"User:{topic_prefix}{role}"}
    assert sorted(a["action"] for a in audits if a["action"] != "access.refused") == sorted(
        f"access.{e['event_type']}" for e in events
    )

    # Restarted: the same state, rebuilt from access.events (the service has no other store).
    async with running(board) as again:
        url = f"http://127.0.0.1:{again.web_port}"
        async with people(url, {"chair": passwords["chair"]}) as who:
            status, rebuilt = await who["chair"].get(f"/api/applications/{app_id}")
    assert status == 200 and rebuilt == approved

    # The command line: lists and shows for the signed-in account; a refused command exits 1
    # naming the reason, and writes no event.
    env = {
        **os.environ, **kafka_environment(service_kafka), "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
        "BIOSTREAM_BOARD_FILE": str(board_file), "BIOSTREAM_USERS": users,
    }  # fmt: skip
    applicant_env = {**env, "BIOSTREAM_PASSWORD": passwords[testing.APPLICANT]}
    code, out, err = await access_cli(applicant_env, "list", "--account", testing.APPLICANT)
    assert code == 0, err
    [line] = [json.loads(x) for x in out.splitlines()]
    assert (line["application_id"], line["status"]) == (app_id, "approved")
    code, out, err = await access_cli(applicant_env, "show", app_id, "--account", testing.APPLICANT)
    assert code == 0 and json.loads(out)["approval"] == approved["approval"], err
    chair_env = {**env, "BIOSTREAM_PASSWORD": passwords["chair"]}
    code, _, err = await access_cli(chair_env, "decide", app_id, "--account", "chair",
                                    "--outcome", "reject", "--reason", "again")  # fmt: skip
    assert code == 1 and "ILLEGAL_TRANSITION" in err and "approved" in err
    code, _, err = await access_cli(
        {**env, "BIOSTREAM_PASSWORD": "wrong"}, "list", "--account", "chair"
    )
    assert code == 2 and "wrong password" in err
    assert len(await topic_messages(kafka, topics.access_events)) == 10
