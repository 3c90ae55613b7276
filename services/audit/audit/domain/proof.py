"""Inclusion proofs: one entry, its audit path and the signed checkpoint it is proved against.

A proof is a JSON document checkable with nothing but the public key: recompute the entry's hash
from its own fields, hash it as an RFC 6962 leaf, fold the audit path (RFC 9162 2.1.3.2) and
compare with the checkpoint's root, whose signature the public key checks. A hospital can so
confirm that its submission was recorded without seeing anyone else's entries.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any

from biostream.contracts import LedgerCheckpoint, LedgerEntry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain.chain import entry_hash
from audit.domain.checkpoint import check_signature
from audit.domain.export import checkpoint_from_dict, checkpoint_to_dict
from audit.domain.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

PROOF_FORMAT = "biostream-inclusion-proof-v1"


class ProofError(ValueError):
    pass


def build_proof(
    entries: Sequence[LedgerEntry], checkpoints: Sequence[LedgerCheckpoint], sequence: int
) -> dict[str, Any]:
    """Against the smallest checkpoint covering the entry (the first one that can prove it)."""
    covering = sorted((c for c in checkpoints if c["size"] > sequence), key=lambda c: c["size"])
    if not 0 <= sequence < len(entries):
        raise ProofError(f"entry {sequence} is not in the ledger ({len(entries)} entries)")
    if not covering:
        raise ProofError(f"no signed checkpoint covers entry {sequence} yet; try again later")
    checkpoint = covering[0]
    if checkpoint["size"] > len(entries):
        raise ProofError("the ledger is shorter than its checkpoint: run `audit verify`")
    leaves = [leaf_hash(e["entry_hash"]) for e in entries[: checkpoint["size"]]]
    entry = entries[sequence]
    return {
        "format": PROOF_FORMAT,
        "entry": {
            "sequence": entry["sequence"],
            "appended_at": entry["appended_at"].isoformat(),
            "event_id": entry["event_id"],
            "event_payload": base64.b64encode(entry["event_payload"]).decode(),
            "prev_hash": entry["prev_hash"].hex(),
            "entry_hash": entry["entry_hash"].hex(),
        },
        "leaf_index": sequence,
        "tree_size": checkpoint["size"],
        "audit_path": [h.hex() for h in inclusion_proof(sequence, leaves)],
        "checkpoint": checkpoint_to_dict(checkpoint),
    }


def check_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """None when the proof (inclusion or consistency) holds; else what is wrong."""
    if proof.get("format") == CONSISTENCY_FORMAT:
        return check_consistency_proof(proof, public_key)
    try:
        if proof.get("format") != PROOF_FORMAT:
            return "not a biostream inclusion proof"
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
    computed = entry_hash(sequence, prev_hash, payload)
    if computed != stated:
        return "the entry's hash does not match its content"
    if index != sequence or size != checkpoint["size"]:
        return "the proof's position or tree size does not match the entry and checkpoint"
    if not verify_inclusion(index, size, leaf_hash(computed), path, checkpoint["root_hash"]):
        return f"entry {sequence} is not included under the checkpoint's root (size {size})"
    return None


CONSISTENCY_FORMAT = "biostream-consistency-proof-v1"


def build_consistency_proof(
    entries: Sequence[LedgerEntry], old: LedgerCheckpoint, new: LedgerCheckpoint
) -> dict[str, Any]:
    """Proves the ledger at ``new`` extends the ledger at ``old`` (nothing before was changed)."""
    if not 0 < old["size"] <= new["size"] <= len(entries):
        raise ProofError("need two checkpoints, older first, both within the ledger")
    leaves = [leaf_hash(e["entry_hash"]) for e in entries[: new["size"]]]
    return {
        "format": CONSISTENCY_FORMAT,
        "old": checkpoint_to_dict(old),
        "new": checkpoint_to_dict(new),
        "proof": [h.hex() for h in consistency_proof(old["size"], leaves)],
    }


def check_consistency_proof(proof: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    try:
        old = checkpoint_from_dict(proof["old"])
        new = checkpoint_from_dict(proof["new"])
        path = [bytes.fromhex(h) for h in proof["proof"]]
    except (KeyError, TypeError, ValueError) as error:
        return f"malformed proof ({type(error).__name__})"
    for checkpoint in (old, new):
        problem = check_signature(checkpoint, public_key)
        if problem is not None:
            return problem
    if not verify_consistency(old["size"], new["size"], old["root_hash"], new["root_hash"], path):
        return f"the ledger at {new['size']} does not extend the ledger at {old['size']}"
    return None
