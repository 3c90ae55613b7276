"""Chaos on the real broker: during a 10,000-record feed every service is killed (SIGKILL) three
times and the broker once. Afterwards every source record is curated exactly once or dead-lettered
with a reason, person assignment equals an uninterrupted run, and the ledger verifies and
reconciles. Bounded: a fixed number of kills, each with a timeout.

The linker is order-dependent (a record can be a possible match in one order and a match in
another, D-linkage-2), and with several feed topics and partitions no two runs see identity
records in the same order, faults or not. So both runs get the identical input sequence: every
hospital's messages on one feed topic and a one-partition identity topic, published in the same
chunks. A difference in person assignment can then only come from the faults."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from audit.domain.chain import verify
from biostream.codec import AvroCodec
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import FOREVER, Topics, TopicSpec
from biostream_dev import broker
from biostream_dev.demo import feed_messages
from biostream_dev.observer import PipelineObserver, PipelineView
from biostream_dev.pipeline import SERVICES, LocalPipeline
from biostream_dev.synth import generate_feed
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage
from pydantic import SecretStr

pytestmark = pytest.mark.e2e

DATASET = "cohort-demo"
KILLS_PER_SERVICE = 3


def clusters(view: PipelineView) -> set[frozenset[str]]:
    """Hospital patients grouped by their final person: comparable across runs whatever the ids."""
    latest: dict[str, tuple[int, str]] = {}
    for d in view.decisions:
        if d["patient_ref"] not in latest or d["sequence"] > latest[d["patient_ref"]][0]:
            latest[d["patient_ref"]] = (d["sequence"], d["person_id"])
    groups: dict[str, set[str]] = {}
    for ref, (_, person) in latest.items():
        groups.setdefault(person, set()).add(ref)
    return {frozenset(g) for g in groups.values()}


def chunks(feeds: dict[str, list[FeedMessage]], parts: int) -> list[dict[str, list[FeedMessage]]]:
    return [{h: m[i::parts] for h, m in feeds.items()} for i in range(parts)]


async def publish(
    kafka: KafkaSettings, topics: Topics, chunk: dict[str, list[FeedMessage]]
) -> None:
    for hospital, messages in chunk.items():
        await publish_messages(kafka, topics.feed(hospital), messages)


def admin_of(run_dir: Path, bootstrap: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_username=broker.ADMIN_USER,
        sasl_password=SecretStr(broker.admin_password(run_dir) or ""),
    )  # fmt: skip


async def run_pipeline(
    kafka: KafkaSettings,
    prefix: str,
    run_dir: Path,
    feeds: dict[str, list[FeedMessage]],
    broker_dir: Path | None,
) -> tuple[PipelineView, LocalPipeline, list[str]]:
    """The whole feed through the four services; with ``broker_dir``, under chaos. Both modes
    publish the same chunks in the same order."""
    topics = Topics(prefix)
    published = sum(len(m) for m in feeds.values())
    # One-partition identity topic first (ensure_topics keeps it and creates the rest), so the
    # linker sees identity records in one order, the order ingest read the single feed topic.
    await ensure_topics(
        kafka, [TopicSpec(topics.identity_records, 1, FOREVER, contract="IdentityRecord")]
    )
    await ensure_topics(kafka, topics.pipeline_specs(sorted(feeds), [DATASET]))
    pipeline = LocalPipeline(kafka.bootstrap_servers, run_dir, topic_prefix=prefix, admin=kafka)
    events: list[str] = []
    try:
        await asyncio.to_thread(pipeline.start_all)
        rng = random.Random(20261129)
        schedule = [s for _ in range(KILLS_PER_SERVICE) for s in SERVICES]
        rng.shuffle(schedule)
        schedule.insert(len(schedule) // 2, "broker")
        for target, chunk in zip(schedule, chunks(feeds, len(schedule)), strict=True):
            await publish(kafka, topics, chunk)
            if broker_dir is None:
                continue
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # let the chunk flow, then strike
            if target == "broker":
                await asyncio.to_thread(broker.kill_broker, broker_dir)
                await asyncio.to_thread(broker.restart_broker, broker_dir)
                events.append("broker")
                # Services whose transaction broke with the broker exit; a supervisor restarts them.
                await asyncio.sleep(3)
            else:
                await asyncio.to_thread(pipeline.restart, target)
                events.append(target)
            events += [f"crash:{s}" for s in await asyncio.to_thread(pipeline.revive_dead)]
        observer = PipelineObserver(kafka, topics, AvroCodec(SchemaRegistry()), [DATASET])
        await observer.start()
        try:
            for _ in range(40):  # settle, reviving anything that died after the last strike
                try:
                    view = await observer.wait_until_settled(published, timeout_s=15)
                    break
                except TimeoutError:
                    events += [f"crash:{s}" for s in await asyncio.to_thread(pipeline.revive_dead)]
            else:
                raise AssertionError(
                    f"pipeline did not settle: {observer.view.progress(published)}"
                )
        finally:
            await observer.stop()
    finally:
        await asyncio.to_thread(pipeline.stop_all)
    return view, pipeline, events


async def test_chaos_loses_nothing_duplicates_nothing_and_links_the_same(tmp_path: Path) -> None:
    generate_feed(tmp_path / "feed", persons=3250, seed=11)
    by_hospital = feed_messages(tmp_path / "feed")
    feeds = {"HALL": [m for h in sorted(by_hospital) for m in by_hospital[h]]}
    published = len(feeds["HALL"])
    assert published >= 10_000

    broker_dir = tmp_path / "broker"
    info = await asyncio.to_thread(broker.start_broker, broker_dir, authentication=True)
    kafka = admin_of(broker_dir, info.bootstrap)
    try:
        chaos, pipeline, events = await run_pipeline(
            kafka, "chaos.", tmp_path / "chaos", feeds, broker_dir
        )
        # The reference run uses the same keys, so patient refs are comparable.
        shutil.copytree(tmp_path / "chaos" / "secrets", tmp_path / "calm" / "secrets")
        calm, _, _ = await run_pipeline(kafka, "calm.", tmp_path / "calm", feeds, None)
    finally:
        await asyncio.to_thread(broker.stop_broker, broker_dir)

    kills = Counter(e for e in events if not e.startswith("crash:"))
    assert kills == {**dict.fromkeys(SERVICES, KILLS_PER_SERVICE), "broker": 1}
    assert pipeline.restarts == dict.fromkeys(SERVICES, KILLS_PER_SERVICE)
    print(f"\nchaos: {published} records, kills {dict(kills)}, crashes after broker restart "
          f"{Counter(e for e in events if e.startswith('crash:'))}")  # fmt: skip

    for view in (chaos, calm):
        actions = view.audit_actions()
        # Every source record: accepted once (then curated or withheld) or dead-lettered.
        assert actions["ingest.accepted"] + actions["ingest.rejected"] == published
        assert len(view.dead_letters) == actions["ingest.rejected"] > 0
        assert all(d["reason_code"] and d["sealed_original"] for d in view.dead_letters)
        for records, key in (
            (view.identity, "record_id"),
            (view.clinical, "record_id"),
            (view.curated, "curated_id"),
        ):
            assert max(Counter(r[key] for r in records).values()) == 1, f"duplicate {key}"
        assert view.clinical_settled() == len(view.clinical)
        assert len(view.ledger) == view.audit_messages
        assert verify(view.ledger).ok  # type: ignore[arg-type]

    # The chaotic run produced exactly what the calm one did.
    assert len(chaos.curated) == len(calm.curated)
    assert len(chaos.dead_letters) == len(calm.dead_letters)
    assert clusters(chaos) == clusters(calm)
    assert {c["curated_id"] for c in chaos.curated} == {c["curated_id"] for c in calm.curated}
