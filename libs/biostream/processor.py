"""Exactly-once stream processing on Kafka transactions, with a durable key-value state.

The engine only. What a handler receives and returns is ``biostream.contract``; the state it
reads and writes is ``biostream.state``; one message through a handler (correlation, rollback,
dead letters) is ``biostream.step``, shared with the test driver ``biostream.testing.drive``; the
single-writer assignment is ``biostream.assignor``.

Each poll batch is one Kafka transaction holding: every output of every message, the state
changes the batch made (to a compacted changelog topic) and the consumer offsets. Either all of it
becomes visible to ``read_committed`` readers or none of it does, so a crash at any moment is
recovered by restarting: the producer's ``init_transactions`` (same ``transactional.id``) aborts
what the dead process left open, the state is rebuilt from the changelog, and consumption resumes
at the committed offsets.

The rebuild reads every changelog partition to the end offset it had when the restore started
(``biostream.restore``, D22), however long that takes; the processor is not ready (``/readyz``
answers 503) and handles nothing meanwhile. If the broker makes no progress for
``restore_timeout_s`` (``BIOSTREAM_RESTORE_TIMEOUT_S``), ``run`` raises ``RestoreStalled`` and the
service exits: it never runs on part of its state. A single-writer member (linkage) restores the
same way, in its run loop, each time it becomes the writer.

The outputs are appended into one record batch per partition and handed to the producer together,
and the commit waits for the broker's acknowledgement of every batch (D16); a service's audit
events leave as one ``AuditEventBatch`` per transaction (``AuditBatching``, D15).
A service may hold the records of some inputs back in memory, uncommitted, until its handler can
deal with them in one go (``HoldForReady``, ``biostream.holdback``, D18: the pseudonymizer's
clinical records wait for their link decision); the committed offset of such a partition stops at
its first held record, so a held record is handled in a later transaction or, after a crash, read
again.

faust-streaming offers the same shape, but its exactly-once mode and table recovery have open
duplicate and loss bugs (see docs/decisions.md), so the hops that must not lose or duplicate a record
run on this loop directly.

One instance per ``app_id`` owns the whole state (D2). Several instances of one service need their
own partitions of state, which this engine does not yet have (the scale-out issue); until then a
second instance is either a single-writer standby (``single_writer``, linkage, D-linkage-3) or not
run at all. ``instance_id`` is part of the transactional id so that a restarted instance fences
exactly its own predecessor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from biostream import kafka as kafka_clients
from biostream.assignor import SingleWriterAssignor
from biostream.batching import PartitionCache, TransactionOutputs
from biostream.contract import (
    FailureHandler,
    Handler,
    IdleHandler,
    Inbound,
    Outbound,
    correlation_of,
)
from biostream.holdback import HoldBack, HoldPolicy
from biostream.logs import get_logger
from biostream.observability import ProcessorMetrics
from biostream.restore import restore_changelog
from biostream.settings import KafkaSettings, ServiceSettings
from biostream.state import StateStore
from biostream.step import handle_message
from biostream.topics import Topics


@dataclass(frozen=True)
class AuditBatching:
    """Audit events (outputs to ``topic``) are not written one message each: at commit, all of a
    transaction's events go to ``pack``, whose few messages are written instead."""

    topic: str
    # (events, the correlation id of each, when) -> the messages to write
    pack: Callable[[list[bytes], list[str | None], dt.datetime], list[Outbound]]


@dataclass(frozen=True)
class HoldForReady:
    """Input records of ``policy.topics`` wait in memory (``biostream.holdback``) until
    ``ready(message, state)``: for a handler that would otherwise park them in its state."""

    policy: HoldPolicy
    ready: Callable[[Inbound, StateStore], bool]


@dataclass(frozen=True)
class Replay:
    """D46: the handler asks for retained records of ``topic`` again (a dataset approved
    mid-stream receives its history): ``wanted(state)`` names, per partition, the first offset
    still needed and the end (exclusive); the engine reads them with a read_committed reader
    of its own (no group), hands each record below its end to ``handle``, then tells
    ``advanced(state, positions, now)`` how far it read, and commits all of that as one
    transaction without input offsets: the handler keeps its replay position in its state,
    so what was released and how far the replay got cannot disagree after a crash.
    Replay batches alternate with live batches, so the live stream never waits for a history
    to finish."""

    topic: str
    wanted: Callable[[StateStore], dict[int, tuple[int, int]]]
    handle: Handler
    advanced: Callable[[StateStore, dict[int, int], dt.datetime], list[Outbound]]
    max_records: int = 5000


@dataclass
class ProcessorConfig:
    kafka: KafkaSettings
    app_id: str
    instance_id: str
    input_topics: list[str]
    input_pattern: str | None = None
    changelog_topic: str | None = None
    max_records: int = 500
    poll_timeout_ms: int = 200
    idle_interval_ms: int = 1000
    # Single writer: every partition of the inputs goes to one member of the group; the others
    # stand by and take over (restoring the state from the changelog) when it leaves or dies.
    # For state that cannot be partitioned (linkage's person index; docs/decisions.md).
    single_writer: bool = False
    # A state restore fails (and the service exits) after this long without progress (D22).
    restore_timeout_s: float = 300.0

    @classmethod
    def for_service(
        cls, settings: ServiceSettings, service: str, input_topics: list[str], **options: Any
    ) -> ProcessorConfig:
        """What every service shares: group and transactional ids from its name (prefixed in
        tests), its state changelog, and the batch settings; ``options`` set the rest."""
        return cls(
            kafka=settings.kafka,
            app_id=f"{settings.topic_prefix}{service}",
            instance_id=settings.instance_id,
            input_topics=input_topics,
            changelog_topic=Topics(settings.topic_prefix).state(service),
            max_records=settings.batch_max_records,
            poll_timeout_ms=settings.poll_timeout_ms,
            restore_timeout_s=settings.restore_timeout_s,
            **options,
        )


class TransactionalProcessor:
    def __init__(
        self,
        config: ProcessorConfig,
        handler: Handler,
        on_failure: FailureHandler,
        metrics: ProcessorMetrics,
        clock: Callable[[], dt.datetime] | None = None,
        on_idle: IdleHandler | None = None,
        audit_batching: AuditBatching | None = None,
        hold: HoldForReady | None = None,
        replay: Replay | None = None,
        on_commit: Callable[[StateStore], None] | None = None,
    ) -> None:
        self.config = config
        self.replay = replay
        # Told after each committed transaction and after a restore: what the state says now is
        # durable (D46: the broker's ACLs follow committed decisions only).
        self.on_commit = on_commit
        self._replay_reader: AIOKafkaConsumer | None = None
        self._replay_at: dict[int, int] = {}
        self.audit_batching = audit_batching
        self.hold = hold
        self.held: HoldBack[TopicPartition, Inbound] | None = (
            HoldBack(hold.policy) if hold else None
        )
        self.on_idle = on_idle
        self.handler = handler
        self.on_failure = on_failure
        self.metrics = metrics
        self.state = StateStore()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._consuming = False  # the consumer has started and joined its group
        self._restoring = False
        self._lag_measured_at = 0.0
        self.holds_partitions = False  # single writer: this member owns the inputs now
        self.restore_pending = False
        self._partitions: PartitionCache  # set in run(), with its producer
        self._log = get_logger("biostream.processor")

    @property
    def ready(self) -> bool:
        """Consuming, with the whole state restored: never while a restore runs or is due."""
        return self._consuming and not self._restoring and not self.restore_pending

    def _show_readiness(self) -> None:
        self.metrics.ready.set(1 if self.ready else 0)

    @property
    def transactional_id(self) -> str:
        return f"{self.config.app_id}-{self.config.instance_id}"

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        producer = kafka_clients.transactional_producer(cfg.kafka, self.transactional_id)
        # Starting the transactional producer first aborts any transaction a crashed predecessor
        # left open, so the state restore below only ever sees committed changes.
        await producer.start()
        self._partitions = PartitionCache(producer)
        consumer = None
        try:
            listener: ConsumerRebalanceListener | None = None
            assignors: tuple[type, ...] | None = None
            if cfg.single_writer or self.held is not None:
                listener = _OnRebalance(self)
            if cfg.single_writer:
                # A class per processor: the assignor's metadata tells whether this member is
                # the writer now, so that a joining member never takes the partitions over.
                assignors = (
                    type("SingleWriterAssignor", (SingleWriterAssignor,), {"processor": self}),
                )
            elif cfg.changelog_topic:
                await self._restore_state(cfg.changelog_topic)
            consumer = kafka_clients.group_consumer(
                cfg.kafka, cfg.app_id, self.transactional_id, cfg.max_records, assignors=assignors
            )
            if cfg.input_pattern:
                consumer.subscribe(pattern=cfg.input_pattern, listener=listener)
            else:
                consumer.subscribe(topics=cfg.input_topics, listener=listener)
            await consumer.start()
            self._consuming = True
            self._show_readiness()
            self._log.info(
                "consuming", group=cfg.app_id, topics=cfg.input_topics or [str(cfg.input_pattern)]
            )
            last_idle = time.monotonic()
            while not stop.is_set():
                # While a replay has work, the live poll does not wait: the two alternate.
                replaying = self._replay_reader is not None
                batch = await consumer.getmany(timeout_ms=0 if replaying else cfg.poll_timeout_ms)
                if self.restore_pending and cfg.changelog_topic:
                    # Newly the writer: start from the committed state (in this task, never
                    # concurrently with a batch; the rebalance itself runs in aiokafka's task).
                    self.restore_pending = False
                    self.state = StateStore()
                    await self._restore_state(cfg.changelog_topic)
                    self._show_readiness()
                if batch or self.held:
                    await self._process_batch(producer, batch)
                if not batch and (
                    self.on_idle is not None
                    and time.monotonic() - last_idle >= cfg.idle_interval_ms / 1000
                ):
                    last_idle = time.monotonic()
                    await self._process_idle(producer, self.on_idle)
                if self.replay is not None and self.ready:
                    await self._replay_step(producer, self.replay)
                await self._record_lag(consumer)
        finally:
            self._consuming = False
            self._show_readiness()
            if self._replay_reader is not None:
                await self._replay_reader.stop()
                self._replay_reader = None
            if consumer is not None:
                await consumer.stop()
            await producer.stop()

    async def _process_batch(
        self,
        producer: AIOKafkaProducer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        started = time.monotonic()
        now = self.clock()
        now_ms = now.timestamp() * 1000
        offsets: dict[TopicPartition, int] = {}
        produced: list[Outbound] = []
        consumed: Counter[str] = Counter()
        lag = self.metrics.event_lag_seconds
        held = self.held
        for tp, records in batch.items():
            consumed[tp.topic] += len(records)
            if held is not None and held.holds(tp.topic):
                held.add(tp, [_inbound(record) for record in records], started)
                continue
            for record in records:
                message = _inbound(record)
                lag.observe(max(0.0, (now_ms - message.timestamp_ms) / 1000))
                produced += handle_message(self.handler, self.on_failure, self.state, message, now)
            offsets[tp] = records[-1].offset + 1
        if held:
            assert self.hold is not None
            ready, state = self.hold.ready, self.state
            # After the other inputs of the batch: the records they make ready go out with them.
            for tp, message in held.release(lambda m: ready(m, state), started):
                lag.observe(max(0.0, (now_ms - message.timestamp_ms) / 1000))
                produced += handle_message(self.handler, self.on_failure, self.state, message, now)
                offsets[tp] = message.offset + 1
            for reason, count in held.drain_outcomes().items():
                self.metrics.hold_releases.labels(reason).inc(count)
            self.metrics.held_back.set(len(held))
        for topic, count in consumed.items():
            self.metrics.messages_in.labels(topic).inc(count)
        if not offsets:
            return  # only records still held: nothing to commit
        await self._commit(producer, produced, offsets, now)
        self.metrics.state_keys.set(len(self.state))
        self.metrics.batch_seconds.observe(time.monotonic() - started)

    async def _commit(
        self,
        producer: AIOKafkaProducer,
        produced: list[Outbound],
        offsets: dict[TopicPartition, int] | None,
        now: dt.datetime,
    ) -> None:
        """One transaction: the outputs, the state changes since the last commit and (for a
        consumed batch) the input offsets."""
        batching = self.audit_batching
        if batching is not None:
            audit = [out for out in produced if out.topic == batching.topic and out.value]
            if audit:
                produced = [out for out in produced if out.topic != batching.topic]
                events = [out.value for out in audit if out.value]
                produced += batching.pack(events, [correlation_of(out) for out in audit], now)
                self.metrics.audit_events.inc(len(events))
        changes = self.state.drain_changes() if self.config.changelog_topic else {}
        if not produced and not changes and not offsets:
            return
        changelog = self.config.changelog_topic
        topics = {out.topic for out in produced}
        if changes:
            assert changelog is not None
            topics.add(changelog)
        await self._partitions.ensure(topics)
        await producer.begin_transaction()
        try:
            outputs = TransactionOutputs(producer, self._partitions)
            written: Counter[str] = Counter()
            for out in produced:
                outputs.add(out.topic, out.value, out.key, out.headers)
                written[out.topic] += 1
            for key, value in changes.items():
                assert changelog is not None
                outputs.add(changelog, value, key.encode())
            await outputs.send()
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.config.app_id)
            await producer.commit_transaction()
        except BaseException:
            self.metrics.transactions.labels("aborted").inc()
            # The in-memory state and consumer position are now ahead of what Kafka holds; the
            # only safe continuation is a restart, which rebuilds both from committed data.
            with contextlib.suppress(Exception):  # the original error is the one worth raising
                await producer.abort_transaction()
            raise
        for topic, count in written.items():
            self.metrics.messages_out.labels(topic).inc(count)
        self.metrics.transactions.labels("committed").inc()
        if self.on_commit is not None:
            self.on_commit(self.state)

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag = last stable offset (what read_committed can see) minus the consumer's position.
        Measured at most once a second: it is for dashboards and autoscaling, not per message."""
        now = time.monotonic()
        if now - self._lag_measured_at < 1.0:
            return
        self._lag_measured_at = now
        for tp in consumer.assignment():
            stable = consumer.last_stable_offset(tp)
            if stable is None:
                continue
            position = await consumer.position(tp)
            lag = max(0, stable - position)
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    async def _replay_step(self, producer: AIOKafkaProducer, replay: Replay) -> None:
        """One batch of the records ``replay`` wants, handled and committed (D46)."""
        wanted = replay.wanted(self.state)
        if not wanted:
            if self._replay_reader is not None:
                await self._replay_reader.stop()
                self._replay_reader, self._replay_at = None, {}
            return
        reader = self._replay_reader
        if reader is None:
            reader = kafka_clients.reader(
                self.config.kafka, f"{self.transactional_id}-replay", 4 * 1_048_576
            )
            await reader.start()
            self._replay_reader = reader
        partitions = {p: TopicPartition(replay.topic, p) for p in wanted}
        if set(reader.assignment()) != set(partitions.values()):
            reader.assign(list(partitions.values()))
            self._replay_at = {}
        for partition, (first, _end) in wanted.items():
            if self._replay_at.get(partition) != first:
                reader.seek(partitions[partition], first)
                self._replay_at[partition] = first
        batch = await reader.getmany(
            timeout_ms=self.config.poll_timeout_ms, max_records=replay.max_records
        )
        now = self.clock()
        produced: list[Outbound] = []
        for tp, records in batch.items():
            end = wanted[tp.partition][1]
            for record in records:
                if record.offset >= end:
                    break
                produced += handle_message(
                    replay.handle, _skip_failed, self.state, _inbound(record), now
                )
        positions = {
            p: min(wanted[p][1], await reader.position(tp)) for p, tp in partitions.items()
        }
        produced += replay.advanced(self.state, positions, now)
        await self._commit(producer, produced, None, now)
        self._replay_at.update(positions)
        self.metrics.state_keys.set(len(self.state))

    async def _process_idle(self, producer: AIOKafkaProducer, on_idle: IdleHandler) -> None:
        self.state.begin_message()
        now = self.clock()
        await self._commit(producer, on_idle(self.state, now), None, now)

    async def _restore_state(self, changelog: str) -> None:
        """The whole committed state, or ``RestoreStalled`` (D22; ``biostream.restore``)."""
        self._restoring = True
        self._show_readiness()
        try:
            restored = await restore_changelog(
                self.config.kafka,
                f"{self.transactional_id}-restore",
                changelog,
                self.state.restore,
                self.config.restore_timeout_s,
                self._log,
            )
        finally:
            self._restoring = False
        self.metrics.state_keys.set(len(self.state))
        if self.on_commit is not None:
            self.on_commit(self.state)
        self._log.info(
            "state restored",
            topic=changelog,
            restored=restored.records,
            state_keys=len(self.state),
            elapsed_s=restored.elapsed_s,
        )


class _OnRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Held-back records are dropped (Kafka hands them out again from the committed offsets); a
    member that becomes the single writer restores the committed state before its next batch."""

    def __init__(self, processor: TransactionalProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self.processor.held is not None:
            self.processor.held.forget()
        self.processor.holds_partitions = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self.processor.held is not None:
            self.processor.held.forget()
        if not self.processor.config.single_writer:
            return
        self.processor.holds_partitions = bool(assigned)
        if assigned:
            # A new store object: handlers that cache derived data see the change by identity.
            self.processor.restore_pending = True
            self.processor._show_readiness()


def _skip_failed(_message: Inbound, _error: BaseException, _now: dt.datetime) -> list[Outbound]:
    """A replayed record whose handler raised: its changes are undone (the step logs it); the
    live stream dead-lettered it already when it failed there."""
    return []


def _inbound(record: ConsumerRecord) -> Inbound:
    return Inbound(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
        timestamp_ms=record.timestamp,
    )
