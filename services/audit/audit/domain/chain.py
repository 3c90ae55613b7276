"""The hash chain of the audit ledger, and its verification.

entry_hash = SHA-256(b"biostream-ledger-v1" || sequence (8 bytes, big-endian) || prev_hash ||
SHA-256(event_payload)); the first prev_hash is 32 zero bytes. Changing, deleting, inserting or
reordering any entry breaks the chain at that entry. Cutting the tail is detected against a signed
checkpoint (audit issue); here ``expected_length`` stands in for what a checkpoint would state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from biostream.contracts import LedgerEntry

DOMAIN = b"biostream-ledger-v1"
GENESIS = bytes(32)


def entry_hash(sequence: int, prev_hash: bytes, event_payload: bytes) -> bytes:
    digest = hashlib.sha256(DOMAIN)
    digest.update(sequence.to_bytes(8, "big"))
    digest.update(prev_hash)
    digest.update(hashlib.sha256(event_payload).digest())
    return digest.digest()


@dataclass(frozen=True, slots=True)
class ChainTip:
    next_sequence: int = 0
    last_hash: bytes = GENESIS

    def to_bytes(self) -> bytes:
        return json.dumps([self.next_sequence, self.last_hash.hex()]).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ChainTip:
        sequence, last_hash = json.loads(data)
        return cls(int(sequence), bytes.fromhex(last_hash))


def append(
    tip: ChainTip, event_id: str, event_payload: bytes, now: dt.datetime
) -> tuple[LedgerEntry, ChainTip]:
    new_hash = entry_hash(tip.next_sequence, tip.last_hash, event_payload)
    entry: LedgerEntry = {
        "sequence": tip.next_sequence,
        "appended_at": now,
        "event_id": event_id,
        "event_payload": event_payload,
        "prev_hash": tip.last_hash,
        "entry_hash": new_hash,
    }
    return entry, ChainTip(tip.next_sequence + 1, new_hash)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    first_bad_sequence: int | None = None
    problem: str | None = None


def verify(entries: Iterable[LedgerEntry], expected_length: int | None = None) -> Verification:
    tip = ChainTip()
    count = 0
    for position, entry in enumerate(entries):
        count += 1
        if entry["sequence"] != position:
            return Verification(
                False, count, position, f"sequence {entry['sequence']} at position {position}"
            )
        if entry["prev_hash"] != tip.last_hash:
            return Verification(
                False, count, position, "prev_hash does not match the previous entry"
            )
        expected = entry_hash(entry["sequence"], entry["prev_hash"], entry["event_payload"])
        if entry["entry_hash"] != expected:
            return Verification(
                False, count, position, "entry_hash does not match the entry's content"
            )
        tip = ChainTip(position + 1, expected)
    if expected_length is not None and count < expected_length:
        return Verification(
            False, count, count, f"ledger ends at {count}, expected {expected_length} entries"
        )
    return Verification(True, count)
