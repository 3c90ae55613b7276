"""The catch-up loop: reads the dataset's data and notices topics with the project's credentials
and applies them to the local copy in the order of ``domain.ordering``.

No consumer group: the position lives in the local copy (same transaction as the data), so the
copy, not the broker, decides where to resume. Reads are read_committed: the pseudonymizer writes
transactionally, and an aborted release must never reach a project.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from biostream.codec import AvroCodec, DecodeError
from biostream.contracts import CURATED_RECORD, DATASET_NOTICE
from biostream.kafka import TopicUnavailable, reader, topic_partitions
from biostream.restore import end_offsets, read_to_end
from biostream.settings import KafkaSettings

from biostream_consumer.adapters.store import LocalCopy, Position, Received
from biostream_consumer.domain.ordering import behind


class ProgressSink(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def finish(self) -> None:
        pass


class AccessRefused(Exception):
    """D46: the broker refuses this principal the dataset's topics: its approval ended (a
    ``DATASET_WITHDRAWN`` notice, if it was read in time, says why) or was never granted."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"the broker refuses this principal access to {topic}")
        self.topic = topic


@dataclass
class SyncReport:
    """What one ``sync`` read and did: ``messages_read`` counts every message taken from Kafka."""

    messages_read: int = 0
    records_written: int = 0
    notices_applied: int = 0
    records_moved: int = 0
    records_deleted: int = 0
    skipped: int = 0
    started_from: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetTopics:
    data: str
    notices: str


class Clock(Protocol):
    def __call__(self) -> dt.datetime: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DatasetSource:
    def __init__(
        self,
        kafka: KafkaSettings,
        topics: DatasetTopics,
        codec: AvroCodec,
        store: LocalCopy,
        client_id: str,
        clock: Clock = utc_now,
        max_records: int = 1000,
        read_timeout_s: float = 120.0,
    ) -> None:
        self.kafka, self.topics, self.codec, self.store = kafka, topics, codec, store
        self.client_id, self.clock, self.max_records = client_id, clock, max_records
        self.read_timeout_s = read_timeout_s

    async def sync(
        self,
        progress: ProgressSink | None = None,
        stop: asyncio.Event | None = None,
        follow: bool = False,
        idle_s: float = 1.0,
    ) -> SyncReport:
        """Catches up to the topics' end offsets taken at the start of each round, or raises
        ``ReadStalled`` (D26); with ``follow``, keeps going until ``stop``. A broker that
        refuses the principal the topics (D46: the approval ended) raises ``AccessRefused``;
        what was applied before is kept with its positions."""
        try:
            return await self._sync(progress, stop, follow, idle_s)
        except TopicUnavailable as error:
            if error.unauthorised:
                raise AccessRefused(error.topic) from None
            raise
        except (TopicAuthorizationFailedError, GroupAuthorizationFailedError):
            raise AccessRefused(self.topics.data) from None

    async def _sync(
        self,
        progress: ProgressSink | None,
        stop: asyncio.Event | None,
        follow: bool,
        idle_s: float,
    ) -> SyncReport:
        progress = progress or NoProgress()
        report = SyncReport()
        consumer = reader(self.kafka, self.client_id)
        data = await topic_partitions(self.kafka, [self.topics.data])
        notices = await topic_partitions(self.kafka, [self.topics.notices])
        await consumer.start()
        try:
            consumer.assign(data + notices)
            stored = self.store.positions()
            for tp in data + notices:
                offset = stored.get((tp.topic, tp.partition))
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                    offset = 0
                else:
                    consumer.seek(tp, offset)
                report.started_from[(tp.topic, tp.partition)] = offset
            while True:
                # Notices' end first, then the data's end: see domain.ordering.
                notice_end = await self._ends(consumer, notices)
                data_end = await self._ends(consumer, data)
                positions = {
                    (tp.topic, tp.partition): await consumer.position(tp) for tp in data + notices
                }
                left = behind(positions, {**data_end, **notice_end})
                progress.start(sum(left.values()))
                await self._drain(consumer, data, data_end, self._apply_records, report, progress)
                await self._drain(
                    consumer, notices, notice_end, self._apply_notices, report, progress
                )
                progress.finish()
                if not follow or (stop is not None and stop.is_set()):
                    return report
                if stop is None:
                    await asyncio.sleep(idle_s)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_s)
        finally:
            await consumer.stop()

    async def _ends(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[tuple[str, int], int]:
        what = f"dataset sync of {partitions[0].topic}" if partitions else "dataset sync"
        ends = await end_offsets(consumer, partitions, self.read_timeout_s, what)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def _drain(
        self,
        consumer: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        ends: dict[tuple[str, int], int],
        apply: Callable[[list[Received], SyncReport], None],
        report: SyncReport,
        progress: ProgressSink,
    ) -> None:
        """Reads ``partitions`` up to ``ends`` (never past: a later notice may refer to records
        beyond the data end taken in this round) and applies them batch by batch; raises
        ``ReadStalled`` once the broker has made no progress for ``read_timeout_s`` (D26): the
        copy then holds what was applied, with its positions, and the next sync goes on from
        there, but this sync does not report itself caught up."""
        targets = {tp: ends[(tp.topic, tp.partition)] for tp in partitions}
        what = f"dataset sync of {partitions[0].topic}" if partitions else "dataset sync"
        async for fetched in read_to_end(
            consumer, partitions, self.read_timeout_s, what,
            ends=targets, max_records=self.max_records,
        ):  # fmt: skip
            batch = [self._decode(tp, m.offset, m.value) for tp, ms in fetched.items() for m in ms]
            apply(batch, report)
            report.messages_read += len(batch)
            progress.advance(len(batch))
        await self._record_positions(consumer, partitions)

    async def _record_positions(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> None:
        """Stores positions that moved without a message to apply (an empty partition, or past
        transaction markers), so that every partition has a stored position to resume from."""
        stored = self.store.positions()
        moved = {}
        for tp in partitions:
            position = await consumer.position(tp)
            if position > stored.get((tp.topic, tp.partition), -1):
                moved[(tp.topic, tp.partition)] = position
        if moved:
            self.store.save_positions(moved)

    def _decode(self, tp: TopicPartition, offset: int, value: bytes | None) -> Received:
        contract = CURATED_RECORD if tp.topic == self.topics.data else DATASET_NOTICE
        position = Position(tp.topic, tp.partition, offset)
        try:
            record: dict[str, Any] = self.codec.decode(value, contract)
        except DecodeError as error:
            return Received(position, None, error.reason_code)
        return Received(position, record)

    def _apply_records(self, batch: list[Received], report: SyncReport) -> None:
        report.records_written += self.store.apply_records(batch, self.clock())
        report.skipped += sum(1 for item in batch if item.record is None)

    def _apply_notices(self, batch: list[Received], report: SyncReport) -> None:
        outcomes = self.store.apply_notices(batch, self.clock())
        report.notices_applied += sum(1 for o in outcomes if not o.duplicate)
        report.records_moved += sum(o.moved for o in outcomes)
        report.records_deleted += sum(o.deleted for o in outcomes)
        report.skipped += sum(1 for item in batch if item.record is None)
