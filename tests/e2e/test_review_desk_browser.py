"""Acceptance for the review desk: a steward resolves a possible match in a real headless
browser (Debian's Chromium driven by Playwright), and linkage's next link decisions show the merge.
The task view is kept as docs/review-desk.png."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from biostream.contracts import AUDIT_EVENT, LINK_DECISION
from biostream.settings import KafkaSettings
from biostream_harness.linkage_stream import read_all
from biostream_harness.review_desk import CODEC, IDENTIFYING, STEWARD, running_desk
from playwright.async_api import Page, async_playwright

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
# The committed screenshot is refreshed only on request, so test runs leave the tree clean.
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "review-desk.png"
UPDATE_SCREENSHOT = os.environ.get("BIOSTREAM_UPDATE_SCREENSHOT") == "1"


async def reload_until(page: Page, selector: str, attempts: int = 300) -> str:
    """Reload until the page shows ``selector`` (the linkage service applies the decision
    asynchronously); returns its text."""
    for _ in range(attempts):
        element = await page.query_selector(selector)
        if element is not None:
            return await element.inner_text()
        await asyncio.sleep(0.2)
        await page.reload()
    raise TimeoutError(f"{selector} did not appear")


async def test_steward_merges_a_possible_match_in_the_browser(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    screenshot = tmp_path / "review-desk.png"
    async with running_desk(kafka, topic_prefix) as desk:
        await desk.publish_grey_pair()
        task_id = await desk.wait_for_task()
        first = await read_all(
            kafka, CODEC, desk.topics.link_decisions, LINK_DECISION, lambda out: len(out) >= 2
        )
        by_ref = {d["patient_ref"]: d for d in first}
        assert by_ref["pr_yoon_b"]["outcome"] == "POSSIBLE_MATCH"
        person_a = by_ref["pr_yoon_a"]["person_id"]

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                # Straight to the task without a session: the login page, no record shown.
                await page.goto(f"{desk.url}/task?id={quote(task_id, safe='')}")
                assert page.url.endswith("/login")
                content = await page.content()
                assert [v for v in IDENTIFYING if v in content] == []

                await page.fill("input[name=account]", STEWARD)
                await page.fill("input[name=password]", desk.password)
                await page.click("#login")
                await page.wait_for_selector("#queue")
                assert await page.inner_text("#steward") == STEWARD
                await page.click(f"a.task:has-text('{task_id}')")
                await page.wait_for_selector("#comparison")

                # Side by side, with field-by-field agreement and weights from linkage.
                table = await page.inner_text("#comparison")
                assert "01023456789" in table and "01098761234" in table
                assert "올림픽로" in table and "테헤란로" in table
                phone_row = await page.inner_text("tr[data-field=phone]")
                assert "DIFFERENT" in phone_row and "-" in phone_row.split("DIFFERENT")[-1]
                birth_row = await page.inner_text("tr[data-field=birth_date]")
                assert birth_row.count("1979-05-12") == 2 and "SAME" in birth_row
                await page.screenshot(path=str(screenshot), full_page=True)
                assert screenshot.read_bytes().startswith(b"\x89PNG")
                if UPDATE_SCREENSHOT:
                    shutil.copyfile(screenshot, DOCS_SCREENSHOT)

                await page.fill("#reason", "Same person: moved within Seoul, new phone number.")
                await page.click("#decide-same_person")
                await page.wait_for_selector("#outcome")
                resulting = await reload_until(page, "#resulting-person")
            finally:
                await browser.close()

        # Linkage's next decision for the reviewed record: merged into the candidate's person.
        decisions = await read_all(
            kafka, CODEC, desk.topics.link_decisions, LINK_DECISION,
            lambda out: any(d["rule"] == "review" for d in out),
        )  # fmt: skip
        [merge] = [d for d in decisions if d["rule"] == "review"]
        assert (merge["patient_ref"], merge["outcome"], merge["person_id"]) == (
            "pr_yoon_b",
            "MERGED",
            person_a,
        )
        assert resulting == person_a

        # The view and the decision are in the audit trail, without identifying values.
        events = await read_all(
            kafka, CODEC, desk.topics.audit_events_of("svc-review"), AUDIT_EVENT,
            lambda out: {"review.viewed", "review.decided"} <= {e["action"] for e in out},
        )  # fmt: skip
        desk_events = [e for e in events if e["service"] == "review"]
        decided = [e for e in desk_events if e["action"] == "review.decided"]
        assert [(e["inputs"], e["outcome"]) for e in decided] == [([task_id], "same_person")]
        assert f"steward:{STEWARD}" in decided[0]["outputs"]
        assert all(v not in repr(e) for e in desk_events for v in IDENTIFYING)
