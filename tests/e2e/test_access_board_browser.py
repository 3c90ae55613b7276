"""Acceptance for the access service's pages (D45) in a real headless browser (Debian's
Chromium driven by Playwright): an applicant submits an application through the form; two
reviewers complete the checklist and vote, and the chair records the approval with conditions,
each in their own session; the approval and its release policy appear. A recused member is
offered no review form. The application page is kept as
docs/access-application.png when run with BIOSTREAM_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from access import testing
from biostream.settings import KafkaSettings
from biostream_harness.access_board import access_board, running
from playwright.async_api import Browser, Page, async_playwright

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "access-application.png"
UPDATE_SCREENSHOT = os.environ.get("BIOSTREAM_UPDATE_SCREENSHOT") == "1"
ACCOUNTS = (testing.APPLICANT, "chair", *testing.REVIEWERS, "rev-applicant-home")


async def signed_in(browser: Browser, url: str, account: str, password: str) -> Page:
    """A page in a browser context of its own (its own cookies: its own session)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{url}/")
    assert page.url.endswith("/signin")
    await page.fill("input[name=account]", account)
    await page.fill("input[name=password]", password)
    await page.click("#signin")
    await page.wait_for_selector("#applications")
    assert await page.inner_text("#account") == account
    return page


async def test_apply_review_vote_and_approve_in_the_browser(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    board = await access_board(
        kafka, topic_prefix, testing.BOARD_YAML.replace("RULE", "majority"), ACCOUNTS, tmp_path
    )
    screenshot = tmp_path / "access-application.png"
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
            await applicant.fill("input[name=dataset]", "diabetes-cohort")
            for record_type in ("Condition", "Observation"):
                await applicant.check(f"input[name=record_types][value={record_type}]")
            for field in ("code_system", "code", "event_date", "value_number", "value_text"):
                await applicant.check(f"input[name=fields][value={field}]")
            await applicant.fill("input[name=duo_codes]", "HMB IRB NPUNCU")
            await applicant.click("#submit")
            await applicant.wait_for_selector("#status")
            assert await applicant.inner_text("#status") == "submitted"
            app_id = applicant.url.split("id=")[1]

            # The recused member (the applicant's institution) is offered no review.
            recused = await signed_in(
                browser, url, "rev-applicant-home", board.passwords["rev-applicant-home"]
            )
            await recused.goto(f"{url}/application?id={app_id}")
            assert await recused.query_selector("#review") is None
            assert "rev-applicant-home" in await recused.inner_text("#application")

            for member in ("rev-a", "rev-b"):
                page = await signed_in(browser, url, member, board.passwords[member])
                await page.click(f"a.application:has-text('{app_id}')")
                for item in ("purpose", "irb", "minimum-data"):
                    await page.check(f"input[name='answer:{item}'][value=yes]")
                await page.fill("textarea[name=note]", f"checked by {member}")
                await page.click("#submit-review")
                await page.wait_for_selector("#vote-approve")
                await page.click("#vote-approve")
                await page.wait_for_selector("#reviews")
                assert "approve" in await page.inner_text(f"#reviews tr:has-text('{member}')")

            chair = await signed_in(browser, url, "chair", board.passwords["chair"])
            await chair.goto(f"{url}/application?id={app_id}")
            assert await chair.inner_text("#status") == "under_review"
            await chair.select_option("#outcome", "approve")
            await chair.fill("#min-k", "10")
            await chair.check("#no-free-text")
            await chair.fill("#expires", "6")
            await chair.click("#record-decision")
            await chair.wait_for_selector("#approval")
            assert await chair.inner_text("#status") == "approved"
            policy = json.loads(await chair.inner_text("#policy"))
            assert policy["k_anonymity"] == {"min_k": 10} and "value_text" not in policy["fields"]
            conditions = json.loads(await chair.inner_text("#conditions"))
            assert conditions == {"min_k": 10, "no_free_text": True, "expires_in_months": 6}

            # The applicant sees the approval in their own session.
            await applicant.reload()
            assert await applicant.inner_text("#status") == "approved"
            await applicant.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    assert screenshot.stat().st_size > 10_000
    if UPDATE_SCREENSHOT:
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)
