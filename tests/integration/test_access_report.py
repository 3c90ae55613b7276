"""Visas and the processing record on the real broker (D47): the access service (as
``svc-access``) approves an application; a team member gets their visa from the command line,
verified with PyJWT against the service's JWKS; a board member's request is refused (exit 1);
the audit service chains the access service's audit events into the ledger, and `audit report`
(as the auditor) lists the approval: applicant, votes, the chair, conditions, DUO codes, end
date, visas, the state now."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from functools import partial
from pathlib import Path

import aiohttp
import jwt
import pytest
from access import testing
from access.adapters.stream import utc_now
from access.domain.commands import Command, Decide
from access.domain.forms import Conditions
from access.handlers import AccessHandler
from biostream.settings import KafkaSettings
from biostream_dev import access
from biostream_dev.access import kafka_environment
from biostream_harness.access_board import access_board, running
from biostream_harness.inprocess import Keys, running_pipeline

from .test_audit_live import audit_cli

pytestmark = pytest.mark.integration

ACCOUNTS = (testing.APPLICANT, "analyst-1", "chair", *testing.REVIEWERS, "rev-applicant-home")
ISSUER = "https://access.test.example"


async def access_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "access", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_members_visa_and_the_approval_in_the_processing_record(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "visa.key"
    key_file.write_bytes(testing.visa_key_pem())
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {"auditor": principals["auditor"]})
    await access.wait_until_usable(credentials)
    auditor = credentials.settings("auditor")
    settings = {"checkpoint_every_entries": 5, "checkpoint_every_seconds": 1.0}
    async with running_pipeline(kafka, topic_prefix, [], Keys.fresh(), audit=settings) as observer:
        board = await access_board(
            kafka, topic_prefix, testing.BOARD_YAML.replace("RULE", "majority"), ACCOUNTS, tmp_path
        )
        board.settings.visa_key_file = key_file
        board.settings.visa_issuer = ISSUER
        conditions = Conditions(min_k=10, no_free_text=True, expires_in_months=6)
        commands: list[Command] = [
            *testing.approval_commands("APP-R1")[:-1], Decide("chair", "approve", conditions),
        ]  # fmt: skip
        async with running(board) as service:
            for command in commands:
                await service.desk.run(
                    partial(AccessHandler.decide, application_id="APP-R1", command=command,
                            now=utc_now())
                )  # fmt: skip
            approved = service.desk.handler.applications["APP-R1"]
            assert approved.status == "approved" and approved.valid_until is not None
            url = f"http://127.0.0.1:{service.web_port}"
            async with (
                aiohttp.ClientSession() as anonymous,
                anonymous.get(f"{url}/.well-known/jwks.json") as response,
            ):
                assert response.status == 200
                jwks = await response.json()

        # The command line: the team member's visa, verified against the published key.
        env = {
            **os.environ, **kafka_environment(board.kafka), "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
            "BIOSTREAM_BOARD_FILE": str(board.settings.board_file), "BIOSTREAM_USERS": board.users,
            "BIOSTREAM_VISA_KEY_FILE": str(key_file), "BIOSTREAM_VISA_ISSUER": ISSUER,
        }  # fmt: skip
        member_env = {**env, "BIOSTREAM_PASSWORD": board.passwords["analyst-1"]}
        code, out, err = await access_cli(
            member_env, "visa", "--application", "APP-R1", "--account", "analyst-1"
        )
        assert code == 0, err
        answer = json.loads(out)
        token = answer["visa"]
        key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
        claims = jwt.decode(token, key, algorithms=["EdDSA"], issuer=ISSUER)
        assert claims["sub"] == "analyst-1" and claims["jti"] == answer["jti"]
        assert claims["exp"] == int(approved.valid_until.timestamp())
        assert (
            claims["ga4gh_visa_v1"]["value"] == "https://drb.test.example/datasets/diabetes-cohort"
        )
        assert token not in err and str(key_file.read_text()) not in out + err
        chair_env = {**env, "BIOSTREAM_PASSWORD": board.passwords["chair"]}
        code, out, err = await access_cli(
            chair_env, "visa", "--application", "APP-R1", "--account", "chair"
        )
        assert code == 1 and "NOT_MEMBER" in err and out == ""

        # The audit service chains every access audit event (the refusal too) into the ledger.
        expected = len(commands) + 2  # the events, the visa, the refusal
        view = observer.view
        for _ in range(200):
            await observer.poll(timeout_ms=200)
            access_events = [a for a in view.audit_events if a["action"].startswith("access.")]
            if len(access_events) >= expected and len(view.ledger) >= 1:
                ledger_ids = set(view.ledger_event_ids())
                if {a["event_id"] for a in access_events} <= ledger_ids:
                    break
        else:
            pytest.fail("the access audit events did not reach the ledger")

    reported = audit_cli(auditor, topic_prefix, "report")
    assert reported.returncode == 0, reported.stderr
    [record] = json.loads(reported.stdout)
    assert record["dataset"] == "diabetes-cohort" and record["counts"]["released"] == 0
    [approval] = record["approvals"]
    assert approval["application_id"] == "APP-R1" and approval["state"] == "approved"
    assert (approval["applicant"], approval["team"]) == (testing.APPLICANT, ["analyst-1"])
    assert approval["votes"] == {"rev-a": "approve", "rev-b": "approve"}
    assert approval["duo_codes"] == ["HMB", "DUO:0000021", "NPUNCU"]
    decision = approval["decision"]
    assert (decision["by"], decision["approvers"]) == ("chair", ["rev-a", "rev-b"])
    assert decision["conditions"] == {"min_k": 10, "no_free_text": True, "expires_in_months": 6}
    assert dt.datetime.fromisoformat(decision["valid_until"]) == approved.valid_until
    assert [v["subject"] for v in approval["visas"]] == ["analyst-1"]
