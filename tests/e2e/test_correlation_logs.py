"""An operator follows one feed message through the logs of all four services (each a process on
the real broker, SASL + ACLs) by its correlation id, and the logs carry no personal data."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev.observer import PipelineObserver
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.pipeline import SERVICES, LocalPipeline
from ingest.adapters.publisher import publish_messages

pytestmark = pytest.mark.e2e


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


def personal_values(identity: list[dict[str, Any]]) -> set[str]:
    values: set[str] = set()
    for record in identity:
        for name in ("family_name", "given_name", "name_latin", "rrn", "phone", "address",
                     "local_patient_no"):  # fmt: skip
            value = record.get(name)
            if isinstance(value, str) and len(value) >= 2:
                values.add(value)
        if record.get("family_name") and record.get("given_name"):
            values.add(f"{record['family_name']}{record['given_name']}")
        if record.get("birth_date"):
            values.add(record["birth_date"].isoformat())
    return values


async def test_one_records_correlation_id_is_in_every_services_log_without_personal_data(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=30, hospitals=2, seed=5, malformed_rate=0.0)
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs(sorted(feeds), ["cohort-demo"]))
    pipeline = LocalPipeline(
        kafka.bootstrap_servers, tmp_path / "run", topic_prefix=topic_prefix, admin=kafka,
        extra_env={"BIOSTREAM_LOG_LEVEL": "DEBUG"},
    )  # fmt: skip
    observer = PipelineObserver(kafka, topics, AvroCodec(SchemaRegistry()), ["cohort-demo"])
    try:
        await asyncio.to_thread(pipeline.start_all)
        await observer.start()
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        view = await observer.wait_until_settled(published, timeout_s=180)
        assert view.curated
    finally:
        await observer.stop()
        await asyncio.to_thread(pipeline.stop_all)

    services_by_id: dict[str, set[str]] = defaultdict(set)
    texts = {}
    for service in SERVICES:
        path = tmp_path / "run" / "logs" / f"{service}.log"
        texts[service] = path.read_text(errors="replace")
        for line in log_lines(path):
            if "correlation_id" in line:
                services_by_id[line["correlation_id"]].add(service)
            # The audit service handles other services' batched events: their ids, as a list.
            for correlation in line.get("correlation_ids", ()):
                services_by_id[correlation].add(service)
    feed_topics = {topics.feed(h) for h in feeds}
    # Every id names a feed position (topic/partition/offset), nothing else.
    for correlation in services_by_id:
        topic, partition, offset = correlation.rsplit("/", 2)
        assert topic in feed_topics and partition.isdigit() and offset.isdigit()
    # The feed messages that became curated records can be followed through all four services.
    followed = [c for c, s in services_by_id.items() if s == set(SERVICES)]
    assert len(followed) >= len(view.curated) // 4 > 0, dict(services_by_id)

    # No personal value from the feed appears in any service's log.
    personal = personal_values(view.identity)
    assert len(personal) > 50
    for service, text in texts.items():
        leaked = sorted(value for value in personal if value in text)
        assert leaked == [], f"{service} logged personal data: {leaked[:5]}"
