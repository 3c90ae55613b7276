"""Reading topics to their end as of the start: state restores (D22) and every other reader that
reports what a topic holds (D26).

A reader takes the end offset of every partition once, when it starts, and reads until every
position has reached it. With ``read_committed`` (every reader here) that end offset is the last
stable offset: aiokafka sends its ListOffsets request with the consumer's isolation level. A log
that ends in a transaction marker still gets there: the fetcher steps over control batches and
moves the position past them, though no record is handed out. That is why the test compares
positions, never the offset of the last record seen.

There is no "give up after some empty polls": a read ends when every position has reached its
target, however long that takes, or fails with :class:`ReadStalled` once no position has moved for
``limit_s`` seconds (``BIOSTREAM_RESTORE_TIMEOUT_S`` for a service's state,
``BIOSTREAM_READ_TIMEOUT_S`` for the commands). A slow read that keeps moving is never cut off.
Progress is logged as partitions, offsets and counts: never a key or a value (state keys can hold
references).

:func:`read_to_end` works on a consumer the caller has assigned and positioned (a copy that resumes
from its own stored positions, a follower that goes on after catching up);
:func:`read_from_start` opens its own reader and reads topics from their beginning;
:func:`restore_changelog` is the state restore built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from biostream import kafka as kafka_clients
from biostream.settings import KafkaSettings

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

FIRST_POLL_MS = 200
MAX_POLL_MS = 2000
LOG_EVERY_S = 5.0
_MAX_LOGGED_PARTITIONS = 16

RESTORE_SETTING = "BIOSTREAM_RESTORE_TIMEOUT_S"
READ_SETTING = "BIOSTREAM_READ_TIMEOUT_S"


@dataclass(frozen=True)
class Lag:
    """One partition not at its end when a read gave up."""

    topic: str
    partition: int
    position: int  # -1: the broker never told the position
    end: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition} at {self.position} of {self.end}"


class ReadStalled(RuntimeError):
    """D26: the broker made no progress on a read to the end for longer than the limit. What was
    read is incomplete: the caller must not report it, serve it or run on it."""

    def __init__(
        self,
        what: str,
        stalled_s: float,
        limit_s: float,
        setting: str,
        lagging: Sequence[Lag] = (),
        consequence: str = "",
    ) -> None:
        self.what, self.stalled_s, self.limit_s = what, stalled_s, limit_s
        self.setting, self.lagging = setting, list(lagging)
        where = ", ".join(str(lag) for lag in self.lagging[:_MAX_LOGGED_PARTITIONS])
        if len(self.lagging) > _MAX_LOGGED_PARTITIONS:
            where += f" and {len(self.lagging) - _MAX_LOGGED_PARTITIONS} more"
        message = (
            f"{what} stalled: no progress from the broker for {stalled_s:.0f} s "
            f"(limit {limit_s:g} s, {setting}); "
            + (f"not at the end: {where}" if where else "the end offsets were never answered")
        )
        super().__init__(message + (f"; {consequence}" if consequence else ""))


class RestoreStalled(ReadStalled):
    """The broker made no progress on a restore for longer than the limit: the service must not
    start on the part it read."""


class Step(enum.Enum):
    DONE = "done"
    WAIT = "wait"
    GIVE_UP = "give_up"


def restore_step(
    positions: Mapping[K, int], targets: Mapping[K, int], stalled_s: float, limit_s: float
) -> Step:
    """D22, D26: a read is done only when every partition's position has reached the target taken
    at its start; until then it waits, and it gives up only after ``limit_s`` seconds without any
    position moving (``stalled_s``), never because of its total duration nor a count of empty
    polls."""
    if all(positions.get(partition, -1) >= target for partition, target in targets.items()):
        return Step.DONE
    if stalled_s >= limit_s:
        return Step.GIVE_UP
    return Step.WAIT


def next_poll_ms(previous_ms: int, progressed: bool) -> int:
    """D22: the read's back-off. A poll returns as soon as records come, so the wait only grows
    while nothing moves: doubled per poll without progress up to 2 s, back to 200 ms after one."""
    if progressed:
        return FIRST_POLL_MS
    return min(MAX_POLL_MS, max(FIRST_POLL_MS, previous_ms * 2))


def _label(partition: object) -> str:
    if isinstance(partition, TopicPartition):
        return f"{partition.topic}/{partition.partition}"
    return str(partition)


@dataclass
class RestoreWatch:
    """The positions seen so far and when they last moved (time is passed in, in seconds)."""

    targets: dict[Any, int]
    limit_s: float
    last_progress_at: float
    positions: dict[Any, int] = field(default_factory=dict)
    progressed: bool = True

    def observe(self, positions: Mapping[Any, int], now: float) -> Step:
        self.progressed = any(
            position > self.positions.get(partition, -1)
            for partition, position in positions.items()
        )
        if self.progressed:
            self.last_progress_at = now
        self.positions = dict(positions)
        return restore_step(positions, self.targets, self.stalled_s(now), self.limit_s)

    def stalled_s(self, now: float) -> float:
        return max(0.0, now - self.last_progress_at)

    def behind(self) -> int:
        return sum(max(0, t - self.positions.get(p, 0)) for p, t in self.targets.items())

    def open_partitions(self) -> list[Any]:
        return [p for p, t in self.targets.items() if self.positions.get(p, -1) < t]

    def lagging(self) -> dict[str, list[int]]:
        """Partition -> [position, target] for the partitions not there yet (a few)."""
        open_ = sorted(self.open_partitions(), key=_label)[:_MAX_LOGGED_PARTITIONS]
        return {_label(p): [self.positions.get(p, -1), self.targets[p]] for p in open_}

    def lags(self) -> list[Lag]:
        return [
            Lag(
                str(getattr(p, "topic", "")),
                int(getattr(p, "partition", 0)),
                self.positions.get(p, -1),
                self.targets[p],
            )
            for p in sorted(self.open_partitions(), key=_label)
        ]


class Record(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class PartitionReader(Protocol):
    """What :func:`read_to_end` needs of a consumer (an ``AIOKafkaConsumer``, or a test double)."""

    def assignment(self) -> set[TopicPartition]: ...
    def paused(self) -> set[TopicPartition]: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def position(self, partition: TopicPartition) -> int: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]: ...


Batch = dict[TopicPartition, list[Any]]


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, KafkaTimeoutError) or (
        isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))
    )


@dataclass(frozen=True)
class _Stall:
    """D26: how one read reports giving up: its name, its limit and the setting that sets it."""

    what: str
    limit_s: float
    setting: str

    def error(self, stalled_s: float, lagging: Sequence[Lag] = ()) -> ReadStalled:
        return ReadStalled(self.what, stalled_s, self.limit_s, self.setting, lagging)


async def _within(awaitable: Awaitable[T], left_s: float, stalled: Callable[[], ReadStalled]) -> T:
    """``awaitable``'s answer, waited for no longer than ``left_s`` (the time left before the read
    gives up); past it, the read's :class:`ReadStalled` (``stalled()``) instead of a timeout."""
    try:
        return await asyncio.wait_for(awaitable, timeout=max(left_s, 0.001))
    except TimeoutError:
        raise stalled() from None


async def _retrying(
    call: Callable[[], Awaitable[T]],
    stall: _Stall,
    log: Any,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """D26: ``call`` until it answers, retried with back-off on transient errors, never past the
    limit (for what has no position to watch yet: connecting, the end offsets). The one retry
    loop of this module: :func:`end_offsets` and :func:`open_reader` go through it, and
    :func:`read_to_end` watches positions instead (:class:`RestoreWatch`)."""
    limit_s = stall.limit_s
    started = clock()
    backoff_s = FIRST_POLL_MS / 1000
    attempt = 0
    while True:
        attempt += 1
        left = limit_s - (clock() - started)
        try:
            return await _within(call(), left, lambda: stall.error(clock() - started))
        except Exception as exc:
            if not _transient(exc):
                raise
            if clock() - started + backoff_s >= limit_s:
                raise stall.error(clock() - started) from exc
            if log is not None:
                log.warning(
                    "read to the end waiting for the broker",
                    topics=stall.what,
                    attempt=attempt,
                    error_type=type(exc).__name__,
                    stalled_s=round(clock() - started, 1),
                    limit_s=limit_s,
                )
            await sleep(backoff_s)
            backoff_s = min(MAX_POLL_MS / 1000, backoff_s * 2)


async def end_offsets(
    consumer: PartitionReader,
    partitions: Sequence[TopicPartition],
    limit_s: float,
    what: str,
    *,
    setting: str = READ_SETTING,
    log: Any = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[TopicPartition, int]:
    """The end offsets (last stable offsets, read_committed) of ``partitions``, retried with
    back-off while the broker is unreachable; :class:`ReadStalled` past ``limit_s``."""

    wanted = list(partitions)
    answer = await _retrying(
        lambda: consumer.end_offsets(wanted), _Stall(what, limit_s, setting), log, clock, sleep
    )
    return {tp: int(answer[tp]) for tp in wanted}


async def _positions(
    reader: PartitionReader, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    return {tp: int(await reader.position(tp)) for tp in partitions}


async def read_to_end(
    consumer: PartitionReader,
    partitions: Sequence[TopicPartition],
    limit_s: float,
    what: str,
    *,
    setting: str = READ_SETTING,
    log: Any = None,
    ends: Mapping[TopicPartition, int] | None = None,
    max_records: int = 5000,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncGenerator[Batch, None]:
    """D26: the records of ``partitions`` from the consumer's positions up to the end offsets
    taken when this starts (or ``ends``, taken by the caller with :func:`end_offsets` where an
    order between topics matters), batch by batch (offset order within a partition), never a record at or
    past those ends; done when every position has reached its end. Raises :class:`ReadStalled`
    (naming topic, partition, position and end) after ``limit_s`` seconds without progress.

    Other partitions assigned to the consumer are paused meanwhile, and resumed at the end; a
    partition that reaches its end is paused until then (the fetcher reads nothing past it)."""

    stall = _Stall(what, limit_s, setting)
    wanted = list(dict.fromkeys(partitions))
    if not wanted:
        return
    if ends is None:
        ends = await end_offsets(
            consumer, wanted, limit_s, what, setting=setting, log=log, clock=clock, sleep=sleep
        )
    watch = RestoreWatch({tp: int(ends[tp]) for tp in wanted}, limit_s, last_progress_at=clock())
    already_paused = set(consumer.paused())
    others = [tp for tp in consumer.assignment() if tp not in watch.targets]
    paused_here = [tp for tp in others if tp not in already_paused]
    consumer.pause(*paused_here)
    consumer.resume(*wanted)
    poll_ms = FIRST_POLL_MS
    started = logged_at = clock()
    read = 0
    try:
        while True:
            # position() waits (without a bound of its own) while an offset reset is
            # unanswered; no longer than the time left before giving up.
            positions = await _within(
                _positions(consumer, wanted),
                limit_s - watch.stalled_s(clock()),
                lambda: stall.error(watch.stalled_s(clock()), watch.lags()),
            )
            now = clock()
            step = watch.observe(positions, now)
            if step is Step.DONE:
                return
            if step is Step.GIVE_UP:
                raise stall.error(watch.stalled_s(now), watch.lags())
            open_ = watch.open_partitions()
            done = [tp for tp in wanted if tp not in open_ and tp not in consumer.paused()]
            consumer.pause(*done)
            if log is not None and now - logged_at >= LOG_EVERY_S:
                logged_at = now
                log.info(
                    "reading to the end" if watch.progressed else "read to the end waiting",
                    topics=what,
                    partitions=len(wanted),
                    records=read,
                    behind=watch.behind(),
                    offsets=watch.lagging(),
                    stalled_s=round(watch.stalled_s(now), 1),
                    limit_s=limit_s,
                    elapsed_s=round(now - started, 3),
                )
            poll_ms = next_poll_ms(poll_ms, watch.progressed)
            # Never waiting past the limit: the give-up comes on time.
            wait_ms = min(poll_ms, max(1, int((limit_s - watch.stalled_s(now)) * 1000)))
            try:
                fetched = await consumer.getmany(
                    *open_, timeout_ms=wait_ms, max_records=max_records
                )
            except Exception as exc:
                if not _transient(exc):
                    raise
                continue  # no progress: the watch decides how long that may last
            batch: Batch = {}
            for tp, records in fetched.items():
                end = watch.targets.get(tp)
                if end is None:
                    continue
                kept = [r for r in records if r.offset < end]
                if len(kept) < len(records):
                    consumer.seek(tp, end)  # written after the start: not part of this read
                if kept:
                    batch[tp] = kept
                    read += len(kept)
            if batch:
                yield batch
    finally:
        consumer.resume(*paused_here, *wanted)


async def open_reader(
    kafka: KafkaSettings,
    client_id: str,
    topics: Sequence[str],
    limit_s: float,
    what: str,
    *,
    setting: str = READ_SETTING,
    log: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Any, list[TopicPartition]]:
    """A started reader of its own (no group, read_committed) assigned every partition of
    ``topics`` at their beginning; connecting is retried with back-off while the broker is
    unreachable, and raises :class:`ReadStalled` past ``limit_s``."""

    async def open_() -> tuple[Any, list[TopicPartition]]:
        partitions = await kafka_clients.topic_partitions(kafka, list(topics))
        reader = kafka_clients.reader(kafka, client_id)
        try:
            await reader.start()
            reader.assign(partitions)
            await reader.seek_to_beginning(*partitions)
        except BaseException:
            await reader.stop()
            raise
        return reader, partitions

    return await _retrying(open_, _Stall(what, limit_s, setting), log, clock)


async def read_from_start(
    kafka: KafkaSettings,
    client_id: str,
    topics: Sequence[str],
    limit_s: float,
    what: str | None = None,
    *,
    setting: str = READ_SETTING,
    log: Any = None,
    max_records: int = 5000,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[Batch, None]:
    """D26: every committed record of ``topics`` from their beginning up to their end offsets at
    the start (:func:`read_to_end`), through a reader of its own (:func:`open_reader`)."""
    label = what or ", ".join(topics)
    reader, partitions = await open_reader(
        kafka, client_id, topics, limit_s, label, setting=setting, log=log, clock=clock
    )
    try:
        async for batch in read_to_end(
            reader, partitions, limit_s, label,
            setting=setting, log=log, max_records=max_records, clock=clock,
        ):  # fmt: skip
            yield batch
    finally:
        await reader.stop()


class FromStartFollower:
    """D26: reads every partition of ``topics`` from the beginning through a reader of its own
    (no group, no changelog, no transactions), hands each batch to ``apply``, is ``ready`` once
    it has read to the end offsets taken at its start (then ``on_caught_up`` runs), and follows
    on until ``stop`` is set. The catch-up ends at those offsets however long it takes, or raises
    :class:`ReadStalled` after ``limit_s`` without progress (logged with positions, never a key
    or a value): a service whose whole state is such a topic (the review desk, the access
    service) stops rather than serve part of it."""

    def __init__(
        self,
        kafka: KafkaSettings,
        client_id: str,
        topics: Sequence[str],
        apply: Callable[[Batch], None],
        what: str,
        log: Any,
        *,
        on_caught_up: Callable[[], None] = lambda: None,
        limit_s: float = 300.0,
        setting: str = RESTORE_SETTING,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._topics = list(topics)
        self._apply = apply
        self._what = what
        self._log = log
        self._on_caught_up = on_caught_up
        self._limit_s = limit_s
        self._setting = setting
        self._monotonic = monotonic
        self.ready = False

    async def run(self, stop: asyncio.Event, until_caught_up: bool = False) -> None:
        consumer, partitions = await open_reader(
            self._kafka, self._client_id, self._topics, self._limit_s, self._what,
            setting=self._setting, log=self._log, clock=self._monotonic,
        )  # fmt: skip
        try:
            try:
                reading = read_to_end(
                    consumer, partitions, self._limit_s, self._what,
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
                    f"{self._what} stalled, exiting",
                    stalled_s=round(stall.stalled_s, 1),
                    limit_s=self._limit_s,
                    offsets={
                        f"{x.topic}/{x.partition}": [x.position, x.end] for x in stall.lagging
                    },
                )
                raise
            self._on_caught_up()
            self.ready = True
            if until_caught_up:
                return
            while not stop.is_set():
                self._apply(await consumer.getmany(timeout_ms=200, max_records=1000))
        finally:
            await consumer.stop()


@dataclass(frozen=True)
class Restored:
    records: int
    partitions: int
    elapsed_s: float


Apply = Callable[[str, bytes | None], None]


async def restore_changelog(
    kafka: KafkaSettings,
    client_id: str,
    changelog: str,
    apply: Apply,
    limit_s: float,
    log: Any,
    clock: Callable[[], float] = time.monotonic,
) -> Restored:
    """D22: every record of ``changelog`` up to its end offsets at the start, handed to ``apply``
    (key, value or None) in offset order per partition; raises :class:`RestoreStalled` after
    ``limit_s`` seconds without progress (connecting, reading the end offsets or reading)."""
    started = clock()
    what = f"state restore of {changelog}"
    restored = 0

    def stopped(stall: ReadStalled) -> RestoreStalled:
        log.error(
            "state restore stalled, exiting",
            topic=changelog,
            stalled_s=round(stall.stalled_s, 1),
            limit_s=limit_s,
            restored=restored,
            offsets={
                f"{lag.topic}/{lag.partition}": [lag.position, lag.end] for lag in stall.lagging
            },
            elapsed_s=round(clock() - started, 3),
        )
        return RestoreStalled(
            what, stall.stalled_s, limit_s, RESTORE_SETTING, stall.lagging,
            "the service stops rather than run on part of its state",
        )  # fmt: skip

    try:
        reader, partitions = await open_reader(
            kafka, client_id, [changelog], limit_s, what,
            setting=RESTORE_SETTING, log=log, clock=clock,
        )  # fmt: skip
    except ReadStalled as stall:
        raise stopped(stall) from None
    log.info("restoring state", topic=changelog, partitions=len(partitions), limit_s=limit_s)
    try:
        async for batch in read_to_end(
            reader, partitions, limit_s, what, setting=RESTORE_SETTING, log=log, clock=clock
        ):
            for records in batch.values():
                for record in records:
                    if record.key is not None:
                        apply(record.key.decode(), record.value)
                        restored += 1
    except ReadStalled as stall:
        raise stopped(stall) from None
    finally:
        await reader.stop()
    return Restored(restored, len(partitions), round(clock() - started, 3))
