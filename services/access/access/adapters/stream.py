"""Kafka edges of the access service: a group-less reader that replays ``access.events`` from
the start (the service's only store, D45; ready once it has read to the end offsets of its
start) and then follows it, and a transactional writer: a command's events and their audit
events, or a refusal's audit event, committed together or not at all."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.contract import Inbound, Outbound
from biostream.logs import get_logger
from biostream.restore import RESTORE_SETTING, FromStartFollower
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
        self._handler = handler
        self._log = get_logger("access.stream")
        self._follower = FromStartFollower(
            kafka, client_id, handler.input_topics, self._apply, "access events replay",
            self._log, on_caught_up=self._replayed, limit_s=limit_s, setting=setting,
            monotonic=monotonic,
        )  # fmt: skip

    @property
    def ready(self) -> bool:
        return self._follower.ready

    async def run(self, stop: asyncio.Event, until_caught_up: bool = False) -> None:
        await self._follower.run(stop, until_caught_up)

    def _replayed(self) -> None:
        self._log.info("replayed", count=len(self._handler.applications))

    def _apply(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        for records in batch.values():
            for record in records:
                self._handler.on_record(Inbound.of(record))


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
