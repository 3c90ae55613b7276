"""Each service, as its own process, is killed with SIGKILL mid-stream and restarted: nothing is
lost, nothing is duplicated, and the audit ledger still verifies."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from audit.domain.chain import verify
from audit.domain.checkpoint import public_key_from_hex
from biostream.codec import AvroCodec
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev.observer import PipelineObserver, PipelineView
from biostream_dev.synth import canary_values, generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.pipeline import LocalPipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage

pytestmark = pytest.mark.e2e

DATASET = "cohort-demo"
KILL_ORDER = ("ingest", "linkage", "pseudonymizer", "audit")
STAGE_PROGRESS: dict[str, Callable[[PipelineView], int]] = {
    "ingest": lambda v: v.ingest_processed(),
    "linkage": lambda v: v.linkage_processed(),
    "pseudonymizer": lambda v: v.audit_actions()["pseudonymizer.held"] + v.clinical_settled(),
    "audit": lambda v: len(v.ledger),
}


def chunked(feeds: dict[str, list[FeedMessage]], parts: int) -> list[dict[str, list[FeedMessage]]]:
    return [{h: m[i::parts] for h, m in feeds.items()} for i in range(parts)]


async def test_every_service_killed_mid_stream_loses_and_duplicates_nothing(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=400, seed=7)
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs(sorted(feeds), [DATASET]))
    pipeline = LocalPipeline(
        kafka.bootstrap_servers,
        tmp_path / "run",
        topic_prefix=topic_prefix,
        admin=kafka,
        # Frequent checkpoints, so the audit kill lands among them.
        extra_env={
            "BIOSTREAM_CHECKPOINT_EVERY_ENTRIES": "100",
            "BIOSTREAM_CHECKPOINT_EVERY_SECONDS": "1",
        },
    )
    observer = PipelineObserver(kafka, topics, AvroCodec(SchemaRegistry()), [DATASET])
    kills: list[tuple[str, int]] = []
    try:
        await asyncio.to_thread(pipeline.start_all)
        await observer.start()
        for service, chunk in zip(KILL_ORDER, chunked(feeds, len(KILL_ORDER)), strict=True):
            progress = STAGE_PROGRESS[service]
            baseline = progress(observer.view)
            for hospital, messages in chunk.items():
                await publish_messages(kafka, topics.feed(hospital), messages)
            # Kill as soon as the service is seen working on this chunk: mid-stream, not idle.
            for _ in range(600):
                await observer.poll(timeout_ms=50)
                if progress(observer.view) > baseline:
                    break
            else:
                pytest.fail(f"{service} made no progress on its chunk")
            kills.append((service, progress(observer.view)))
            await asyncio.to_thread(pipeline.restart, service)
        view = await observer.wait_until_settled(published, timeout_s=300)
        # An idle tick signs a checkpoint covering the tail.
        for _ in range(150):
            if view.checkpoints and view.checkpoints[-1]["size"] == len(view.ledger):
                break
            await observer.poll(timeout_ms=200)
    finally:
        await observer.stop()
        await asyncio.to_thread(pipeline.stop_all)

    assert [service for service, _ in kills] == list(KILL_ORDER)
    assert pipeline.restarts == dict.fromkeys(KILL_ORDER, 1)
    # Each kill happened with work still ahead of that stage.
    final = {service: STAGE_PROGRESS[service](view) for service in KILL_ORDER}
    for service, at_kill in kills:
        assert at_kill < final[service], f"{service} was killed after its stage had finished"

    # Every published message was accounted for exactly once by ingest.
    actions = view.audit_actions()
    assert actions["ingest.accepted"] + actions["ingest.rejected"] == published
    assert actions["ingest.duplicate"] == 0
    assert len(view.dead_letters) == actions["ingest.rejected"]
    assert len({d["dead_letter_id"] for d in view.dead_letters}) == len(view.dead_letters)

    # No record was lost or duplicated at any stage.
    for name, records, key in (
        ("identity", view.identity, "record_id"),
        ("clinical", view.clinical, "record_id"),
        ("curated", view.curated, "curated_id"),
    ):
        counts = Counter(r[key] for r in records)
        assert not [k for k, n in counts.items() if n > 1], f"duplicated {name} records"
    assert len(view.curated) + actions["pseudonymizer.withheld"] == len(view.clinical)
    assert actions["linkage.linked"] + actions["linkage.confirmed"] == len(view.identity)

    # The ledger holds each audit event once and verifies.
    assert len(view.ledger) == view.audit_messages
    assert view.ledger_event_ids() == Counter(e["event_id"] for e in view.audit_events)
    # Its signed checkpoints verify under the run's public key, cover the whole ledger, and none
    # was lost or repeated across the kill.
    public_key = public_key_from_hex(pipeline.ledger_public_key_file.read_text())
    result = verify(view.ledger, checkpoints=view.checkpoints, public_key=public_key)  # type: ignore[arg-type]
    assert result.ok, result.problem
    sizes = [c["size"] for c in view.checkpoints]
    assert sizes == sorted(set(sizes))
    assert len(sizes) >= len(view.ledger) // 100
    assert result.covered == len(view.ledger)

    # Service logs, including those written around the kills, carry no identifying value.
    canaries = canary_values(
        tmp_path / "feed",
        kinds=["full_name", "rrn", "rrn_digits", "phone", "phone_digits", "address", "street"],
    )
    assert len(canaries) > 1000
    logs = "\n".join(
        p.read_text(errors="replace") for p in (tmp_path / "run" / "logs").glob("*.log")
    )
    assert "consuming" in logs
    leaked = [c for c in canaries if c in logs]
    assert not leaked, f"{len(leaked)} identifying values in service logs"
