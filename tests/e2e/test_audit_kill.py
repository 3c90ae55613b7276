"""The audit service, as a process, is killed with SIGKILL three times mid-stream while it signs a
checkpoint every few entries: afterwards the ledger verifies with its checkpoints and holds every
audit event exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from audit.domain.chain import verify
from audit.domain.checkpoint import public_key_from_hex
from biostream.codec import AvroCodec
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev.observer import PipelineObserver
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.pipeline import LocalPipeline
from ingest.adapters.publisher import publish_messages

pytestmark = pytest.mark.e2e

DATASET = "cohort-demo"


async def test_audit_killed_repeatedly_mid_stream_keeps_a_complete_verifiable_ledger(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=250, seed=5)
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs(sorted(feeds), [DATASET]))
    pipeline = LocalPipeline(
        kafka.bootstrap_servers,
        tmp_path / "run",
        topic_prefix=topic_prefix,
        admin=kafka,
        extra_env={
            "BIOSTREAM_CHECKPOINT_EVERY_ENTRIES": "25",
            "BIOSTREAM_CHECKPOINT_EVERY_SECONDS": "1",
            # Small transactions: kills land between them, and upstream services write many
            # audit batches (one per transaction, D15), so the ledger grows all along the stream.
            "BIOSTREAM_BATCH_MAX_RECORDS": "10",
        },
    )
    observer = PipelineObserver(kafka, topics, AvroCodec(SchemaRegistry()), [DATASET])
    kills_at: list[int] = []
    try:
        await asyncio.to_thread(pipeline.start_all)
        await observer.start()
        # The last hospital's last messages wait until after the kills, so the final process
        # has work of its own whatever the machine's speed (its metrics are checked below).
        *first, (last_hospital, last_messages) = feeds.items()
        for hospital, messages in [*first, (last_hospital, last_messages[:-20])]:
            await publish_messages(kafka, topics.feed(hospital), messages)
        for _ in range(3):
            baseline = len(observer.view.ledger)
            for _ in range(600):
                await observer.poll(timeout_ms=50)
                if len(observer.view.ledger) > baseline:
                    break
            else:
                pytest.fail("the audit service made no progress")
            kills_at.append(len(observer.view.ledger))
            await asyncio.to_thread(pipeline.restart, "audit")
        await publish_messages(kafka, topics.feed(last_hospital), last_messages[-20:])
        view = await observer.wait_until_settled(published, timeout_s=300)
        for _ in range(150):
            if view.checkpoints and view.checkpoints[-1]["size"] == len(view.ledger):
                break
            await observer.poll(timeout_ms=200)
        metrics = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in pipeline.metrics_text("audit").splitlines()
            if line.startswith("biostream_audit_") and " " in line
        }
    finally:
        await observer.stop()
        await asyncio.to_thread(pipeline.stop_all)

    assert pipeline.restarts == {"audit": 3}
    assert all(at < len(view.ledger) for at in kills_at), "a kill came after the work was done"
    # Every audit event exactly once, in sequence 0..n-1.
    assert view.ledger_event_ids() == Counter(e["event_id"] for e in view.audit_events)
    assert [e["sequence"] for e in view.ledger] == list(range(len(view.ledger)))
    # Checkpoints: none repeated or lost, all signed by the run's key, the whole ledger covered.
    sizes = [c["size"] for c in view.checkpoints]
    assert sizes == sorted(set(sizes))
    key = public_key_from_hex(pipeline.ledger_public_key_file.read_text())
    result = verify(view.ledger, checkpoints=view.checkpoints, public_key=key)  # type: ignore[arg-type]
    assert result.ok, result.problem
    assert result.covered == len(view.ledger)
    assert result.checkpoints_checked == len(sizes) >= len(view.ledger) // 25
    # The restarted process reports the whole ledger, its checkpoints and a passing self-check.
    assert metrics["biostream_audit_ledger_entries"] == len(view.ledger)
    assert metrics["biostream_audit_last_checkpoint_size"] == len(view.ledger)
    assert metrics["biostream_audit_last_checkpoint_age_seconds"] >= 0
    assert metrics["biostream_audit_verification_ok"] == 1
    assert metrics["biostream_audit_append_lag_seconds_count"] > 0
