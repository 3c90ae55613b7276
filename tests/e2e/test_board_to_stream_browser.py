"""D49 acceptance, from a board decision in the browser to the data stream (real broker, Debian's
Chromium driven by Playwright): an applicant submits in the web page; two reviewers and the chair
decide in their own sessions; the approval appears; the access service has signed and published
the policy; the pseudonymizer, running as its own process and principal, picks it up without a
restart and grants the project's principal its topics; the project's consumer toolkit
(``biostream-consumer sync``, as that principal) receives the history and the records fed after
the approval; the chair revokes in the web page and the toolkit reports it can no longer read.
The approved application page is kept as docs/access-approved.png when run with
BIOSTREAM_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from access import testing
from access.adapters.service import AccessService
from access.domain.commands import Decide, Review, Submit, Vote
from access.handlers import AccessHandler, Decided, read_create
from biostream.contracts import (
    CLINICAL_RECORD,
    CURATED_RECORD,
    LINK_DECISION,
    RELEASE_POLICY_VERSION,
)
from biostream.kafka import ensure_topics, plain_producer
from biostream.release_policies import public_key_hex, write_signing_key
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_harness.access_board import access_board, running
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import async_playwright
from pseudonymizer.adapters.keys import derived_key
from pseudonymizer.domain.pseudonyms import pseudonym

from tests.e2e.test_access_board_browser import CHROMIUM, signed_in
from tests.integration.test_policy_enforcement import clinical, committed_offsets, decision, drain
from tests.integration.test_pseudonymizer_flow import CODEC, Topic

pytestmark = pytest.mark.e2e

DATASET = "diabetes-cohort"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "access-approved.png"
UPDATE_SCREENSHOT = os.environ.get("BIOSTREAM_UPDATE_SCREENSHOT") == "1"
ACCOUNTS = (testing.APPLICANT, "chair", *testing.REVIEWERS)
BIN = Path(sys.executable).parent


def admin_environment(kafka: KafkaSettings) -> dict[str, str]:
    """The ACL-admin connection (D46) as ``BIOSTREAM_ACL_ADMIN__*`` for a child process."""
    return {
        name.replace("BIOSTREAM_KAFKA__", "BIOSTREAM_ACL_ADMIN__"): value
        for name, value in access.kafka_environment(kafka).items()
    }


async def toolkit_sync(env: dict[str, str]) -> tuple[int, str]:
    """One ``biostream-consumer sync`` run as the project: its exit code and what it printed."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "biostream-consumer"), "sync", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode or 0, " ".join(out.decode(errors="replace").split())


async def reidentify(env: dict[str, str], target: str, approval: str) -> tuple[int, str]:
    """``pseudonymizer reidentify`` as the steward: its exit code and what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pseudonymizer", "reidentify", "--dataset", DATASET,
        "--pseudonym", target, "--approval", approval, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode or 0, " ".join(out.decode(errors="replace").split())


async def reidentification_approved(service: AccessService, basis_id: str) -> str:
    """A re-identification application through the service's desk (what the JSON API does):
    submitted, two members approve, the chair decides. Its id."""
    app = "APP-R-0001"
    now = dt.datetime.now(dt.UTC)

    def create(h: AccessHandler) -> Decided:
        body = {
            "kind": "reidentification",
            "form": testing.form("reidentification", DATASET).model_dump(mode="json"),
        }
        created = read_create(h, app, testing.APPLICANT, body)
        assert created.basis is not None and created.basis.application_id == basis_id
        return h.decide_all(app, [created, Submit(testing.APPLICANT)], now)

    steps: list[Callable[[AccessHandler], Decided]] = [create]
    for member in ("rev-a", "rev-b"):
        steps.append(
            partial(
                AccessHandler.decide,
                application_id=app,
                command=Review(member, testing.CHECKLIST_YES),
                now=now,
            )
        )
        steps.append(
            partial(
                AccessHandler.decide, application_id=app, command=Vote(member, "approve"), now=now
            )
        )
    steps.append(partial(AccessHandler.decide, application_id=app,
                         command=Decide("chair", "approve"), now=now))  # fmt: skip
    for step in steps:
        assert (await service.desk.run(step)).refusal is None
    return app


def held(output: str) -> int:
    match = re.search(r"(\d+) records held", output)
    return int(match.group(1)) if match else -1


async def test_a_board_decision_in_the_browser_reaches_the_project_and_a_revocation_ends_it(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], [DATASET]))
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    project = access.Principal(f"{topic_prefix}project-{DATASET}", ())  # no ACL of its own
    credentials = await asyncio.to_thread(
        access.apply, kafka,
        {"svc-pseudonymizer": principals["svc-pseudonymizer"], "project": project,
         "steward": principals["steward"]},
    )  # fmt: skip
    await access.wait_until_usable(credentials)

    board_key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "board.k1.key"
    write_signing_key(key_file, board_key)  # generated here, owner-only, never printed
    (tmp_path / "policies").mkdir()
    root_key = secrets.token_hex(32)
    pseudonymizer_env = {
        **os.environ,
        **access.kafka_environment(credentials.settings("svc-pseudonymizer")),
        **admin_environment(kafka),
        "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
        "BIOSTREAM_POLICY_DIR": str(tmp_path / "policies"),
        "BIOSTREAM_PSEUDONYM_ROOT_KEY": root_key,
        "BIOSTREAM_BOARD_KEYS": json.dumps({"k1": public_key_hex(board_key.public_key())}),
        "BIOSTREAM_DEAD_LETTER_KEY": secrets.token_hex(32),
        "BIOSTREAM_POLL_TIMEOUT_MS": "100",
        "BIOSTREAM_METRICS_PORT": "0",
    }
    steward_env = {
        **os.environ,
        **access.kafka_environment(credentials.settings("steward")),
        "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
        "BIOSTREAM_POLICY_DIR": str(tmp_path / "policies"),
        "BIOSTREAM_PSEUDONYM_ROOT_KEY": root_key,
        "BIOSTREAM_BOARD_KEYS": pseudonymizer_env["BIOSTREAM_BOARD_KEYS"],
    }
    project_env = {
        **os.environ,
        **access.kafka_environment(credentials.settings("project")),
        "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
        "BIOSTREAM_DATASET": DATASET,
        "BIOSTREAM_DATABASE": str(tmp_path / "project.duckdb"),
        "BIOSTREAM_READ_TIMEOUT_S": "20",
    }

    rng = random.Random(49)
    refs = [f"pr_{i:03d}" for i in range(20)]
    history = [clinical(n, rng.choice(refs), rng) | {"resource_type": "Condition"}
               for n in range(300)]  # fmt: skip
    live = [clinical(n, rng.choice(refs), rng) | {"resource_type": "Observation"}
            for n in range(300, 350)]  # fmt: skip
    producer = plain_producer(kafka, "test-feed")
    await producer.start()

    async def send(topic: str, contract: str, records: list[dict[str, Any]]) -> None:
        futures = [
            await producer.send(topic, CODEC.encode(contract, r), key=r["patient_ref"].encode())
            for r in records
        ]
        await asyncio.gather(*futures)

    policies = Topic(kafka, topics.access_policies, RELEASE_POLICY_VERSION)
    await policies.start()
    log = (tmp_path / "pseudonymizer.log").open("wb")
    pseudonymizer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pseudonymizer", "run", env=pseudonymizer_env,
        stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    board = await access_board(
        kafka, topic_prefix, testing.BOARD_YAML.replace("RULE", "majority"), ACCOUNTS,
        tmp_path, signing_key_file=key_file,
    )  # fmt: skip
    screenshot = tmp_path / "access-approved.png"
    try:
        await send(topics.link_decisions, LINK_DECISION,
                   [decision(ref, f"P{i}") for i, ref in enumerate(refs)])  # fmt: skip
        await send(topics.clinical_records, CLINICAL_RECORD, history)
        group = f"{topic_prefix}pseudonymizer"
        for _ in range(1200):  # the pseudonymizer has handled the history live, with no dataset
            if await committed_offsets(kafka, group, topics.clinical_records) == len(history):
                break
            await asyncio.sleep(0.1)
        code, output = await toolkit_sync(project_env)
        assert code == 3 and "refuses this principal access" in output  # not approved yet

        async with running(board) as service, async_playwright() as playwright:
            url = f"http://127.0.0.1:{service.web_port}"
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                applicant = await signed_in(
                    browser, url, testing.APPLICANT, board.passwords[testing.APPLICANT]
                )
                await applicant.click("#new")
                await applicant.fill("input[name=institution]", testing.INSTITUTION)
                await applicant.fill("input[name=team]", "analyst-1")
                await applicant.fill("input[name=title]", "Type 2 diabetes outcomes")
                await applicant.fill("textarea[name=purpose]", "Outcomes of diabetes treatment")
                await applicant.fill("textarea[name=lay_summary]", "How well treatments work.")
                await applicant.fill("input[name=irb_number]", "IRB-2026-0042")
                await applicant.fill("input[name=irb_date]", "2026-11-02")
                await applicant.fill("input[name=irb_sha256]", testing.SHA)
                await applicant.fill("input[name=dataset]", DATASET)
                for record_type in ("Condition", "Observation"):
                    await applicant.check(f"input[name=record_types][value={record_type}]")
                for field in ("code_system", "code", "event_date", "value_number"):
                    await applicant.check(f"input[name=fields][value={field}]")
                await applicant.fill("input[name=min_k]", "1")
                await applicant.uncheck("input[name=consent_required]")
                await applicant.fill("input[name=duo_codes]", "HMB IRB NPUNCU")
                await applicant.click("#submit")
                await applicant.wait_for_selector("#status")
                assert await applicant.inner_text("#status") == "submitted"
                app_id = applicant.url.split("id=")[1]

                for member in ("rev-a", "rev-b"):
                    page = await signed_in(browser, url, member, board.passwords[member])
                    await page.click(f"a.application:has-text('{app_id}')")
                    for item in ("purpose", "irb", "minimum-data"):
                        await page.check(f"input[name='answer:{item}'][value=yes]")
                    await page.click("#submit-review")
                    await page.wait_for_selector("#vote-approve")
                    await page.click("#vote-approve")
                    await page.wait_for_selector("#reviews")

                chair = await signed_in(browser, url, "chair", board.passwords["chair"])
                await chair.goto(f"{url}/application?id={app_id}")
                await chair.select_option("#outcome", "approve")
                await chair.fill("#expires", "6")
                approved_at = time.monotonic()
                await chair.click("#record-decision")
                await chair.wait_for_selector("#approval")
                assert await chair.inner_text("#status") == "approved"

                # The signed version is on access.policies, once, for the project's principal.
                [published] = await policies.until(lambda rs: len(rs) >= 1, 30)
                assert (published["dataset"], published["version"], published["status"]) == (
                    DATASET, 1, "ACTIVE",
                )  # fmt: skip
                assert published["application_id"] == app_id
                assert published["principal"] == f"User:{project.name}"

                # History then live records reach the project through its toolkit.
                first_s = whole_s = None
                for _ in range(120):
                    code, output = await toolkit_sync(project_env)
                    if code == 0 and held(output) > 0:
                        first_s = first_s or time.monotonic() - approved_at
                    if code == 0 and held(output) == len(history):
                        whole_s = time.monotonic() - approved_at
                        break
                    await asyncio.sleep(0.2)
                assert held(output) == len(history), output
                await send(topics.clinical_records, CLINICAL_RECORD, live)
                for _ in range(120):
                    code, output = await toolkit_sync(project_env)
                    if code == 0 and held(output) == len(history) + len(live):
                        break
                    await asyncio.sleep(0.2)
                assert held(output) == len(history) + len(live), output

                # Re-identification (D49, D35): refused until a re-identification application
                # is approved by two members, then answered under its id alone.
                curated = Topic(kafka, topics.curated(DATASET), CURATED_RECORD)
                await curated.start()
                target = (await curated.until(lambda rs: len(rs) > 0))[0]["pseudonym"]
                await curated.stop()
                key = derived_key(root_key.encode(), f"{DATASET}/k1")
                [person] = [f"P{i}" for i in range(len(refs)) if pseudonym(key, f"P{i}") == target]
                code, out = await reidentify(steward_env, target, "APP-R-unknown")
                assert code == 2 and "not on record" in out, out
                reid = await reidentification_approved(service, app_id)
                code, out = await reidentify(steward_env, target, app_id)
                assert code == 2 and "release approval" in out, out
                code, out = await reidentify(steward_env, target, reid)
                assert code == 0 and out.split()[0] == person, out
                assert len(await policies.until(lambda rs: len(rs) >= 2, 30)) == 2

                await applicant.reload()
                assert await applicant.inner_text("#status") == "approved"
                published_line = await applicant.inner_text("#published")
                assert "version 2, ACTIVE" in published_line and project.name in published_line
                await applicant.screenshot(path=str(screenshot), full_page=True)

                # The chair revokes in the page: the topic says so, the broker refuses.
                await chair.goto(f"{url}/application?id={app_id}")
                await chair.fill("#revoke input[name=reason]", "protocol breach")
                revoked_at = time.monotonic()
                await chair.click("#revoke button[type=submit]")
                await chair.wait_for_selector("#status")
                assert await chair.inner_text("#status") == "revoked"
                assert "version 3, WITHDRAWN (REVOKED)" in await chair.inner_text("#published")
                withdrawn = (await policies.until(lambda rs: len(rs) >= 3, 30))[2]
                assert (withdrawn["version"], withdrawn["withdrawn_reason"]) == (3, "REVOKED")
                for _ in range(100):
                    code, output = await toolkit_sync(project_env)
                    if code == 3:
                        break
                    await asyncio.sleep(0.2)
                refused_s = time.monotonic() - revoked_at
                assert code == 3 and "refuses this principal access" in output, output
            finally:
                await browser.close()
        assert len(await drain(policies)) == 3  # exactly once each, nothing published again
        print(
            f"\nD49 browser: approval click to first record held by the toolkit {first_s:.2f} s, "
            f"whole history ({len(history)}) {whole_s:.2f} s; revocation click to the toolkit "
            f"refused {refused_s:.2f} s"
        )
    finally:
        pseudonymizer.kill()
        await pseudonymizer.wait()
        log.close()
        await producer.stop()
        await policies.stop()
    assert screenshot.stat().st_size > 10_000
    if UPDATE_SCREENSHOT:
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)
