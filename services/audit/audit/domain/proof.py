"""Proofs: one audit event inside its ledger entry, the entry inside a signed checkpoint (D23a).

A per-event proof is a JSON document checkable with nothing but the public key and the contracts
(to read the event): hash the event's bytes as an RFC 6962 leaf and fold its path inside the
entry's batch up to the entry's events root; recompute the entry hash from the entry's header (no
other event is needed: the header carries the events root, the event count and the digest of the
whole payload); hash that as a leaf of the ledger's tree and fold the audit path (RFC 9162
2.1.3.2) up to the checkpoint's root, whose signature the public key checks. A hospital so
confirms that its event was recorded without seeing anyone else's events: the proof holds no
other event, only hashes of them.

Entries written before D23a (hash version 1) hash their whole payload: one of them can be proved
this way only when it holds a single event. Proofs in the format from before D23a (a whole
entry) are still checked, and refused when the entry they show holds several events.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from biostream.contracts import LedgerCheckpoint, LedgerEntry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain.chain import HASH_VERSION, entry_hash, entry_hash_v2, events_root
from audit.domain.checkpoint import check_signature
from audit.domain.export import checkpoint_from_dict, checkpoint_to_dict
from audit.domain.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from audit.domain.rotation import walk_keys

EVENT_PROOF_FORMAT = "biostream-event-proof-v1"
# Whole-entry proofs written before D23a: checked, never written any more.
PROOF_FORMAT = "biostream-inclusion-proof-v1"

# The JSON view of exactly one encoded AuditEvent (raises ValueError for anything else, a batch
# included): the codec knows how, the domain does not.
EventView = Callable[[bytes], dict[str, Any]]

_PROOF_KEYS = frozenset(
    {
        "format", "event_id", "event", "event_payload", "event_index", "event_path", "entry",
        "leaf_index", "tree_size", "audit_path", "checkpoint", "key_handovers",
    }
)  # fmt: skip
_HEADER_KEYS = {
    1: frozenset(
        {"sequence", "appended_at", "event_id", "prev_hash", "entry_hash", "hash_version",
         "event_count"}
    ),
    2: frozenset(
        {"sequence", "appended_at", "event_id", "prev_hash", "entry_hash", "hash_version",
         "event_count", "events_root", "payload_sha256"}
    ),
}  # fmt: skip


class ProofError(ValueError):
    pass


def _handovers_before(
    checkpoints: Sequence[LedgerCheckpoint], checkpoint: LedgerCheckpoint
) -> dict[str, Any]:
    """D34: the hand-over checkpoints that lead from the ledger's first key to the key that
    signed ``checkpoint`` (``{"key_handovers": [...]}``; nothing when there is none, so a proof
    of a ledger never rotated is as before)."""
    handovers = [
        checkpoint_to_dict(c)
        for c in sorted(checkpoints, key=lambda c: c["size"])
        if c["handover"] is not None and c["size"] < checkpoint["size"]
    ]
    return {"key_handovers": handovers} if handovers else {}


def _signature_problem(
    proof: dict[str, Any], checkpoints: Sequence[LedgerCheckpoint], public_key: Ed25519PublicKey
) -> str | None:
    """D34: the checkpoints are signed by the key trusted at their place: the walk from the
    trusted first key through the proof's hand-overs."""
    try:
        handovers = [checkpoint_from_dict(raw) for raw in proof.get("key_handovers", [])]
    except (KeyError, TypeError, ValueError) as error:
        return f"malformed proof ({type(error).__name__})"
    if any(h["handover"] is None for h in handovers):
        return "the proof's key hand-overs include a checkpoint that is not a hand-over"
    latest = max(c["size"] for c in checkpoints)
    if any(h["size"] >= latest for h in handovers):
        return "the proof's key hand-overs do not come before its checkpoint"
    return walk_keys([*handovers, *checkpoints], public_key).problem


def _covering(
    entries: Sequence[LedgerEntry], checkpoints: Sequence[LedgerCheckpoint], sequence: int
) -> LedgerCheckpoint:
    """The smallest checkpoint covering the entry (the first one that can prove it)."""
    if not 0 <= sequence < len(entries):
        raise ProofError(f"entry {sequence} is not in the ledger ({len(entries)} entries)")
    covering = sorted((c for c in checkpoints if c["size"] > sequence), key=lambda c: c["size"])
    if not covering:
        raise ProofError(f"no signed checkpoint covers entry {sequence} yet; try again later")
    if covering[0]["size"] > len(entries):
        raise ProofError("the ledger is shorter than its checkpoint: run `audit verify`")
    return covering[0]


def _header(entry: LedgerEntry, event_count: int) -> dict[str, Any]:
    """What a proof shows of the entry: every field but the payload (the other events)."""
    header: dict[str, Any] = {
        "sequence": entry["sequence"],
        "appended_at": entry["appended_at"].isoformat(),
        "event_id": entry["event_id"],
        "prev_hash": entry["prev_hash"].hex(),
        "entry_hash": entry["entry_hash"].hex(),
        "hash_version": entry["hash_version"],
        "event_count": event_count,
    }
    if entry["hash_version"] != 1:
        assert entry["events_root"] is not None
        header["events_root"] = entry["events_root"].hex()
        header["payload_sha256"] = hashlib.sha256(entry["event_payload"]).hexdigest()
    return header


def build_event_proof(
    entries: Sequence[LedgerEntry],
    checkpoints: Sequence[LedgerCheckpoint],
    sequence: int,
    events: Sequence[bytes],
    event_index: int,
    view_of: EventView,
) -> dict[str, Any]:
    """D23a: the proof of one event (``events[event_index]`` of entry ``sequence``, whose events
    ``events`` are): the event, its path inside the entry's batch, the entry's header and the
    entry's inclusion in the smallest signed checkpoint that covers it. Nothing of the entry's
    other events but hashes."""
    checkpoint = _covering(entries, checkpoints, sequence)
    entry = entries[sequence]
    if not 0 <= event_index < len(events):
        raise ProofError(f"entry {sequence} holds {len(events)} events, not {event_index + 1}")
    if entry["hash_version"] == 1:
        if len(events) != 1:
            raise ProofError(
                f"entry {sequence} was written before per-event proofs (hash version 1): its "
                f"hash covers its whole batch of {len(events)} events, so one of them cannot be "
                "proved without showing the others"
            )
        path: list[bytes] = []
    elif entry["hash_version"] == HASH_VERSION:
        if len(events) != entry["event_count"] or events_root(events) != entry["events_root"]:
            raise ProofError(
                f"entry {sequence}'s events do not match its events root: run `audit verify`"
            )
        path = inclusion_proof(event_index, [leaf_hash(e) for e in events])
    else:
        raise ProofError(f"entry {sequence} has an unknown hash version {entry['hash_version']}")
    event = events[event_index]
    view = view_of(event)
    leaves = [leaf_hash(e["entry_hash"]) for e in entries[: checkpoint["size"]]]
    return {
        "format": EVENT_PROOF_FORMAT,
        "event_id": view["event_id"],
        "event": view,
        "event_payload": base64.b64encode(event).decode(),
        "event_index": event_index,
        "event_path": [h.hex() for h in path],
        "entry": _header(entry, len(events)),
        "leaf_index": sequence,
        "tree_size": checkpoint["size"],
        "audit_path": [h.hex() for h in inclusion_proof(sequence, leaves)],
        "checkpoint": checkpoint_to_dict(checkpoint),
        **_handovers_before(checkpoints, checkpoint),
    }


def check_proof(
    proof: dict[str, Any],
    public_key: Ed25519PublicKey,
    view_of: EventView,
    wanted_event: str | None = None,
) -> str | None:
    """None when the proof (of one event, or of consistency) holds; else what is wrong."""
    if proof.get("format") == CONSISTENCY_FORMAT:
        return check_consistency_proof(proof, public_key)
    if proof.get("format") == PROOF_FORMAT:
        return _check_whole_entry_proof(proof, public_key, view_of, wanted_event)
    if proof.get("format") != EVENT_PROOF_FORMAT:
        return "not a biostream proof"
    return check_event_proof(proof, public_key, view_of, wanted_event)


def check_event_proof(
    proof: dict[str, Any],
    public_key: Ed25519PublicKey,
    view_of: EventView,
    wanted_event: str | None = None,
) -> str | None:
    """D23a: event bytes -> leaf -> path -> events root -> entry hash -> audit path ->
    checkpoint root -> signature. Refuses a proof of another event than the one named (or
    wanted), an altered event, and a proof carrying anything a one-event proof never has."""
    extra = sorted(set(proof) - _PROOF_KEYS)
    if extra:
        return f"the proof carries what a one-event proof never has ({', '.join(extra)}): refused"
    try:
        raw = proof["entry"]
        version = int(raw["hash_version"])
        if version not in _HEADER_KEYS:
            return f"unknown ledger hash version {version}"
        extra = sorted(set(raw) - _HEADER_KEYS[version])
        if extra:
            return (
                f"the proof's entry carries what an entry header never has ({', '.join(extra)}): "
                "refused"
            )
        checkpoint = checkpoint_from_dict(proof["checkpoint"])
        named = str(proof["event_id"])
        shown = proof["event"]
        payload = base64.b64decode(proof["event_payload"], validate=True)
        event_index = int(proof["event_index"])
        event_path = [_hash(h) for h in proof["event_path"]]
        sequence = int(raw["sequence"])
        appended_at = dt.datetime.fromisoformat(raw["appended_at"])
        entry_id = str(raw["event_id"])
        prev_hash = _hash(raw["prev_hash"])
        stated = _hash(raw["entry_hash"])
        event_count = int(raw["event_count"])
        root = _hash(raw["events_root"]) if version != 1 else None
        payload_sha256 = _hash(raw["payload_sha256"]) if version != 1 else None
        path = [_hash(h) for h in proof["audit_path"]]
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
    except (KeyError, TypeError, ValueError) as error:
        return f"malformed proof ({type(error).__name__})"
    problem = _signature_problem(proof, [checkpoint], public_key)
    if problem is not None:
        return problem
    problem = _event_problem(payload, shown, named, wanted_event, view_of)
    if problem is not None:
        return problem
    if version == 1:
        if event_count != 1 or event_index != 0 or event_path:
            return f"entry {sequence} (hash version 1) can prove only a single-event entry"
        computed = entry_hash(sequence, prev_hash, payload)
    else:
        assert root is not None and payload_sha256 is not None
        if not verify_inclusion(event_index, event_count, leaf_hash(payload), event_path, root):
            return (
                f"event {named} is not in entry {sequence}: its path does not lead to the "
                "entry's events root (altered event, or the proof of another entry)"
            )
        computed = entry_hash_v2(
            sequence, prev_hash, appended_at, entry_id, event_count, root, payload_sha256
        )
    if computed != stated:
        return "the entry's header does not hash to its entry_hash (altered)"
    if index != sequence or size != checkpoint["size"]:
        return "the proof's position or tree size does not match the entry and checkpoint"
    if not verify_inclusion(index, size, leaf_hash(computed), path, checkpoint["root_hash"]):
        return f"entry {sequence} is not included under the checkpoint's root (size {size})"
    return None


def _event_problem(
    payload: bytes,
    shown: object,
    named: str,
    wanted_event: str | None,
    view_of: EventView,
) -> str | None:
    """The proven bytes are one audit event, the one shown and named (and wanted)."""
    try:
        view = view_of(payload)
    except ValueError:
        return "the proven bytes are not one audit event (a batch, or something else): refused"
    if view != shown:
        return "the event shown is not the event proven (altered)"
    if view.get("event_id") != named:
        return f"the proof names event {named} but proves event {view.get('event_id')}"
    if wanted_event is not None and wanted_event != named:
        return f"the proof is for event {named}, not for event {wanted_event}"
    return None


def _check_whole_entry_proof(
    proof: dict[str, Any],
    public_key: Ed25519PublicKey,
    view_of: EventView,
    wanted_event: str | None,
) -> str | None:
    """A proof in the format from before D23a: one whole entry. Holds only when that entry is
    one event (a batch's proof would show the other events and prove none of them alone)."""
    try:
        checkpoint = checkpoint_from_dict(proof["checkpoint"])
        raw = proof["entry"]
        sequence = int(raw["sequence"])
        payload = base64.b64decode(raw["event_payload"], validate=True)
        prev_hash = bytes.fromhex(raw["prev_hash"])
        stated = bytes.fromhex(raw["entry_hash"])
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        dt.datetime.fromisoformat(raw["appended_at"])
    except (KeyError, TypeError, ValueError) as error:
        return f"malformed proof ({type(error).__name__})"
    problem = check_signature(checkpoint, public_key)
    if problem is not None:
        return problem
    try:
        view = view_of(payload)
    except ValueError:
        return (
            f"this proof shows the whole entry {sequence}, not one event (a batch): ask for "
            "the proof of one event (`audit prove --event-id`)"
        )
    if wanted_event is not None and view.get("event_id") != wanted_event:
        return f"the proof is for event {view.get('event_id')}, not for event {wanted_event}"
    computed = entry_hash(sequence, prev_hash, payload)
    if computed != stated:
        return "the entry's hash does not match its content"
    if index != sequence or size != checkpoint["size"]:
        return "the proof's position or tree size does not match the entry and checkpoint"
    if not verify_inclusion(index, size, leaf_hash(computed), path, checkpoint["root_hash"]):
        return f"entry {sequence} is not included under the checkpoint's root (size {size})"
    return None


def _hash(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("a hash is hex text")
    value = bytes.fromhex(text)
    if len(value) != 32:
        raise ValueError("a SHA-256 hash is 32 bytes")
    return value


CONSISTENCY_FORMAT = "biostream-consistency-proof-v1"


def build_consistency_proof(
    entries: Sequence[LedgerEntry],
    old: LedgerCheckpoint,
    new: LedgerCheckpoint,
    checkpoints: Sequence[LedgerCheckpoint] = (),
) -> dict[str, Any]:
    """D-audit-3: proves the ledger at ``new`` extends the ledger at ``old`` (nothing before was
    changed), the tree's interior nodes rebuilt from the ledger's entry hashes."""
    if not 0 < old["size"] <= new["size"] <= len(entries):
        raise ProofError("need two checkpoints, older first, both within the ledger")
    leaves = [leaf_hash(e["entry_hash"]) for e in entries[: new["size"]]]
    return {
        "format": CONSISTENCY_FORMAT,
        "old": checkpoint_to_dict(old),
        "new": checkpoint_to_dict(new),
        "proof": [h.hex() for h in consistency_proof(old["size"], leaves)],
        **_handovers_before(checkpoints, new),
    }


def check_consistency_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    try:
        old = checkpoint_from_dict(proof["old"])
        new = checkpoint_from_dict(proof["new"])
        path = [bytes.fromhex(h) for h in proof["proof"]]
    except (KeyError, TypeError, ValueError) as error:
        return f"malformed proof ({type(error).__name__})"
    raw_handovers = proof.get("key_handovers", [])
    if not isinstance(raw_handovers, list) or not all(isinstance(h, dict) for h in raw_handovers):
        return "malformed proof (key_handovers)"
    # A hand-over at the old checkpoint's own size comes after it (it retires the key that
    # signed it): each checkpoint is checked on its own path from the trusted key (D34).
    for checkpoint in (old, new):
        before = [
            h for h in raw_handovers
            if isinstance(h.get("size"), int) and h["size"] < checkpoint["size"]
        ]  # fmt: skip
        problem = _signature_problem({"key_handovers": before}, [checkpoint], public_key)
        if problem is not None:
            return problem
    if not verify_consistency(old["size"], new["size"], old["root_hash"], new["root_hash"], path):
        return f"the ledger at {new['size']} does not extend the ledger at {old['size']}"
    return None
