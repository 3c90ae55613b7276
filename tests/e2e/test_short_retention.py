"""On a broker whose *default* retention is one minute, checked every two seconds, with segments
rolling every five: the pipeline runs, the default passes (a control topic without a declared
retention is emptied, proving the broker deletes), and then everything the pipeline promises to
keep is still there from its first offset (D21): the ledger verifies with its signed
checkpoints, a proof of its first entry checks, reconcile accounts for every feed message, and
identity.records replayed into a fresh linkage, in the order the ledger says linkage read them,
reproduces the same persons and decisions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from audit.domain.chain import verify
from audit.domain.checkpoint import private_key_from_secret, public_key_from_hex, public_key_hex
from biostream.codec import AvroCodec
from biostream.contracts import IDENTITY_RECORD, LINK_DECISION
from biostream.envelopes import ledger_events
from biostream.kafka import admin_client, ensure_topics, plain_producer, reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access, broker
from biostream_dev.access import kafka_environment
from biostream_dev.observer import PipelineObserver, PipelineView
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.inprocess import Keys, running_pipeline
from biostream_harness.linkage_stream import read_all
from ingest.adapters.publisher import publish_messages
from linkage.bootstrap import build as build_linkage
from linkage.settings import LinkageSettings
from pydantic import SecretStr

pytestmark = pytest.mark.e2e

DATASET = "cohort-demo"
DEFAULT_RETENTION_MS = 60_000
SHORT_RETENTION = {
    "log.retention.ms": str(DEFAULT_RETENTION_MS),
    "log.retention.check.interval.ms": "2000",
    # Kafka deletes whole segments: roll them often so that old records are deletable at all.
    "log.roll.ms": "5000",
    "log.initial.task.delay.ms": "1000",
    "log.segment.delete.delay.ms": "1000",
}
LINKAGE_ACTIONS = ("linkage.linked", "linkage.confirmed", "linkage.rejected", "linkage.failed")
CODEC = AvroCodec(SchemaRegistry())


@pytest.fixture
async def short_retention_broker(tmp_path: Path) -> AsyncIterator[KafkaSettings]:
    broker.ensure_jars()
    run_dir = tmp_path / "kafka-short-retention"
    info = await asyncio.to_thread(
        broker.start_broker, run_dir, extra_properties=SHORT_RETENTION, authentication=True
    )
    try:
        yield broker.admin_settings(run_dir, info.bootstrap)
    finally:
        await asyncio.to_thread(broker.stop_broker, run_dir)


def audit_cli(
    kafka: KafkaSettings, prefix: str, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOSTREAM_")}
    env |= kafka_environment(kafka) | {"BIOSTREAM_TOPIC_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-m", "audit", *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


async def first_offsets(kafka: KafkaSettings, topics: list[str]) -> dict[str, int]:
    """The first offset still on the broker of each topic (its partitions' smallest)."""
    partitions = await topic_partitions(kafka, topics)
    consumer = reader(kafka, "test-first-offsets")
    await consumer.start()
    try:
        offsets: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    first: dict[str, int] = {}
    for tp, offset in offsets.items():
        first[tp.topic] = min(first.get(tp.topic, offset), offset)
    return first


async def wait_for_default_retention(kafka: KafkaSettings, control: str) -> None:
    """Write one record to a topic that declares nothing, after the pipeline's last write, and
    wait until the broker has deleted it: every record older than it has then passed the
    default retention too. Bounded; fails if the broker never deletes."""
    admin = admin_client(kafka, "test-control")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(control, 1, 1)])
    finally:
        await admin.close()
    producer = plain_producer(kafka, "test-control")
    await producer.start()
    try:
        await producer.send_and_wait(control, b"written after the pipeline's last record")
    finally:
        await producer.stop()
    for _ in range(150):  # the default is a minute; give the broker up to five
        if (await first_offsets(kafka, [control]))[control] == 1:
            break
        await asyncio.sleep(2)
    else:
        raise AssertionError("the broker never applied its default retention to the control")
    await asyncio.sleep(5)  # two more retention checks over every other topic


async def read_everything(kafka: KafkaSettings, topics: Topics, published: int) -> PipelineView:
    observer = PipelineObserver(kafka, topics, CODEC, [DATASET])
    await observer.start()
    try:
        return await observer.wait_until_settled(published, timeout_s=120)
    finally:
        await observer.stop()


def same(read_back: list[dict[str, Any]], seen: list[dict[str, Any]], key: str) -> bool:
    return sorted(read_back, key=lambda r: r[key]) == sorted(seen, key=lambda r: r[key])


def linkage_order(view: PipelineView) -> list[str]:
    """Record ids in the order linkage handled them, from its audit events in the ledger."""
    return [
        event["inputs"][0]
        for _, event in ledger_events(CODEC, view.ledger)
        if event["action"] in LINKAGE_ACTIONS
    ]


def decision_facts(decisions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("patient_ref", "record_id", "person_id", "previous_person_id", "outcome", "sequence")
    return sorted(tuple(d[k] for k in keys) for d in decisions)


async def replay_linkage(
    kafka: KafkaSettings, prefix: str, keys: Keys, identity: list[dict[str, Any]], order: list[str]
) -> list[dict[str, Any]]:
    """A fresh linkage (own topics, state and group) fed identity.records as read back."""
    topics = Topics(prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    by_id = {record["record_id"]: record for record in identity}
    producer = plain_producer(kafka, "test-replay")
    await producer.start()
    try:
        for record_id in order:  # one partition, so the fresh linkage reads this order
            record = by_id[record_id]
            await producer.send(
                topics.identity_records,
                CODEC.encode(IDENTITY_RECORD, record),
                key=record["patient_ref"].encode(),
                partition=0,
            )
        await producer.flush()
    finally:
        await producer.stop()
    service = build_linkage(
        LinkageSettings.model_validate(
            {
                "kafka": kafka, "topic_prefix": prefix, "poll_timeout_ms": 100,
                "principal": "User:svc-linkage", "dead_letter_key": SecretStr(keys.dead_letter),
                "person_key": SecretStr(keys.person), "rrn_key": SecretStr(keys.rrn),
            }
        )
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(service.processor.run(stop))
    try:
        handled = await read_all(
            kafka, CODEC, topics.audit_events_of("svc-linkage"), "AuditEvent",
            lambda events: sum(e["action"] in LINKAGE_ACTIONS for e in events) >= len(order),
            timeout_s=180,
        )  # fmt: skip
        assert sum(e["action"] in LINKAGE_ACTIONS for e in handled) == len(order)
        return await _all_decisions(kafka, topics)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def _all_decisions(kafka: KafkaSettings, topics: Topics) -> list[dict[str, Any]]:
    partitions = await topic_partitions(kafka, [topics.link_decisions])
    consumer = reader(kafka, "test-replay-decisions")
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            out += [CODEC.decode(r.value, LINK_DECISION) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return out


async def test_after_the_default_retention_the_ledger_proofs_and_replays_still_hold(
    short_retention_broker: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = short_retention_broker
    generate_feed(tmp_path / "feed", persons=40, seed=16)
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    public_key = tmp_path / "ledger_public.key"
    public_key.write_text(
        public_key_hex(private_key_from_secret(keys.ledger_signing.encode()).public_key())
    )
    settings = {"checkpoint_every_entries": 20, "checkpoint_every_seconds": 1.0}
    async with running_pipeline(
        kafka, topic_prefix, sorted(feeds), keys, audit=settings
    ) as observer:
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        during = await observer.wait_until_settled(published, timeout_s=180)
        for _ in range(100):  # the idle tick signs a checkpoint over the tail
            await observer.poll(timeout_ms=200)
            if during.checkpoints and during.checkpoints[-1]["size"] == len(during.ledger):
                break
        assert during.checkpoints[-1]["size"] == len(during.ledger)
    assert during.persons() > 0 and during.curated and during.dead_letters

    await wait_for_default_retention(kafka, f"{topic_prefix}control")

    names = [s.name for s in topics.pipeline_specs(sorted(feeds), [DATASET])]
    assert set((await first_offsets(kafka, names)).values()) == {0}, "nothing was deleted"
    after = await read_everything(kafka, topics, published)
    assert after.ledger == during.ledger and after.checkpoints == during.checkpoints
    # Topics of several partitions are read back in another interleaving: compare as sets.
    assert same(after.identity, during.identity, "record_id")
    assert same(after.decisions, during.decisions, "decision_id")
    assert same(after.curated, during.curated, "curated_id")
    assert len(after.notices) == len(during.notices)

    # D35: the audit commands run as the ACL matrix's auditor principal.
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {"auditor": principals["auditor"]})
    await access.wait_until_usable(credentials)
    auditor = credentials.settings("auditor")
    verified = audit_cli(auditor, topic_prefix, "verify", "--public-key", public_key)
    assert verified.returncode == 0, verified.stderr
    assert f"ledger intact: {len(during.ledger)} entries" in verified.stdout
    key = public_key_from_hex(public_key.read_text())
    assert verify(after.ledger, checkpoints=after.checkpoints, public_key=key).ok  # type: ignore[arg-type]

    # The proof of one event of the ledger's first entry (a proof names one event, D23a).
    [(_, first), *_] = ledger_events(AvroCodec(SchemaRegistry()), after.ledger[:1])
    proof = tmp_path / "proof.json"
    made = audit_cli(
        auditor, topic_prefix, "prove", "--event-id", first["event_id"], "--output", proof
    )
    assert made.returncode == 0, made.stderr
    checked = audit_cli(
        auditor, topic_prefix, "check-proof", "--proof", proof, "--public-key", public_key,
        "--event-id", first["event_id"],
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr

    reconciled = audit_cli(auditor, topic_prefix, "reconcile")
    assert reconciled.returncode == 0, reconciled.stderr
    counts = json.loads(reconciled.stdout)
    assert counts["published"] == published and counts["unaccounted"] == 0

    order = linkage_order(after)
    assert sorted(order) == sorted(r["record_id"] for r in after.identity)
    replayed = await replay_linkage(kafka, f"{topic_prefix}replay.", keys, after.identity, order)
    assert decision_facts(replayed) == decision_facts(after.decisions)
    assert {d["person_id"] for d in replayed} == {d["person_id"] for d in during.decisions}
