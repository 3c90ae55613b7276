"""The hash chain of the audit ledger, and its verification against signed checkpoints.

Version 2 (D23a, every new entry): entry_hash = SHA-256(b"biostream-ledger-v2" || sequence (8
bytes BE) || prev_hash || appended_at in epoch ms (8 bytes BE, signed) || event_count (8 bytes
BE) || events_root || SHA-256(event_payload) || event_id (UTF-8)), where events_root is the RFC
6962 root over the entry's audit events (a batch's items, or the single event), so that one event
can be proved inside its entry without showing the others (``audit.domain.proof``).

Version 1 (entries written before D23a, still verified as they were): entry_hash =
SHA-256(b"biostream-ledger-v1" || sequence || prev_hash || SHA-256(event_payload)).

The first prev_hash is 32 zero bytes. Changing, deleting, inserting or reordering any entry breaks
the chain at that entry. A rewritten chain (every later hash recomputed) and a cut tail are caught
by the signed checkpoints: each one fixes the Merkle root, the tip hash and the length of a prefix
of the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from biostream.contracts import LedgerCheckpoint, LedgerEntry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain.merkle import Frontier, root_of_leaves
from audit.domain.rotation import KeyPeriod, walk_keys

DOMAIN = b"biostream-ledger-v1"
DOMAIN_V2 = b"biostream-ledger-v2"
HASH_VERSION = 2
GENESIS = bytes(32)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)

# Splits an entry's payload into its audit events' bytes (the codec knows how; the domain does not).
EventsOf = Callable[[bytes], Sequence[bytes]]


def entry_hash(sequence: int, prev_hash: bytes, event_payload: bytes) -> bytes:
    """Version 1: the whole payload, as one hash."""
    digest = hashlib.sha256(DOMAIN)
    digest.update(sequence.to_bytes(8, "big"))
    digest.update(prev_hash)
    digest.update(hashlib.sha256(event_payload).digest())
    return digest.digest()


def millis(moment: dt.datetime) -> int:
    """Epoch milliseconds by integer arithmetic (what timestamp-millis keeps on the wire)."""
    return (moment - _EPOCH) // _MILLISECOND


def to_millis(moment: dt.datetime) -> dt.datetime:
    """The moment as a reader of the ledger gets it back (timestamp-millis)."""
    return _EPOCH + millis(moment) * _MILLISECOND


def events_root(events: Sequence[bytes]) -> bytes:
    """D23a: RFC 6962 root over an entry's audit events, each event's encoded bytes a leaf."""
    return root_of_leaves(events)


def entry_hash_v2(
    sequence: int,
    prev_hash: bytes,
    appended_at: dt.datetime,
    event_id: str,
    event_count: int,
    root: bytes,
    payload_sha256: bytes,
) -> bytes:
    """D23a: the entry hash covers the events' root (and the whole payload through its digest),
    so a verifier holding one event, its path, and this header can recompute it."""
    digest = hashlib.sha256(DOMAIN_V2)
    digest.update(sequence.to_bytes(8, "big"))
    digest.update(prev_hash)
    digest.update(millis(appended_at).to_bytes(8, "big", signed=True))
    digest.update(event_count.to_bytes(8, "big"))
    digest.update(root)
    digest.update(payload_sha256)
    digest.update(event_id.encode())
    return digest.digest()


def hash_of(entry: LedgerEntry) -> bytes:
    """The entry's hash recomputed from its fields, by its own hash_version."""
    if entry["hash_version"] == 1:
        return entry_hash(entry["sequence"], entry["prev_hash"], entry["event_payload"])
    if entry["hash_version"] != HASH_VERSION or entry["events_root"] is None:
        raise ValueError(f"unknown ledger hash version {entry['hash_version']}")
    return entry_hash_v2(
        entry["sequence"],
        entry["prev_hash"],
        entry["appended_at"],
        entry["event_id"],
        entry["event_count"],
        entry["events_root"],
        hashlib.sha256(entry["event_payload"]).digest(),
    )


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
    tip: ChainTip,
    event_id: str,
    event_payload: bytes,
    now: dt.datetime,
    events: Sequence[bytes] | None = None,
) -> tuple[LedgerEntry, ChainTip]:
    """The next entry (version 2). ``events`` are the payload's audit events (a batch's items);
    None means the payload is one event."""
    items = [event_payload] if events is None else list(events)
    if not items:
        raise ValueError("a ledger entry holds at least one audit event")
    root = events_root(items)
    at = to_millis(now)  # what a reader gets back; the hash covers exactly that
    new_hash = entry_hash_v2(
        tip.next_sequence,
        tip.last_hash,
        at,
        event_id,
        len(items),
        root,
        hashlib.sha256(event_payload).digest(),
    )
    entry: LedgerEntry = {
        "sequence": tip.next_sequence,
        "appended_at": at,
        "event_id": event_id,
        "event_payload": event_payload,
        "prev_hash": tip.last_hash,
        "entry_hash": new_hash,
        "hash_version": HASH_VERSION,
        "event_count": len(items),
        "events_root": root,
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
    # D34: the signing keys walked from the trusted first key, through each hand-over.
    keys: tuple[KeyPeriod, ...] = ()


def verify(
    entries: Iterable[LedgerEntry],
    expected_length: int | None = None,
    checkpoints: Sequence[LedgerCheckpoint] = (),
    public_key: Ed25519PublicKey | None = None,
    events_of: EventsOf | None = None,
) -> Verification:
    """D-audit-4: checks the chain and every checkpoint; the first problem found is reported.

    Checkpoints are checked first (signature and key), so a forged one is named even when the
    entries are fine; their keys are walked from ``public_key``, the trusted first key, through
    the signed hand-overs (D34); then each entry links to the one before and hashes to its stored hash (by
    its hash_version); with ``events_of`` (how to split a payload into its events), a version 2
    entry's events root and count must also be those of its payload's events (D23a); at
    each checkpoint's size the recomputed Merkle root and tip must equal the signed ones; the
    ledger must reach the largest signed size (else its tail was cut).
    """
    if checkpoints and public_key is None:
        raise ValueError("checkpoints can only be checked with the public key")
    ordered = sorted(checkpoints, key=lambda c: c["size"])
    if public_key is None:
        return _verify_chain(entries, expected_length, ordered, events_of)
    walk = walk_keys(ordered, public_key)
    if walk.problem is not None:
        return Verification(
            False, 0, None, walk.problem, bad_checkpoint_size=walk.bad_checkpoint_size,
            keys=walk.keys,
        )  # fmt: skip
    result = _verify_chain(entries, expected_length, ordered, events_of)
    return dataclasses.replace(result, keys=walk.keys)


def _verify_chain(
    entries: Iterable[LedgerEntry],
    expected_length: int | None,
    ordered: Sequence[LedgerCheckpoint],
    events_of: EventsOf | None,
) -> Verification:
    """The chain and the checkpoints' roots and tips (their signatures already checked)."""
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
        try:
            expected = hash_of(entry)
        except ValueError as error:
            return Verification(False, count, position, str(error))
        if entry["entry_hash"] != expected:
            return Verification(
                False, count, position, "entry_hash does not match the entry's content"
            )
        problem = _events_problem(entry, events_of)
        if problem is not None:
            return Verification(False, count, position, problem)
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


def _events_problem(entry: LedgerEntry, events_of: EventsOf | None) -> str | None:
    """D23a: a version 2 entry's events root is the root of the events its payload holds."""
    if events_of is None or entry["hash_version"] == 1:
        return None
    try:
        events = events_of(entry["event_payload"])
    except ValueError:
        return "the entry's payload is not an audit event or batch of them"
    if len(events) != entry["event_count"] or events_root(events) != entry["events_root"]:
        return "events_root does not match the events in the entry's payload"
    return None
