"""Holding inputs back until they can be handled in one go (no Kafka, no clock: times are given).

A stream join parks its early side in state: the pseudonymizer keeps a clinical record that arrives
before its person's link decision, writes it to the changelog, audits the hold, and decodes it
again when the decision comes. Ingest writes a message's clinical records in the same transaction
as its identity record, and the decision is one linkage hop behind, so almost every clinical record
used to arrive first and take that detour.

``HoldBack`` keeps such inputs in memory instead, uncommitted, for a bounded time: the processor
hands it the records of the held topics, handles the others first, and then takes from each
partition's queue the records that ``ready`` accepts. It is an optimisation, never a rule: a record
that waited ``max_hold_s`` or that would make the queues longer than ``max_held`` is handed out
anyway, and the handler deals with it exactly as before. A partition's records are handed out in
offset order (a queue is blocked by its oldest record), so the input offset committed for a
partition is always the first record not yet handled, and a crash or rebalance loses nothing: the
held records are read again from Kafka.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

_Partition = TypeVar("_Partition", bound=Hashable)
_Item = TypeVar("_Item")


@dataclass(frozen=True)
class HoldPolicy:
    """Which input topics may be held back, for how long, and how many records at most."""

    topics: frozenset[str]
    max_hold_s: float = 2.0
    max_held: int = 5000


class HoldBack(Generic[_Partition, _Item]):
    def __init__(self, policy: HoldPolicy) -> None:
        self.policy = policy
        self._queues: dict[_Partition, deque[tuple[float, _Item]]] = {}
        self._count = 0
        # Why records were handed out since the last ``drain_outcomes``: "ready", or "expired"
        # (held ``max_hold_s``), or "full" (more than ``max_held`` held).
        self._outcomes: Counter[str] = Counter()

    def __len__(self) -> int:
        return self._count

    def holds(self, topic: str) -> bool:
        return topic in self.policy.topics

    def add(self, partition: _Partition, items: Iterable[_Item], now_s: float) -> None:
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = deque()
        before = len(queue)
        queue.extend((now_s, item) for item in items)
        self._count += len(queue) - before

    def release(
        self, ready: Callable[[_Item], bool], now_s: float
    ) -> Iterator[tuple[_Partition, _Item]]:
        """The records that may be handled now, each partition's in offset order. Lazy: ``ready``
        sees the state as the caller leaves it after handling the records handed out before."""
        oldest_allowed = now_s - self.policy.max_hold_s
        for partition, queue in list(self._queues.items()):
            while queue:
                held_since, item = queue[0]
                if ready(item):
                    self._outcomes["ready"] += 1
                elif held_since <= oldest_allowed:
                    self._outcomes["expired"] += 1
                elif self._count > self.policy.max_held:
                    self._outcomes["full"] += 1
                else:
                    break
                queue.popleft()
                self._count -= 1
                yield partition, item
            if not queue:
                del self._queues[partition]

    def drain_outcomes(self) -> Counter[str]:
        outcomes, self._outcomes = self._outcomes, Counter()
        return outcomes

    def forget(self) -> None:
        """After a rebalance: Kafka hands the uncommitted records out again from the committed
        offsets, so what is held here must go."""
        self._queues.clear()
        self._count = 0
