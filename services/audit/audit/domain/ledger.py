"""The ledger's whole state in one compact value: chain tip, Merkle frontier, last checkpoint.

It is what the service keeps in its state store (written to the changelog in the same Kafka
transaction as the entries and checkpoints it produced), so after a crash the next entry has the
next sequence, the next prev_hash and the right Merkle position: no gap, no duplicate.

Binary form (``57 + 32 * popcount(size)`` bytes, 2 KB at most):
size (8 BE) || last entry hash (32) || last checkpoint size (8 BE) ||
last checkpoint time (or start of the first window) in epoch ms (8 BE, -1 when none) ||
has-checkpoint flag (1) || frontier hashes (32 each, largest
subtree first; their heights are the set bits of size).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from biostream.contracts import LedgerCheckpoint, LedgerEntry

from audit.domain.chain import GENESIS, append
from audit.domain.chain import ChainTip as ChainTip
from audit.domain.checkpoint import Signer
from audit.domain.merkle import Frontier
from audit.domain.rotation import HandoverPlan, hand_over


@dataclass(frozen=True)
class CheckpointPolicy:
    """D-audit-1: checkpoint after ``every_entries`` new entries, or once ``every_seconds`` have passed since
    the last one and at least one entry is not yet covered (checked on each append and on idle
    ticks)."""

    every_entries: int = 1000
    every_seconds: float = 30.0


@dataclass
class LedgerState:
    """D-audit-3: the appender's whole state, one value: the chain tip, the RFC 6962 frontier
    and the last checkpoint, so that they can never disagree after a crash."""

    tip: ChainTip = field(default_factory=ChainTip)
    frontier: Frontier = field(default_factory=Frontier)
    checkpoint_size: int = 0
    checkpoint_at: dt.datetime | None = None
    # When the ledger first had uncovered entries with no checkpoint yet (start of the T window).
    started_at: dt.datetime | None = None

    @property
    def size(self) -> int:
        return self.tip.next_sequence

    def append(
        self,
        event_id: str,
        payload: bytes,
        now: dt.datetime,
        events: Sequence[bytes] | None = None,
    ) -> LedgerEntry:
        """D15: one entry per audit message, a service transaction's batch being one entry;
        ``events``: the payload's audit events (a batch's items); None: the payload is one."""
        entry, self.tip = append(self.tip, event_id, payload, now, events)
        self.frontier.append(entry["entry_hash"])
        if self.checkpoint_at is None and self.started_at is None:
            self.started_at = now
        return entry

    def checkpoint_due(self, policy: CheckpointPolicy, now: dt.datetime) -> bool:
        """D-audit-1: ``policy``'s entries since the last checkpoint, or its seconds with at least
        one entry not covered (asked on append and on the idle tick)."""
        uncovered = self.size - self.checkpoint_size
        if uncovered <= 0:
            return False
        if uncovered >= policy.every_entries:
            return True
        since = self.checkpoint_at or self.started_at or now
        return (now - since).total_seconds() >= policy.every_seconds

    def checkpoint(
        self, signer: Signer, now: dt.datetime, handover: HandoverPlan | None = None
    ) -> LedgerCheckpoint:
        """D-audit-1, D34: the next signed checkpoint; with ``handover``, signed by the old key
        and handing the ledger over to the new one."""
        if handover is not None:
            signer = handover.old
        checkpoint = signer.checkpoint(self.size, self.frontier.root(), self.tip.last_hash, now)
        if handover is not None:
            checkpoint = hand_over(checkpoint, handover)
        self.checkpoint_size = self.size
        self.checkpoint_at = checkpoint["checkpoint_at"]
        return checkpoint

    def consistent(self) -> bool:
        """The tip and the Merkle frontier describe the same number of entries."""
        return self.frontier.size == self.tip.next_sequence

    def to_bytes(self) -> bytes:
        at = self.checkpoint_at or self.started_at
        millis = -1 if at is None else int(at.timestamp() * 1000)
        flag = b"\x01" if self.checkpoint_at is not None else b"\x00"
        return b"".join(
            (
                self.size.to_bytes(8, "big"),
                self.tip.last_hash,
                self.checkpoint_size.to_bytes(8, "big"),
                millis.to_bytes(8, "big", signed=True),
                flag,
                *(node for _, node in self.frontier.nodes),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LedgerState:
        size = int.from_bytes(data[0:8], "big")
        last_hash = data[8:40]
        checkpoint_size = int.from_bytes(data[40:48], "big")
        millis = int.from_bytes(data[48:56], "big", signed=True)
        has_checkpoint = data[56:57] == b"\x01"
        hashes = data[57:]
        heights = [h for h in range(63, -1, -1) if size >> h & 1]
        if len(hashes) != 32 * len(heights):
            raise ValueError("ledger state: frontier does not match the size")
        nodes = [(h, hashes[32 * i : 32 * i + 32]) for i, h in enumerate(heights)]
        at = None if millis < 0 else dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
        return cls(
            tip=ChainTip(size, last_hash if size else GENESIS),
            frontier=Frontier(size, nodes),
            checkpoint_size=checkpoint_size,
            checkpoint_at=at if has_checkpoint else None,
            started_at=None if has_checkpoint else at,
        )
