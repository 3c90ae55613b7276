"""The baseline every service benchmark is measured against: a bare aiokafka consume -> produce
relay with the same exactly-once shape as ``biostream.processor`` (one Kafka transaction per poll
batch holding the outputs and the consumer offsets), but no decoding, no logic, no state.

Rates are reported per wall-clock second and per CPU second of this Python process (the broker's
JVM is not counted): on a shared 2-core machine the CPU-second rate is the "records/s per core"
figure that stays comparable between runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition
from biostream.kafka import group_consumer, plain_producer, transactional_producer
from biostream.settings import KafkaSettings

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Rate:
    records: int
    wall_s: float
    cpu_s: float

    @property
    def per_second(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Records per second of one core busy in this process: "records/s per core"."""
        return self.records / self.cpu_s if self.cpu_s > 0 else 0.0


class Stopwatch:
    """Wall and process CPU time, started at the first record so group joins do not count."""

    def __init__(self) -> None:
        self._wall0: float | None = None
        self._cpu0 = 0.0

    @property
    def started(self) -> bool:
        return self._wall0 is not None

    def start(self) -> None:
        if self._wall0 is None:
            self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def stop(self, records: int) -> Rate:
        assert self._wall0 is not None, "stopwatch never started"
        return Rate(records, time.perf_counter() - self._wall0, time.process_time() - self._cpu0)


async def preload(
    kafka: KafkaSettings,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes]],
    headers: Headers | None = None,
) -> None:
    """Publish the input before any measurement (idempotent producer, acks=all)."""
    producer = plain_producer(kafka, "bench-preload")
    await producer.start()
    try:
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, value, key=key, headers=headers or []))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def measure_relay(
    kafka: KafkaSettings,
    source: str,
    sink: str,
    expected: int,
    group: str,
    *,
    max_records: int = 500,
    timeout_s: float = 300.0,
) -> Rate:
    """Relays ``expected`` records from ``source`` to ``sink`` transactionally; returns the rate."""
    producer = transactional_producer(kafka, f"{group}-tx")
    consumer = group_consumer(kafka, group, group, max_records)
    consumer.subscribe(topics=[source])
    await producer.start()
    await consumer.start()
    watch = Stopwatch()
    relayed = 0
    deadline = time.monotonic() + timeout_s
    try:
        while relayed < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay moved {relayed} of {expected} records")
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            watch.start()
            offsets: dict[TopicPartition, int] = {}
            await producer.begin_transaction()
            for tp, records in batch.items():
                for record in records:
                    await producer.send(
                        sink, record.value, key=record.key, headers=list(record.headers or ())
                    )
                offsets[tp] = records[-1].offset + 1
                relayed += len(records)
            await producer.send_offsets_to_transaction(offsets, group)
            await producer.commit_transaction()
        return watch.stop(relayed)
    finally:
        await consumer.stop()
        await producer.stop()
