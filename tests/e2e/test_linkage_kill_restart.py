"""linkage as its own process, killed with SIGKILL mid-stream and restarted, assigns exactly the
persons an uninterrupted run assigns, with no decision lost or doubled."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import AUDIT_EVENT, IDENTITY_RECORD, LINK_DECISION
from biostream.envelopes import Envelopes
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.state import StateStore
from biostream.topics import Topics
from biostream_harness.linkage_stream import identity_records, publish, read_all
from biostream_harness.pipeline import LocalPipeline
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.e2e

CODEC = AvroCodec(SchemaRegistry())
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def uninterrupted(
    records: list[dict[str, Any]], key: bytes, topics: Topics
) -> list[dict[str, Any]]:
    """The same records, same order, same key, through the same handler without Kafka or kills."""
    handler = LinkageHandler(
        CODEC, topics, Envelopes("linkage", "User:svc-linkage", CODEC, topics), key, default_params(),
        LinkageMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    state = StateStore()
    out: list[dict[str, Any]] = []
    for n, record in enumerate(records):
        message = Inbound(topics.identity_records, 0, n, None,
                          CODEC.encode(IDENTITY_RECORD, record), (), 0)  # fmt: skip
        out += [CODEC.decode(o.value, LINK_DECISION) for o in handler(message, state, NOW)
                if o.topic == topics.link_decisions]  # fmt: skip
    return out


def linkage_audits_for_records(events: list[dict[str, Any]]) -> set[str]:
    return {
        e["inputs"][0]
        for e in events
        if e["action"] in ("linkage.linked", "linkage.confirmed") and e["inputs"]
    }


def final(decisions: list[dict[str, Any]]) -> dict[str, str]:
    latest: dict[str, dict[str, Any]] = {}
    for d in decisions:
        if d["patient_ref"] not in latest or d["sequence"] > latest[d["patient_ref"]]["sequence"]:
            latest[d["patient_ref"]] = d
    return {ref: d["person_id"] for ref, d in latest.items()}


def essence(decisions: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (d["decision_id"], d["person_id"], d["previous_person_id"], d["outcome"], d["rule"])
        for d in decisions
    }


async def test_linkage_killed_mid_stream_assigns_like_an_uninterrupted_run(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    records, _truth = identity_records(persons=300, seed=11)
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    pipeline = LocalPipeline(
        kafka.bootstrap_servers, tmp_path / "run", topic_prefix=topic_prefix, admin=kafka
    )
    half = len(records) // 2
    ids = {r["record_id"] for r in records}
    try:
        await asyncio.to_thread(pipeline.start, "linkage")
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, records[:half],
                      key=lambda r: r["patient_ref"])  # fmt: skip
        # Kill as soon as linkage has committed some of the first half.
        seen = await read_all(
            kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
            lambda out: len(linkage_audits_for_records(out)) > 0, timeout_s=120,
        )  # fmt: skip
        at_kill = len(linkage_audits_for_records(seen))
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, records[half:],
                      key=lambda r: r["patient_ref"])  # fmt: skip
        await asyncio.to_thread(pipeline.restart, "linkage")
        await read_all(
            kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
            lambda out: linkage_audits_for_records(out) >= ids, timeout_s=240,
        )  # fmt: skip
        key = (tmp_path / "run" / "secrets" / "person.key").read_text().strip().encode()
        expected = uninterrupted(records, key, topics)
        decisions = await read_all(
            kafka, CODEC, topics.link_decisions, LINK_DECISION,
            lambda out: len(out) >= len(expected), timeout_s=60,
        )  # fmt: skip
        log = (tmp_path / "run" / "logs" / "linkage.log").read_text(errors="replace")
    finally:
        await asyncio.to_thread(pipeline.stop_all)

    assert pipeline.restarts == {"linkage": 1}
    assert at_kill < len(ids), "killed after all the work was done"
    assert len({d["decision_id"] for d in decisions}) == len(decisions), "a decision was doubled"
    assert essence(decisions) == essence(expected)
    assert final(decisions) == final(expected)
    assert len(set(final(expected).values())) < len(final(expected))  # real linking happened
    # Recovery is measured: the rebuilt index reports its size and time.
    assert len(re.findall(r"index rebuilt", log)) == 2
