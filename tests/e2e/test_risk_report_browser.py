"""D48 end to end in a real headless browser (Debian's Chromium, Playwright) on the real broker:
an applicant submits through the API; the access service publishes the risk request; the
pseudonymizer's risk loop (as ``svc-pseudonymizer``) answers from the retained data; the access
service folds the report into the application; the chair's page shows the table and the
histogram before the decision form, and no quasi-identifier value. Kept as
docs/access-risk-report.png when run with BIOSTREAM_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import pytest
from access import testing
from access.domain.commands import Submit
from access.handlers import AccessHandler, Decided, read_create
from biostream.codec import default_codec
from biostream.contracts import CLINICAL_RECORD
from biostream.kafka import plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_harness.access_board import access_board, running
from biostream_harness.bench.pseudonymizer import clinical_records, decision
from playwright.async_api import async_playwright
from pseudonymizer.adapters.risk_reports import RiskReports
from pseudonymizer.domain.release import PersonFacts
from pseudonymizer.state import decision_key, encode_facts

from tests.e2e.test_access_board_browser import CHROMIUM, signed_in

pytestmark = pytest.mark.e2e

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "access-risk-report.png"
UPDATE_SCREENSHOT = os.environ.get("BIOSTREAM_UPDATE_SCREENSHOT") == "1"
ACCOUNTS = (testing.APPLICANT, "chair", *testing.REVIEWERS, "rev-applicant-home")
PERSONS, RECORDS = 600, 3000


def facts(p: int) -> PersonFacts:
    """Districts of unequal size, so that the classes are of every size."""
    d = decision(p)
    weights = [12, 8, 6, 4, 3, 2, 2, 1, 1, 1, 1, 1]
    district = random.Random(p).choices(range(len(weights)), weights=weights)[0]
    d["district_code"] = f"{d['province_code']}{110 + 10 * district}"
    return PersonFacts.from_decision(d)


async def retained(kafka: KafkaSettings, topics: Topics) -> None:
    """What the pseudonymizer retains: its state's decision facts and the clinical records."""
    codec = default_codec()
    producer = plain_producer(kafka, "test-risk-retained")
    await producer.start()
    try:
        for p in range(PERSONS):
            key = decision_key(f"pr_{p:08d}").encode()
            await producer.send(topics.state("pseudonymizer"), encode_facts(facts(p)), key=key)
        for record in clinical_records(RECORDS, PERSONS):
            value = codec.encode(CLINICAL_RECORD, record)
            await producer.send(topics.clinical_records, value, key=record["patient_ref"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_the_chair_reads_the_risk_report_before_deciding(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    board = await access_board(
        kafka, topic_prefix, testing.BOARD_YAML.replace("RULE", "majority"), ACCOUNTS, tmp_path
    )
    await retained(kafka, board.topics)
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    role = "svc-pseudonymizer"
    credentials = await asyncio.to_thread(access.apply, kafka, {role: principals[role]})
    await access.wait_until_usable(credentials)
    risk = RiskReports(
        credentials.settings(role), board.topics, f"User:{topic_prefix}{role}", default_codec(), 60
    )
    stop = asyncio.Event()
    risk_task = asyncio.create_task(risk.run(stop))
    screenshot = tmp_path / "access-risk-report.png"
    form = testing.form().model_dump(mode="json")
    form["requested"]["generalisation"].update(birth="year", address="district")
    form["requested"]["consent_required"] = False  # the retained data has no consent events
    try:
        async with running(board) as service, async_playwright() as playwright:
            url = f"http://127.0.0.1:{service.web_port}"
            app_id = "APP-risk0000001"

            def submit(h: AccessHandler) -> Decided:
                create = read_create(
                    h, app_id, testing.APPLICANT, {"kind": "dataset", "form": form}
                )
                return h.decide_all(app_id, [create, Submit(testing.APPLICANT)], testing.NOW)

            decided = await service.desk.run(submit)
            assert decided.refusal is None
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                chair = await signed_in(browser, url, "chair", board.passwords["chair"])
                page_url = f"{url}/application?id={app_id}"
                await chair.goto(page_url)
                for _ in range(300):  # the report travels: request, pseudonymizer, report
                    if await chair.query_selector("#risk-table") is not None:
                        break
                    await asyncio.sleep(0.2)
                    await chair.goto(page_url)
                table = await chair.inner_text("#risk-table")
                assert "As requested" in table and "k raised to 10" in table
                assert f"{RECORDS:,}" in await chair.inner_text("#risk-report")
                html = await chair.content()
                assert html.index("risk-table") < html.index('id="decide"')
                for value in ("pr_0000", "P0000", "11110", "26120"):
                    assert value not in html
                await chair.screenshot(path=str(screenshot), full_page=True)
            finally:
                await browser.close()
    finally:
        stop.set()
        await risk_task
    assert screenshot.stat().st_size > 10_000
    if UPDATE_SCREENSHOT:
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)
