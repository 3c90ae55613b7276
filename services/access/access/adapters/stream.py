"""Kafka edges of the access service: a group-less reader that replays ``access.events`` from
the start (the service's only store, D45; ready once it has read to the end offsets of its
start) and then follows it, and a transactional writer: a command's events and their audit
events, or a refusal's audit event, committed together or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.contract import Inbound, Outbound
from biostream.logs import get_logger
from biostream.restore import RESTORE_SETTING, ReadStalled, open_reader, read_to_end
from biostream.settings import KafkaSettings

from access.handlers import AccessHandler, Decided

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EventFollower:
    """D45: the state is rebuilt by replaying ``access.events`` at every start, then kept by
    following it (events the command line or another replica wrote)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        client_id: str,
        handler: AccessHandler,
        limit_s: float = 300.0,
        setting: str = RESTORE_SETTING,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._handler = handler
        self._limit_s = limit_s
        self._setting = setting
        self._monotonic = monotonic
        self.ready = False
        self._log = get_logger("access.stream")

    async def run(self, stop: asyncio.Event, until_caught_up: bool = False) -> None:
        what = "access events replay"
        consumer, partitions = await open_reader(
            self._kafka, self._client_id, self._handler.input_topics, self._limit_s, what,
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
                    "replay stalled, exiting",
                    stalled_s=round(stall.stalled_s, 1),
                    limit_s=self._limit_s,
                )
                raise
            self.ready = True
            self._log.info("replayed", count=len(self._handler.applications))
            if until_caught_up:
                return
            while not stop.is_set():
                self._apply(await consumer.getmany(timeout_ms=200, max_records=1000))
        finally:
            await consumer.stop()

    def _apply(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        for records in batch.values():
            for record in records:
                self._handler.on_record(
                    Inbound(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.key,
                        record.value,
                        tuple(record.headers or ()),
                        record.timestamp,
                    )
                )


class TransactionalWriter:
    """One transactional producer (its own transactional id, ``access-*`` by ACL)."""

    def __init__(self, kafka: KafkaSettings, transactional_id: str) -> None:
        self._producer: AIOKafkaProducer = kafka_clients.transactional_producer(
            kafka, transactional_id
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def write(self, messages: Sequence[Outbound]) -> None:
        """D45: every message committed in one transaction, or none (the error is raised)."""
        await self._producer.begin_transaction()
        try:
            for message in messages:
                await self._producer.send_and_wait(
                    message.topic, message.value, key=message.key,
                    headers=list(message.headers) or None,
                )  # fmt: skip
            await self._producer.commit_transaction()
        except BaseException:
            await self._producer.abort_transaction()
            raise


class Writer(Protocol):
    async def write(self, messages: Sequence[Outbound]) -> None: ...


class CommandDesk:
    """Decides and writes one command at a time (so two commands of this process never take the
    same sequence), applying its events once they are committed."""

    def __init__(self, handler: AccessHandler, writer: Writer) -> None:
        self.handler = handler
        self.writer = writer
        self._lock = asyncio.Lock()

    async def run(self, decide: Callable[[AccessHandler], Decided]) -> Decided:
        async with self._lock:
            decided = decide(self.handler)
            if not decided.messages:
                return decided  # D48: a report already kept, or for no known request
            await self.writer.write(decided.messages)
            self.handler.applied(decided.events)
            return decided
