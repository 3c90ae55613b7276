"""Reading a state changelog to its end before a service goes on (D22).

A restore reads every partition of the changelog from its beginning up to the end offset taken once,
when the restore starts. With ``read_committed`` (every reader here) that end offset is the last
stable offset: aiokafka sends its ListOffsets request with the consumer's isolation level. A log
that ends in a transaction marker still gets there: the fetcher steps over control batches and
moves the position past them, though no record is handed out.

There is no "give up after some empty polls": a restore ends when every position has reached its
target, however long that takes, or fails with :class:`RestoreStalled` once no position has moved
for ``limit_s`` seconds (``BIOSTREAM_RESTORE_TIMEOUT_S``). A slow restore that keeps moving is
never cut off. Progress is logged as partitions, offsets and counts: never a key or a value (state
keys can hold references).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from biostream import kafka as kafka_clients
from biostream.settings import KafkaSettings

K = TypeVar("K", bound=Hashable)

FIRST_POLL_MS = 200
MAX_POLL_MS = 2000
LOG_EVERY_S = 5.0
_MAX_LOGGED_PARTITIONS = 16


class RestoreStalled(RuntimeError):
    """The broker made no progress on a restore for longer than the limit: the service must not
    start on the part it read."""


class Step(enum.Enum):
    DONE = "done"
    WAIT = "wait"
    GIVE_UP = "give_up"


def restore_step(
    positions: Mapping[K, int], targets: Mapping[K, int], stalled_s: float, limit_s: float
) -> Step:
    """D22: a restore is done only when every partition's position has reached the target taken at
    its start; until then it waits, and it gives up only after ``limit_s`` seconds without any
    position moving (``stalled_s``), never because of its total duration."""
    if all(positions.get(partition, -1) >= target for partition, target in targets.items()):
        return Step.DONE
    if stalled_s >= limit_s:
        return Step.GIVE_UP
    return Step.WAIT


def next_poll_ms(previous_ms: int, progressed: bool) -> int:
    """D22: the restore's back-off. A poll returns as soon as records come, so the wait only grows
    while nothing moves: doubled per poll without progress up to 2 s, back to 200 ms after one."""
    if progressed:
        return FIRST_POLL_MS
    return min(MAX_POLL_MS, max(FIRST_POLL_MS, previous_ms * 2))


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

    def lagging(self) -> dict[str, list[int]]:
        """Partition -> [position, target] for the partitions not there yet (a few)."""
        open_ = [
            (p, self.positions.get(p, -1), t)
            for p, t in self.targets.items()
            if self.positions.get(p, -1) < t
        ]
        return {
            str(getattr(p, "partition", p)): [position, target]
            for p, position, target in sorted(open_, key=lambda item: str(item[0]))[
                :_MAX_LOGGED_PARTITIONS
            ]
        }


@dataclass(frozen=True)
class Restored:
    records: int
    partitions: int
    elapsed_s: float


Apply = Callable[[str, bytes | None], None]


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, KafkaTimeoutError) or (
        isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))
    )


async def _open(
    kafka: KafkaSettings, client_id: str, changelog: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition], dict[TopicPartition, int]]:
    partitions = await kafka_clients.topic_partitions(kafka, [changelog])
    reader = kafka_clients.reader(kafka, client_id)
    try:
        await reader.start()
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        targets = await reader.end_offsets(partitions)
    except BaseException:
        await reader.stop()
        raise
    return reader, partitions, {tp: int(targets[tp]) for tp in partitions}


async def restore_changelog(
    kafka: KafkaSettings,
    client_id: str,
    changelog: str,
    apply: Apply,
    limit_s: float,
    log: Any,
    clock: Callable[[], float] = time.monotonic,
) -> Restored:
    """Every record of ``changelog`` up to its end offsets at the start, handed to ``apply``
    (key, value or None) in offset order per partition; raises :class:`RestoreStalled` after
    ``limit_s`` seconds without progress (connecting, reading the end offsets or reading)."""
    started = clock()

    def stalled(stalled_s: float, watch: RestoreWatch | None, restored: int) -> RestoreStalled:
        message = (
            f"state restore of {changelog} stalled: no progress from the broker for "
            f"{stalled_s:.0f} s (limit {limit_s:g} s, BIOSTREAM_RESTORE_TIMEOUT_S); the service "
            "stops rather than run on part of its state"
        )
        log.error(
            "state restore stalled, exiting",
            topic=changelog,
            stalled_s=round(stalled_s, 1),
            limit_s=limit_s,
            restored=restored,
            behind=watch.behind() if watch else None,
            offsets=watch.lagging() if watch else None,
            elapsed_s=round(clock() - started, 3),
        )
        return RestoreStalled(message)

    # Connecting and the end offsets: retried with back-off while the broker is unreachable.
    backoff_s = FIRST_POLL_MS / 1000
    attempt = 0
    while True:
        attempt += 1
        left = limit_s - (clock() - started)
        try:
            reader, partitions, targets = await asyncio.wait_for(
                _open(kafka, client_id, changelog), timeout=max(left, 0.001)
            )
            break
        except TimeoutError:
            raise stalled(clock() - started, None, 0) from None
        except Exception as exc:
            if not _transient(exc):
                raise
            if clock() - started + backoff_s >= limit_s:
                raise stalled(clock() - started, None, 0) from exc
            log.warning(
                "state restore waiting for the broker",
                topic=changelog,
                attempt=attempt,
                error_type=type(exc).__name__,
                stalled_s=round(clock() - started, 1),
                limit_s=limit_s,
            )
            await asyncio.sleep(backoff_s)
            backoff_s = min(MAX_POLL_MS / 1000, backoff_s * 2)

    watch = RestoreWatch(targets, limit_s, last_progress_at=clock())
    restored = 0
    poll_ms = FIRST_POLL_MS
    logged_at = clock()
    log.info("restoring state", topic=changelog, partitions=len(partitions), limit_s=limit_s)
    try:
        while True:
            try:
                # position() waits (without a bound of its own) while the offset reset is
                # unanswered; no longer than the time left before giving up.
                left = limit_s - watch.stalled_s(clock())
                positions = await asyncio.wait_for(
                    _positions(reader, partitions), timeout=max(left, 0.001)
                )
            except TimeoutError:
                raise stalled(watch.stalled_s(clock()), watch, restored) from None
            now = clock()
            step = watch.observe(positions, now)
            if step is Step.DONE:
                break
            if step is Step.GIVE_UP:
                raise stalled(watch.stalled_s(now), watch, restored)
            if now - logged_at >= LOG_EVERY_S:
                logged_at = now
                log.info(
                    "restoring state"
                    if watch.progressed
                    else "state restore waiting for the broker",
                    topic=changelog,
                    partitions=len(partitions),
                    restored=restored,
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
                batch = await reader.getmany(timeout_ms=wait_ms, max_records=5000)
            except Exception as exc:
                if not _transient(exc):
                    raise
                continue  # no progress: the watch decides how long that may last
            for records in batch.values():
                for record in records:
                    if record.key is not None:
                        apply(record.key.decode(), record.value)
                        restored += 1
    finally:
        await reader.stop()
    return Restored(restored, len(partitions), round(clock() - started, 3))


async def _positions(
    reader: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    return {tp: int(await reader.position(tp)) for tp in partitions}
