"""A test driver for handlers: messages in, outputs out, no broker (in the spirit of bytewax's
testing sources and sinks).

``drive`` runs each message through the same per-message step as the engine
(``biostream.step.handle_message``: correlation ids, rollback of a failed message's state, the
failure handler's dead letters), so a unit test, a benchmark or a tool sees exactly the outputs
the running service would produce for the same inputs and state. What the driver does not do is
the engine's transaction: outputs are returned, state changes stay in ``state`` (read them with
``state.drain_changes()``), and held-back inputs (``HoldForReady``) are not modelled.

``FakePartitionReader`` stands in for a group-less consumer in unit tests of code that reads
topics to their end (``biostream.restore.read_to_end``, D26).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from biostream.contract import FailureHandler, Handler, Inbound, Outbound
from biostream.state import StateStore
from biostream.step import handle_message


def raise_failure(message: Inbound, error: BaseException, now: dt.datetime) -> list[Outbound]:
    """The default failure handler of the driver: a test should see a handler's exception."""
    raise error


@dataclass
class Driven:
    """What a drive produced: every output in order, and per input the outputs it made."""

    outputs: list[Outbound] = field(default_factory=list)
    per_message: list[tuple[Inbound, list[Outbound]]] = field(default_factory=list)

    def on(self, topic: str) -> list[Outbound]:
        return [out for out in self.outputs if out.topic == topic]


def drive(
    handler: Handler,
    messages: Iterable[Inbound],
    now: dt.datetime | Callable[[Inbound], dt.datetime],
    state: StateStore | None = None,
    on_failure: FailureHandler = raise_failure,
) -> Driven:
    """Handles ``messages`` in order against ``state`` (a new store if None) at ``now`` (a time,
    or a function of the message)."""
    store = state if state is not None else StateStore()
    driven = Driven()
    for message in messages:
        at = now(message) if callable(now) else now
        outputs = handle_message(handler, on_failure, store, message, at)
        driven.outputs += outputs
        driven.per_message.append((message, outputs))
    return driven


def inbound(
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes], ...] = (),
    offset: int = 0,
    partition: int = 0,
    timestamp_ms: int = 0,
) -> Inbound:
    """An input message as the engine would hand it over (for tests and tools)."""
    return Inbound(topic, partition, offset, key, value, headers, timestamp_ms)


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 0


class FakePartitionReader:
    """A read_committed consumer over in-memory logs, with a clock of its own (``clock``).

    A log entry is a ``(key, value)`` record or ``None``: an offset that holds no record (a
    transaction marker), which a fetch steps over, moving the position without handing anything
    out. A poll hands out at most ``per_poll`` entries per partition and advances the clock by a
    millisecond; a poll with nothing to hand out waits its whole timeout. ``silent_polls`` makes
    the next polls answer nothing whatever the logs hold (a paused broker), ``silent_forever`` all
    of them, ``answer_polls`` all after that many; ``end_offset_failures`` exceptions are raised by the next ``end_offsets`` calls.
    """

    def __init__(
        self,
        logs: Mapping[TopicPartition, Sequence[tuple[bytes | None, bytes | None] | None]],
        per_poll: int = 2,
    ) -> None:
        self.logs = {tp: list(entries) for tp, entries in logs.items()}
        self.per_poll = per_poll
        self.now = 0.0
        self.silent_polls = 0
        self.silent_forever = False
        self.answer_polls: int | None = None
        self.stopped = False
        self.end_offset_failures: list[Exception] = []
        self.polls = 0
        self._assigned: list[TopicPartition] = list(self.logs)
        self._positions = dict.fromkeys(self.logs, 0)
        self._paused: set[TopicPartition] = set()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def append(self, tp: TopicPartition, entry: tuple[bytes | None, bytes | None] | None) -> None:
        self.logs[tp].append(entry)

    async def stop(self) -> None:
        self.stopped = True

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._positions[partition] = offset

    async def position(self, partition: TopicPartition) -> int:
        return self._positions[partition]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.end_offset_failures:
            self.now += 0.1
            raise self.end_offset_failures.pop(0)
        return {tp: len(self.logs[tp]) for tp in partitions}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[FakeRecord]]:
        self.polls += 1
        if self.answer_polls is not None and self.polls > self.answer_polls:
            self.silent_forever = True
        if self.silent_forever or self.silent_polls > 0:
            self.silent_polls = max(0, self.silent_polls - 1)
            self.now += timeout_ms / 1000
            return {}
        out: dict[TopicPartition, list[FakeRecord]] = {}
        moved = False
        for tp in partitions or self._assigned:
            if tp in self._paused:
                continue
            start = self._positions[tp]
            entries = self.logs[tp][start : start + self.per_poll]
            records = [
                FakeRecord(tp.topic, tp.partition, start + n, entry[0], entry[1])
                for n, entry in enumerate(entries)
                if entry is not None
            ]
            if entries:
                moved = True
                self._positions[tp] = start + len(entries)
            if records:
                out[tp] = records
        self.now += 0.001 if moved else timeout_ms / 1000
        return out
