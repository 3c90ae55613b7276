"""Kafka edges of the desk: a group-less reader that follows the input topics from the start
(the desk keeps no state of its own; it is ready once it has read them to their end offsets at
its start, D26), and a producer for decisions and audit events."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.contract import Inbound, Outbound
from biostream.logs import get_logger
from biostream.restore import RESTORE_SETTING, FromStartFollower
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
        # The desk reads all its inputs; the steward's command line only the tasks and decisions.
        chosen = list(topics) if topics is not None else handler.input_topics
        self._handler = handler
        self._clock = clock
        self._log = get_logger("review.stream")
        self._follower = FromStartFollower(
            kafka, client_id, chosen, self._apply, "review desk catch-up", self._log,
            on_caught_up=self._caught_up, limit_s=limit_s, setting=setting, monotonic=monotonic,
        )  # fmt: skip

    @property
    def ready(self) -> bool:
        return self._follower.ready

    async def run(self, stop: asyncio.Event, until_caught_up: bool = False) -> None:
        await self._follower.run(stop, until_caught_up)

    def _caught_up(self) -> None:
        self._handler.refresh(self._clock())
        self._log.info("caught up", count=len(self._handler.desk.tasks))

    def _apply(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        for records in batch.values():
            for record in records:
                self._handler.on_record(Inbound.of(record), self._clock())
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
