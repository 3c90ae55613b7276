"""D48 on the real broker: the pseudonymizer releases a known population, then a risk request
published as the access service's principal is answered, by ``pseudonymizer risk`` running as
the pseudonymizer's principal, with a report of the expected counts, both audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    CURATED_RECORD,
    LINK_DECISION,
    RISK_REPORT,
    RISK_REQUEST,
    RiskRequest,
)
from biostream.kafka import ensure_topics, plain_producer
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from pseudonymizer.adapters.risk_reports import RiskReports

from tests.integration.test_pseudonymizer_flow import (
    Topic,
    clinical_record,
    link_decision,
    pseudonymizer,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CODEC = AvroCodec(SchemaRegistry())
# Three classes by birth year: 1 person, 2 persons and 5 persons; two Conditions each and one
# Specimen (a record type the draft does not request).
CLASSES = {1960: 1, 1970: 2, 1980: 5}


def draft() -> dict[str, Any]:
    document = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    document.update(
        dataset="risk-draft", pseudonym_domain="risk-draft", target_topic=None,
        record_types=["Condition"], k_anonymity={"min_k": 5, "max_hold_hours": 168},
        generalisation={"birth": "year", "sex": "keep", "address": "province",
                        "event_date": {"method": "month"}},
        valid_from="2026-12-01T00:00:00+00:00", valid_until="2027-12-01T00:00:00+00:00",
    )  # fmt: skip
    document.pop("target_topic")
    return document


async def test_a_risk_request_is_answered_with_the_counts_of_the_retained_data(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-demo"]))
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "cohort-demo.json").write_text((REPO / "policies/cohort-demo.json").read_text())
    keys = {"cohort-demo/k1": "ab" * 32}
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(
        access.apply, kafka,
        {role: principals[role] for role in ("svc-pseudonymizer", "svc-access")},
    )  # fmt: skip
    await access.wait_until_usable(credentials)
    as_pseudonymizer = credentials.settings("svc-pseudonymizer")
    as_access = credentials.settings("svc-access")

    producer = plain_producer(kafka, "test-risk-feed")
    await producer.start()
    curated = Topic(kafka, topics.curated("cohort-demo"), CURATED_RECORD)
    reports = Topic(kafka, topics.risk_reports, RISK_REPORT)
    audit = Topic(kafka, topics.audit_events_of("svc-pseudonymizer"), AUDIT_EVENT)
    for topic in (curated, reports, audit):
        await topic.start()
    stop = asyncio.Event()
    try:
        async with pseudonymizer(kafka, topic_prefix, policies, keys):
            n = 0
            for birth_year, size in CLASSES.items():
                for _ in range(size):
                    ref, decision = f"pr_{n}", link_decision(f"pr_{n}", f"P{n}")
                    decision["birth_year"] = birth_year
                    value = CODEC.encode(LINK_DECISION, decision)
                    await producer.send_and_wait(topics.link_decisions, value, key=ref.encode())
                    for i, kind in enumerate(("Condition", "Condition", "Specimen")):
                        record = clinical_record(f"H001/{n}/{i}", ref) | {"resource_type": kind}
                        value = CODEC.encode(CLINICAL_RECORD, record)
                        await producer.send_and_wait(
                            topics.clinical_records, value, key=ref.encode()
                        )
                    n += 1
            await curated.until(lambda rs: len(rs) == 16)  # Conditions (the demo policy)
        # The pseudonymizer's state now holds the eight decisions; the risk service answers.
        service = RiskReports(
            as_pseudonymizer, topics, f"User:{topic_prefix}svc-pseudonymizer", CODEC, 60.0
        )
        task = asyncio.create_task(service.run(stop))
        request: RiskRequest = {
            "request_id": "APP-risk/risk/1", "application_id": "APP-risk",
            "requested_by": "system", "requested_at": dt.datetime.now(dt.UTC),
            "draft_policy_json": json.dumps(draft()),
            "variants_json": json.dumps({"birth dropped": {"birth": "drop"}}),
        }  # fmt: skip
        asker = plain_producer(as_access, "test-risk-asker")
        await asker.start()
        try:
            await asker.send_and_wait(
                topics.risk_requests, CODEC.encode(RISK_REQUEST, request), key=b"APP-risk"
            )
        finally:
            await asker.stop()
        [report] = await reports.until(lambda rs: len(rs) == 1, timeout_s=90)
        assert (report["request_id"], report["outcome"]) == ("APP-risk/risk/1", "COMPUTED")
        assert report["records_read"] == 24
        figures = json.loads(report["figures_json"])
        requested = figures["requested"]
        assert (requested["persons"], requested["records"], requested["classes"]) == (8, 16, 3)
        assert requested["withheld"] == {"RESOURCE_TYPE_NOT_APPROVED": 8}
        histogram = {b["label"]: b["classes"] for b in requested["histogram"]}
        assert (histogram["1"], histogram["2"], histogram["5-9"]) == (1, 1, 1)
        assert (requested["classes_below_k"], requested["records_below_k"]) == (2, 6)
        assert requested["persons_below_k"] == 3
        assert requested["max_risk"] == 1.0
        assert requested["average_risk"] == pytest.approx(3 / 8)
        [variant] = figures["variants"]
        assert variant["measures"]["classes"] == 1 and variant["measures"]["max_risk"] == 1 / 8
        # Every request and report is audited.
        events = await audit.until(
            lambda es: (
                {"pseudonymizer.risk_requested", "pseudonymizer.risk_reported"}
                <= {e["action"] for e in es}
            )
        )
        reported = [e for e in events if e["action"] == "pseudonymizer.risk_reported"]
        assert reported[0]["outcome"] == "computed" and reported[0]["purpose"] == "APP-risk"
        # A request the service cannot answer gets a report with the reason.
        broken = request | {"request_id": "APP-risk/risk/2", "draft_policy_json": "{}"}
        await producer.send_and_wait(
            topics.risk_requests, CODEC.encode(RISK_REQUEST, broken), key=b"APP-risk"
        )
        second = (await reports.until(lambda rs: len(rs) == 2, timeout_s=60))[1]
        assert second["outcome"] == "DRAFT_INVALID" and second["figures_json"] is None
        stop.set()
        await task
    finally:
        stop.set()
        await producer.stop()
        for topic in (curated, reports, audit):
            await topic.stop()
