"""A state restore with the broker paused (SIGSTOP) halfway: the service restores every key before it
is ready or handles an input, or it stops with an error; it never runs on part of its state (D22).

The broker is this module's own (``pausable``, in conftest.py; no authentication): pausing the
session's shared broker could disturb the tests after this one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.contract import Inbound, Outbound
from biostream.kafka import ensure_topics
from biostream.observability import ProcessorMetrics
from biostream.processor import ProcessorConfig, TransactionalProcessor
from biostream.restore import RestoreStalled
from biostream.service import RunnableService, run_until_stopped
from biostream.settings import KafkaSettings, ServiceSettings
from biostream.state import StateStore
from biostream.topics import COMPACTED, FOREVER, TopicSpec
from biostream_dev import broker
from prometheus_client import CollectorRegistry

from .conftest import Broker

pytestmark = pytest.mark.integration

CHANGELOG = "restore-test.state-changelog"
PARTITIONS = 2
KEYS = 400_000  # a restore of a few seconds on a two-core machine
PER_TRANSACTION = 50_000


def expected_state() -> dict[str, bytes | None]:
    """What the changelog holds at the end: every key once, some overwritten, some deleted."""
    state: dict[str, bytes | None] = {f"k{n:07d}": f"v{n}".encode() for n in range(KEYS)}
    for n in range(0, KEYS, 97):
        state[f"k{n:07d}"] = f"v{n}-second".encode()
    for n in range(0, KEYS, 101):
        state[f"k{n:07d}"] = None
    return state


async def write_changelog(kafka: KafkaSettings) -> None:
    """The records in transactions (the log ends in a commit marker, as a service's does), each
    key in one partition, overwrites and tombstones after the first values."""
    await ensure_topics(kafka, [TopicSpec(CHANGELOG, PARTITIONS, COMPACTED)])
    producer = kafka_clients.transactional_producer(kafka, "restore-test-writer")
    await producer.start()
    try:
        first = [(f"k{n:07d}", f"v{n}".encode()) for n in range(KEYS)]
        later: list[tuple[str, bytes | None]] = [
            (f"k{n:07d}", f"v{n}-second".encode()) for n in range(0, KEYS, 97)
        ]
        later += [(f"k{n:07d}", None) for n in range(0, KEYS, 101)]
        records: list[tuple[str, bytes | None]] = [*first, *later]
        for start in range(0, len(records), PER_TRANSACTION):
            await producer.begin_transaction()
            await _send(producer, records[start : start + PER_TRANSACTION])
            await producer.commit_transaction()
    finally:
        await producer.stop()


async def _send(producer: AIOKafkaProducer, records: list[tuple[str, bytes | None]]) -> None:
    """Straight into record batches (``send`` per record would take most of the test's time)."""
    builders: dict[int, Any] = {}
    deliveries = []
    for key, value in records:
        partition = sum(key.encode()) % PARTITIONS
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(key=key.encode(), value=value, timestamp=None) is None:
            deliveries.append(await producer.send_batch(builder, CHANGELOG, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(key=key.encode(), value=value, timestamp=None)
    for partition, builder in builders.items():
        deliveries.append(await producer.send_batch(builder, CHANGELOG, partition=partition))
    await asyncio.gather(*deliveries)


@pytest.fixture(scope="module")
async def changelog(pausable: Broker) -> dict[str, bytes]:
    await write_changelog(pausable.kafka)
    return {k: v for k, v in expected_state().items() if v is not None}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@dataclasses.dataclass
class Observed:
    """What the test saw of the service: readiness samples and the state size at each input."""

    ready_with_keys: list[int] = dataclasses.field(default_factory=list)
    handled_with_keys: list[int] = dataclasses.field(default_factory=list)
    readyz_while_paused: list[int] = dataclasses.field(default_factory=list)


async def service_under_test(
    pausable: Broker, name: str, limit_s: float, observed: Observed, single_writer: bool = False
) -> RunnableService:
    """The service: its input topic holds one message already; the handler notes the state size."""
    settings = ServiceSettings(
        kafka=pausable.kafka,
        topic_prefix=f"{name}.",
        instance_id=name,
        metrics_port=free_port(),
        poll_timeout_ms=100,
        restore_timeout_s=limit_s,
    )
    inputs = f"{name}.inputs"
    await ensure_topics(pausable.kafka, [TopicSpec(inputs, 1, FOREVER)])
    producer = kafka_clients.plain_producer(pausable.kafka, f"{name}-input")
    await producer.start()
    try:
        await producer.send_and_wait(inputs, b"an input", key=b"input-1")
    finally:
        await producer.stop()
    config = dataclasses.replace(
        ProcessorConfig.for_service(settings, "restorer", [inputs]),
        changelog_topic=CHANGELOG,
        single_writer=single_writer,
    )

    def handler(message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        observed.handled_with_keys.append(len(state))
        return []

    registry = CollectorRegistry()
    processor = TransactionalProcessor(
        config, handler, lambda _m, _e, _n: [], ProcessorMetrics.create(registry, "restorer")
    )
    return RunnableService("restorer", settings, registry, processor)


async def watch_readiness(service: RunnableService, observed: Observed) -> None:
    while True:
        if service.processor.ready:
            observed.ready_with_keys.append(len(service.processor.state))
        await asyncio.sleep(0.01)


async def restore_started(service: RunnableService) -> int:
    """Waits until the restore has read some keys (the moment to pause the broker)."""
    for _ in range(60_000):
        restored = len(service.processor.state)
        if restored > 0:
            return restored
        await asyncio.sleep(0.001)
    raise AssertionError("the restore never started")


@pytest.mark.parametrize(
    "single_writer",
    [False, True],
    ids=["restore-at-start", "single-writer-restores-on-assignment"],
)
async def test_a_paused_broker_mid_restore_delays_readiness_until_every_key_is_restored(
    pausable: Broker, changelog: dict[str, bytes], single_writer: bool
) -> None:
    """A single writer (linkage) restores in its run loop once it holds the inputs: the same
    promise holds there."""
    observed = Observed()
    name = "case1w" if single_writer else "case1"
    service = await service_under_test(pausable, name, 120.0, observed, single_writer)
    stop = asyncio.Event()
    run = asyncio.create_task(run_until_stopped(service, stop))
    watcher = asyncio.create_task(watch_readiness(service, observed))
    try:
        await restore_started(service)
        broker.pause_broker(pausable.run_dir)
        try:
            # Longer than the old restore's give-up (10 empty polls of 200 ms), well inside the limit.
            for _ in range(6):
                await asyncio.sleep(1)
                status = await asyncio.to_thread(readyz, service.settings.metrics_port)
                observed.readyz_while_paused.append(status)
            before_resume = len(service.processor.state)
        finally:
            broker.resume_broker(pausable.run_dir)
        for _ in range(1800):
            if observed.handled_with_keys or run.done():
                break
            await asyncio.sleep(0.1)
        if run.done():
            run.result()
        assert observed.handled_with_keys, "the input was never handled"
        assert service.processor.ready
        assert await asyncio.to_thread(readyz, service.settings.metrics_port) == 200
    finally:
        stop.set()
        watcher.cancel()
        await asyncio.gather(run, watcher, return_exceptions=True)

    # The broker stopped answering with most of the changelog unread (else the test shows nothing).
    assert before_resume < len(changelog)
    state = service.processor.state
    assert len(state) == len(changelog)
    assert all(state.get(key) == value for key, value in changelog.items())
    # Never ready, never handling, on part of the state; the health server answered all along.
    assert observed.handled_with_keys == [len(changelog)]
    assert set(observed.ready_with_keys) <= {len(changelog)}
    assert observed.readyz_while_paused == [503] * 6


async def test_a_broker_paused_past_the_limit_stops_the_service_unready(
    pausable: Broker, changelog: dict[str, bytes]
) -> None:
    observed = Observed()
    service = await service_under_test(pausable, "case2", 5.0, observed)
    stop = asyncio.Event()
    run = asyncio.create_task(run_until_stopped(service, stop))
    watcher = asyncio.create_task(watch_readiness(service, observed))
    try:
        await restore_started(service)
        with broker.paused(pausable.run_dir):
            status = await asyncio.to_thread(readyz, service.settings.metrics_port)
            observed.readyz_while_paused.append(status)
            # Paused until the service gives up (the bound is only there for the old code).
            done, _ = await asyncio.wait({run}, timeout=180)
            restored_when_stopped = len(service.processor.state)
            assert done, "the service neither stopped nor restored"
    finally:
        stop.set()
        watcher.cancel()
        await asyncio.gather(run, watcher, return_exceptions=True)

    with pytest.raises(RestoreStalled, match="no progress from the broker"):
        run.result()
    assert restored_when_stopped < len(changelog)
    assert observed.readyz_while_paused == [503]
    assert observed.ready_with_keys == []
    assert observed.handled_with_keys == []
