"""Chaos on the real broker: during a 10,000-record feed from three hospitals, each on its own
feed topic, every service is killed (SIGKILL) three times and the broker once. Afterwards every
source record is curated exactly once or dead-lettered with a reason, every hospital patient has
the same person id and every curated record the same pseudonym as in an uninterrupted run, and
the ledger verifies and reconciles. Bounded: a fixed number of kills, each with a timeout.

The linker is order-dependent (a record can be a possible match in one order and a match in
another, D-linkage-2), so both runs must give it the identical input sequence, or a difference
could come from the order instead of the faults. The feeds are therefore published in the same
parts, one hospital at a time, and the next part only once ingest has committed the previous one
(its consumer group's offset on that feed reached the end); ingest writes a one-partition
identity topic, so linkage reads identity records in exactly that order in both runs. Strikes
land while ingest still works on the last hospital's part of a chunk, and linkage, the
pseudonymizer and audit on everything before it."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from audit.domain.chain import verify
from biostream.codec import AvroCodec
from biostream.kafka import admin_client, ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import FOREVER, Topics, TopicSpec
from biostream_dev import broker
from biostream_dev.observer import PipelineObserver, PipelineView
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.pipeline import SERVICES, LocalPipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage

pytestmark = pytest.mark.e2e

DATASET = "cohort-demo"
KILLS_PER_SERVICE = 3


def person_of_patient(view: PipelineView) -> dict[str, str]:
    """Each hospital patient's person id after the last link decision about it."""
    latest: dict[str, tuple[int, str]] = {}
    for d in view.decisions:
        if d["patient_ref"] not in latest or d["sequence"] > latest[d["patient_ref"]][0]:
            latest[d["patient_ref"]] = (d["sequence"], d["person_id"])
    return {ref: person for ref, (_, person) in latest.items()}


def clusters(view: PipelineView) -> set[frozenset[str]]:
    """Hospital patients grouped by their final person."""
    groups: dict[str, set[str]] = {}
    for ref, person in person_of_patient(view).items():
        groups.setdefault(person, set()).add(ref)
    return {frozenset(g) for g in groups.values()}


def chunks(feeds: dict[str, list[FeedMessage]], parts: int) -> list[dict[str, list[FeedMessage]]]:
    return [{h: m[i::parts] for h, m in feeds.items()} for i in range(parts)]


async def ingest_committed(kafka: KafkaSettings, prefix: str, topic: str) -> int:
    admin = admin_client(kafka, "chaos-barrier")
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(f"{prefix}ingest")
    finally:
        await admin.close()
    committed = offsets.get(TopicPartition(topic, 0))
    return committed.offset if committed is not None and committed.offset >= 0 else 0


async def wait_ingested(
    kafka: KafkaSettings, prefix: str, topic: str, count: int, pipeline: LocalPipeline,
    events: list[str],
) -> None:  # fmt: skip
    """Until ingest has committed ``count`` messages of ``topic``, reviving what died."""
    deadline = asyncio.get_running_loop().time() + 300
    while True:
        try:
            if await ingest_committed(kafka, prefix, topic) >= count:
                return
        except KafkaError:
            pass  # the broker is coming back
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"ingest did not commit {count} messages of {topic}")
        events += [f"crash:{s}" for s in await asyncio.to_thread(pipeline.revive_dead)]
        await asyncio.sleep(0.3)


def admin_of(run_dir: Path, bootstrap: str) -> KafkaSettings:
    return broker.admin_settings(run_dir, bootstrap)


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
    # linker sees identity records in the order ingest wrote them: part by part, as published.
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
        published_on: Counter[str] = Counter()
        for target, chunk in zip(schedule, chunks(feeds, len(schedule)), strict=True):
            hospitals = sorted(chunk)
            for index, hospital in enumerate(hospitals):
                topic = topics.feed(hospital)
                await publish_messages(kafka, topic, chunk[hospital])
                published_on[topic] += len(chunk[hospital])
                if index == len(hospitals) - 1 and broker_dir is not None:
                    # Strike while ingest reads this part and the others work on what came before.
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
                    if target == "broker":
                        await asyncio.to_thread(broker.kill_broker, broker_dir)
                        await asyncio.to_thread(broker.restart_broker, broker_dir)
                        events.append("broker")
                    else:
                        await asyncio.to_thread(pipeline.restart, target)
                        events.append(target)
                await wait_ingested(kafka, prefix, topic, published_on[topic], pipeline, events)
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
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    assert published >= 10_000 and len(feeds) >= 3

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
    # The same ids, not only the same groups: every patient's person, every record's pseudonym.
    assert person_of_patient(chaos) == person_of_patient(calm)
    assert clusters(chaos) == clusters(calm)
    assert len({h for h in (r["hospital"] for r in chaos.identity)}) == len(feeds)
    assert {c["curated_id"]: c["pseudonym"] for c in chaos.curated} == {
        c["curated_id"]: c["pseudonym"] for c in calm.curated
    }
