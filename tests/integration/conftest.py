"""Fixtures of the integration tests that need more than the session's shared broker, and plain
helpers several of them share (imported as ``from .conftest import ...``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from biostream.kafka import reader, topic_partitions
from biostream.settings import KafkaSettings
from biostream_dev import access, broker


@dataclasses.dataclass(frozen=True)
class Broker:
    """A broker of one test module's own (no authentication), to pause and resume at will."""

    run_dir: Path
    kafka: KafkaSettings


def run_root() -> Path:
    """``.run`` at the top of the repository, where the pausable brokers keep their run dirs."""
    root = Path(__file__).resolve().parents[2] / ".run"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="module")
def pausable() -> Iterator[Broker]:
    """A broker of the module's own: pausing (SIGSTOP) the session's shared broker would disturb
    the other tests. Resumed (if paused) and stopped when the module's tests are done."""
    with tempfile.TemporaryDirectory(prefix="kafka-pause-", dir=run_root()) as tmp:
        run_dir = Path(tmp)
        info = broker.start_broker(run_dir, authentication=True)
        try:
            yield Broker(run_dir, broker.admin_settings(run_dir, info.bootstrap))
        finally:
            with contextlib.suppress(broker.BrokerError):
                broker.resume_broker(run_dir)
            broker.stop_broker(run_dir)


async def topic_messages(kafka: KafkaSettings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of every message on ``topic``, from its start to its end now."""
    consumer = reader(kafka, "test-topic-messages")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[bytes | None, bytes]] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=1000)
            found += [(r.key, r.value or b"") for rs in batch.values() for r in rs]
        return found
    finally:
        await consumer.stop()


async def hospital_kafka(admin: KafkaSettings, prefix: str, hospital: str) -> KafkaSettings:
    """The Kafka settings of a hospital's own principal from the ACL matrix (it may write only
    its feed), created with a fresh password; what a hospital intake runs as (D37, D38)."""
    role = f"hospital-{hospital.lower()}"  # principal names are lowercase (Strimzi users)
    principals = access.render(access.load_matrix(), prefix=prefix, hospitals=[hospital])
    credentials = await asyncio.to_thread(access.apply, admin, {role: principals[role]})
    await access.wait_until_usable(credentials)
    return credentials.settings(role)
