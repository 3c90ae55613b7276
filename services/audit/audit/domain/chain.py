"""The hash chain of the audit ledger, and its verification against signed checkpoints.

entry_hash = SHA-256(b"biostream-ledger-v1" || sequence (8 bytes, big-endian) || prev_hash ||
SHA-256(event_payload)); the first prev_hash is 32 zero bytes. Changing, deleting, inserting or
reordering any entry breaks the chain at that entry. A rewritten chain (every later hash
recomputed) and a cut tail are caught by the signed checkpoints: each one fixes the Merkle root,
the tip hash and the length of a prefix of the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from biostream.contracts import LedgerCheckpoint, LedgerEntry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain.checkpoint import check_signature
from audit.domain.merkle import Frontier

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
    checkpoints_checked: int = 0
    covered: int = 0  # entries covered by the latest valid signed checkpoint
    bad_checkpoint_size: int | None = None


def verify(
    entries: Iterable[LedgerEntry],
    expected_length: int | None = None,
    checkpoints: Sequence[LedgerCheckpoint] = (),
    public_key: Ed25519PublicKey | None = None,
) -> Verification:
    """Checks the chain and every checkpoint; the first problem found is reported.

    Checkpoints are checked first (signature and key), so a forged one is named even when the
    entries are fine; then each entry links to the one before and hashes to its stored hash; at
    each checkpoint's size the recomputed Merkle root and tip must equal the signed ones; the
    ledger must reach the largest signed size (else its tail was cut).
    """
    if checkpoints and public_key is None:
        raise ValueError("checkpoints can only be checked with the public key")
    ordered = sorted(checkpoints, key=lambda c: c["size"])
    for checkpoint in ordered:
        assert public_key is not None
        problem = check_signature(checkpoint, public_key)
        if problem is not None:
            return Verification(False, 0, None, problem, bad_checkpoint_size=checkpoint["size"])
    pending = [c for c in ordered if c["size"] > 0]
    frontier = Frontier()
    tip = ChainTip()
    count = 0
    last_good_checkpoint = 0
    checked = 0
    # A checkpoint mismatch says only "something in this range"; a chain break later on names the
    # exact entry, so the mismatch is reported only when the chain itself is intact.
    mismatch: Verification | None = None
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
        if mismatch is not None:
            continue
        frontier.append(expected)
        while pending and pending[0]["size"] == frontier.size:
            checkpoint = pending.pop(0)
            if checkpoint["root_hash"] != frontier.root() or checkpoint["tip_hash"] != expected:
                mismatch = Verification(
                    False,
                    0,
                    last_good_checkpoint,
                    f"entries {last_good_checkpoint}..{checkpoint['size'] - 1} do not match the "
                    f"signed checkpoint at size {checkpoint['size']} (rewritten since it was signed)",
                    checked,
                    last_good_checkpoint,
                    checkpoint["size"],
                )
                break
            checked += 1
            last_good_checkpoint = checkpoint["size"]
    if mismatch is not None:
        return Verification(
            False,
            count,
            mismatch.first_bad_sequence,
            mismatch.problem,
            mismatch.checkpoints_checked,
            mismatch.covered,
            mismatch.bad_checkpoint_size,
        )
    if pending:
        signed = pending[-1]["size"]
        return Verification(
            False,
            count,
            count,
            f"ledger ends at {count} entries, a signed checkpoint covers {signed} (tail cut)",
            checked,
            last_good_checkpoint,
        )
    if expected_length is not None and count < expected_length:
        return Verification(
            False, count, count, f"ledger ends at {count}, expected {expected_length} entries"
        )
    return Verification(True, count, checkpoints_checked=checked, covered=last_good_checkpoint)
