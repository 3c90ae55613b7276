"""Exactly-once stream processing on Kafka transactions, with a durable key-value state.

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
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.structs import ConsumerRecord

from biostream import kafka as kafka_clients
from biostream.batching import PartitionCache, TransactionOutputs
from biostream.holdback import HoldBack, HoldPolicy
from biostream.logs import get_logger
from biostream.observability import ProcessorMetrics
from biostream.restore import restore_changelog
from biostream.settings import KafkaSettings, ServiceSettings
from biostream.topics import Topics

Headers = tuple[tuple[str, bytes], ...]


# NamedTuples, not frozen dataclasses: just as immutable, and built in a quarter of the time
# (a frozen dataclass sets each field through object.__setattr__); several are made per record.
class Inbound(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @property
    def source_ref(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class Outbound(NamedTuple):
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()


# The id an operator follows one record by through every service's logs: the source reference of
# the message that entered the pipeline (feed topic/partition/offset: it names a hospital's feed
# position, never a person). The first service sets it from its input; every service copies it
# from its input message to all outputs and binds it into the log context while handling.
CORRELATION_HEADER = "correlation-id"
# A header from outside (a hospital's producer) is only trusted if it has the same harmless shape;
# anything else could carry personal data into logs, so it is replaced by this hop's source ref.
_CORRELATION_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,249}/\d{1,6}/\d{1,19}")


# A message that carries several records' audit events (an ``AuditEventBatch``) names all their
# correlation ids, comma-separated, so the audit service's log lines can still be followed.
CORRELATIONS_HEADER = "correlation-ids"


def correlation_ids(message: Inbound) -> list[str]:
    """The ids of a message that speaks for several records (empty for any other message)."""
    for name, value in message.headers:
        if name == CORRELATIONS_HEADER:
            text = value.decode("ascii", errors="replace")
            return [part for part in text.split(",") if _CORRELATION_SHAPE.fullmatch(part)]
    return []


def correlation_of(out: Outbound) -> str | None:
    for name, value in out.headers:
        if name == CORRELATION_HEADER:
            return value.decode("ascii", errors="replace")
    return None


def correlation_id(message: Inbound) -> str:
    for name, value in message.headers:
        if name == CORRELATION_HEADER:
            text = value.decode("ascii", errors="replace")
            if _CORRELATION_SHAPE.fullmatch(text):
                return text
    return message.source_ref


def with_correlation(outputs: list[Outbound], correlation: str) -> list[Outbound]:
    """Adds the header to outputs that do not carry one already."""
    header = (CORRELATION_HEADER, correlation.encode())
    return [
        out
        if any(name == CORRELATION_HEADER for name, _ in out.headers)
        else Outbound(out.topic, out.value, out.key, (*out.headers, header))
        for out in outputs
    ]


_ABSENT = object()
_ROOT_LOGGER = logging.getLogger()


class StateStore:
    """In-memory key-value state whose changes are journaled for the changelog.

    A message's changes can be rolled back (``rollback_message``) when its handler fails halfway,
    so a dead-lettered message leaves no partial state behind.
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._changes: dict[str, bytes | None] = {}
        self._undo: dict[str, object] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self._remember(key)
        self._data[key] = value
        self._changes[key] = value

    def delete(self, key: str) -> None:
        if key in self._data:
            self._remember(key)
            del self._data[key]
            self._changes[key] = None

    def __len__(self) -> int:
        return len(self._data)

    def keys_with_prefix(self, prefix: str) -> Iterator[str]:
        return (key for key in self._data if key.startswith(prefix))

    def _remember(self, key: str) -> None:
        if key not in self._undo:
            self._undo[key] = self._data.get(key, _ABSENT)

    def begin_message(self) -> None:
        self._undo.clear()

    def rollback_message(self) -> None:
        for key, old in self._undo.items():
            if old is _ABSENT:
                self._data.pop(key, None)
            else:
                assert isinstance(old, bytes)
                self._data[key] = old
            # The changelog must end with the value the store holds now.
            self._changes[key] = self._data.get(key)
        self._undo.clear()

    def drain_changes(self) -> dict[str, bytes | None]:
        changes, self._changes = self._changes, {}
        return changes

    def restore(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value


class Handler(Protocol):
    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]: ...


FailureHandler = Callable[[Inbound, BaseException, dt.datetime], list[Outbound]]


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


# Called when a poll returned nothing (at most every ``idle_interval_ms``): time-driven work such as
# the audit ledger's periodic checkpoint. Its outputs and state changes commit in one transaction.
IdleHandler = Callable[[StateStore, dt.datetime], list[Outbound]]


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
    ) -> None:
        self.config = config
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
                batch = await consumer.getmany(timeout_ms=cfg.poll_timeout_ms)
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
                await self._record_lag(consumer)
        finally:
            self._consuming = False
            self._show_readiness()
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
                produced += self._handle(message, now)
            offsets[tp] = records[-1].offset + 1
        if held:
            assert self.hold is not None
            ready, state = self.hold.ready, self.state
            # After the other inputs of the batch: the records they make ready go out with them.
            for tp, message in held.release(lambda m: ready(m, state), started):
                lag.observe(max(0.0, (now_ms - message.timestamp_ms) / 1000))
                produced += self._handle(message, now)
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

    async def _process_idle(self, producer: AIOKafkaProducer, on_idle: IdleHandler) -> None:
        self.state.begin_message()
        now = self.clock()
        await self._commit(producer, on_idle(self.state, now), None, now)

    def _handle(self, message: Inbound, now: dt.datetime) -> list[Outbound]:
        correlation = correlation_id(message)
        # bind/unbind rather than bound_contextvars(): a quarter of the cost, paid per message.
        several = correlation_ids(message)
        if several:  # a batch of other services' audit events: it speaks for all their records
            structlog.contextvars.bind_contextvars(correlation_ids=several)
        else:
            structlog.contextvars.bind_contextvars(correlation_id=correlation)
        try:
            outputs = self._handle_correlated(message, now)
            if _ROOT_LOGGER.isEnabledFor(logging.DEBUG):
                self._log.debug(
                    "message handled",
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    count=len(outputs),
                )
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id", "correlation_ids")
        return with_correlation(outputs, correlation)

    def _handle_correlated(self, message: Inbound, now: dt.datetime) -> list[Outbound]:
        self.state.begin_message()
        try:
            return self.handler(message, self.state, now)
        except Exception as exc:
            self.state.rollback_message()
            self._log.warning(
                "message failed, dead-lettered",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                error_type=type(exc).__name__,
                exc_info=exc,
            )
            return self.on_failure(message, exc, now)

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
        self._log.info(
            "state restored",
            topic=changelog,
            restored=restored.records,
            state_keys=len(self.state),
            elapsed_s=restored.elapsed_s,
        )


class SingleWriterAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """Every partition of every subscribed topic to one member: the current writer if there is
    one (sticky), else the smallest member id. The others get nothing and stand by."""

    name = "biostream-single-writer"
    version = 0
    processor: TransactionalProcessor | None = None

    @classmethod
    def assign(
        cls, cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        current = sorted(m for m, meta in members.items() if meta.user_data == b"writer")
        writer = current[0] if current else min(members)
        topics = sorted({t for m in members.values() for t in m.subscription})
        owned = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {
            member: ConsumerProtocolMemberAssignment(
                cls.version, owned if member == writer else [], b""
            )
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        writer = cls.processor is not None and cls.processor.holds_partitions
        return ConsumerProtocolMemberMetadata(
            cls.version, list(topics), b"writer" if writer else b""
        )

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass


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
