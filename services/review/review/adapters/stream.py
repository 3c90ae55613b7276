"""Kafka edges of the desk: a group-less reader that follows the input topics from the start
(the desk keeps no state of its own), and a producer for decisions and audit events."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.contract import Outbound
from biostream.logs import get_logger
from biostream.settings import KafkaSettings

from review.handlers import ReviewHandler

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StreamFollower:
    """Reads every partition of the handler's input topics from the beginning; ``ready`` once it
    has caught up with the ends it saw at start."""

    def __init__(
        self, kafka: KafkaSettings, client_id: str, handler: ReviewHandler, clock: Clock = utc_now
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._handler = handler
        self._clock = clock
        self.ready = False
        self._log = get_logger("review.stream")

    async def run(self, stop: asyncio.Event, until_caught_up: bool = False) -> None:
        topics = self._handler.input_topics
        partitions = await kafka_clients.topic_partitions(self._kafka, topics)
        consumer = kafka_clients.reader(self._kafka, self._client_id)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                for records in batch.values():
                    for record in records:
                        self._handler.on_record(record.topic, record.value, self._clock())
                self._handler.refresh(self._clock())
                if not self.ready and all(
                    await asyncio.gather(*(self._caught_up(consumer, p, ends[p]) for p in ends))
                ):
                    self.ready = True
                    self._log.info("caught up", count=len(self._handler.desk.tasks))
                if self.ready and until_caught_up:
                    return
        finally:
            await consumer.stop()

    @staticmethod
    async def _caught_up(consumer: object, partition: object, end: int) -> bool:
        position = await consumer.position(partition)  # type: ignore[attr-defined]
        return int(position) >= end


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
