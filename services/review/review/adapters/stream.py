"""Kafka edges of the desk: a group-less reader that follows the input topics from the start
(the desk keeps no state of its own; it is ready once it has read them to their end offsets at
its start, D26), and a producer for decisions and audit events."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.contract import Inbound, Outbound
from biostream.logs import get_logger
from biostream.restore import RESTORE_SETTING, ReadStalled, open_reader, read_to_end
from biostream.settings import KafkaSettings

from review.handlers import ReviewHandler

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StreamFollower:
    """Reads every partition of the handler's input topics from the beginning, group-less (no
    consumer group, no changelog, no transactions: D-review-1, not Faust); ``ready`` once it has
    read up to the end offsets taken at its start, then follows on (D26).

    The catch-up has no "enough empty polls": it ends at those end offsets, however long that
    takes, or raises ``ReadStalled`` after ``limit_s`` without progress (the desk stops rather
    than serve a queue missing tasks, or showing decided ones open)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        client_id: str,
        handler: ReviewHandler,
        clock: Clock = utc_now,
        limit_s: float = 300.0,
        setting: str = RESTORE_SETTING,
        monotonic: Callable[[], float] = time.monotonic,
        topics: Sequence[str] | None = None,
    ) -> None:
        self._kafka = kafka
        # The desk reads all its inputs; the steward's command line only the tasks and decisions.
        self._topics = list(topics) if topics is not None else handler.input_topics
        self._client_id = client_id
        self._handler = handler
        self._clock = clock
        self._limit_s = limit_s
        self._setting = setting
        self._monotonic = monotonic
        self.ready = False
        self._log = get_logger("review.stream")

    async def run(self, stop: asyncio.Event, until_caught_up: bool = False) -> None:
        what = "review desk catch-up"
        consumer, partitions = await open_reader(
            self._kafka, self._client_id, self._topics, self._limit_s, what,
            setting=self._setting, log=self._log, clock=self._monotonic,
        )  # fmt: skip
        try:
            try:
                reading = read_to_end(
                    consumer, partitions, self._limit_s, what,
                    setting=self._setting, log=self._log, max_records=1000,
                    clock=self._monotonic,
                )  # fmt: skip
                async with contextlib.aclosing(reading) as catching_up:
                    async for batch in catching_up:
                        self._apply(batch)
                        if stop.is_set():
                            return
            except ReadStalled as stall:
                self._log.error(
                    "catch-up stalled, exiting",
                    stalled_s=round(stall.stalled_s, 1),
                    limit_s=self._limit_s,
                    offsets={
                        f"{x.topic}/{x.partition}": [x.position, x.end] for x in stall.lagging
                    },
                )
                raise
            self._handler.refresh(self._clock())
            self.ready = True
            self._log.info("caught up", count=len(self._handler.desk.tasks))
            if until_caught_up:
                return
            while not stop.is_set():
                self._apply(await consumer.getmany(timeout_ms=200, max_records=1000))
        finally:
            await consumer.stop()

    def _apply(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        for records in batch.values():
            for record in records:
                message = Inbound(
                    record.topic, record.partition, record.offset, record.key, record.value,
                    tuple(record.headers or ()), record.timestamp,
                )  # fmt: skip
                self._handler.on_record(message, self._clock())
        self._handler.refresh(self._clock())


class Publisher:
    def __init__(self, kafka: KafkaSettings, client_id: str) -> None:
        self._producer: AIOKafkaProducer = kafka_clients.plain_producer(kafka, client_id)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, messages: Sequence[Outbound]) -> None:
        """Waits for every acknowledgement: a decision is only reported as recorded once the
        broker has it."""
        for message in messages:
            await self._producer.send_and_wait(message.topic, message.value, key=message.key)
