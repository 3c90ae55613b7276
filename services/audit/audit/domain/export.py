"""The ledger's JSON-lines form, for `audit export` and `audit verify --input`.

One JSON object per line. Entries carry ``"kind": "entry"`` (older exports have no ``kind``; they
are entries), signed checkpoints ``"kind": "checkpoint"``, so one file holds everything `verify`
needs besides the public key. The public key travels beside the export: ``<export>.pub``, PEM
(D23b), which `audit verify --input <export>` finds on its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from biostream.contracts import KeyHandover, LedgerCheckpoint, LedgerEntry

PUBLIC_KEY_SUFFIX = ".pub"


def public_key_path(export: Path) -> Path:
    """D23b: where an export's public key lives: beside it, ``<export>.pub``."""
    return export.with_name(export.name + PUBLIC_KEY_SUFFIX)


def entry_to_json(entry: LedgerEntry) -> str:
    return json.dumps(
        {
            "kind": "entry",
            "sequence": entry["sequence"],
            "appended_at": entry["appended_at"].isoformat(),
            "event_id": entry["event_id"],
            "event_payload": base64.b64encode(entry["event_payload"]).decode(),
            "prev_hash": entry["prev_hash"].hex(),
            "entry_hash": entry["entry_hash"].hex(),
            "hash_version": entry["hash_version"],
            "event_count": entry["event_count"],
            "events_root": None if entry["events_root"] is None else entry["events_root"].hex(),
        },
        sort_keys=True,
    )


def checkpoint_to_json(checkpoint: LedgerCheckpoint) -> str:
    return json.dumps(checkpoint_to_dict(checkpoint), sort_keys=True)


def checkpoint_to_dict(checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    return {
        "kind": "checkpoint",
        "size": checkpoint["size"],
        "root_hash": checkpoint["root_hash"].hex(),
        "tip_hash": checkpoint["tip_hash"].hex(),
        "checkpoint_at": checkpoint["checkpoint_at"].isoformat(),
        "key_id": checkpoint["key_id"],
        "signature": checkpoint["signature"].hex(),
        "handover": _handover_to_dict(checkpoint["handover"]),
    }


def _handover_to_dict(handover: KeyHandover | None) -> dict[str, Any] | None:
    if handover is None:
        return None
    return {
        "new_key_id": handover["new_key_id"],
        "new_key_version": handover["new_key_version"],
        "new_public_key": handover["new_public_key"].hex(),
        "activated_at": handover["activated_at"].isoformat(),
        "signature": handover["signature"].hex(),
        "new_key_signature": handover["new_key_signature"].hex(),
    }


def _handover_from_dict(raw: Any) -> KeyHandover | None:
    # Exports written before D34 have no hand-over field.
    if raw is None:
        return None
    return {
        "new_key_id": str(raw["new_key_id"]),
        "new_key_version": str(raw["new_key_version"]),
        "new_public_key": bytes.fromhex(raw["new_public_key"]),
        "activated_at": dt.datetime.fromisoformat(raw["activated_at"]),
        "signature": bytes.fromhex(raw["signature"]),
        "new_key_signature": bytes.fromhex(raw["new_key_signature"]),
    }


class ExportFormatError(ValueError):
    pass


def entry_from_json(line: str, line_number: int) -> LedgerEntry:
    try:
        raw: dict[str, Any] = json.loads(line)
        return _entry(raw)
    except (ValueError, KeyError, TypeError) as error:
        raise ExportFormatError(
            f"line {line_number}: not a ledger entry ({type(error).__name__})"
        ) from None


def checkpoint_from_dict(raw: dict[str, Any]) -> LedgerCheckpoint:
    return {
        "size": int(raw["size"]),
        "root_hash": _hash(raw["root_hash"]),
        "tip_hash": _hash(raw["tip_hash"]),
        "checkpoint_at": dt.datetime.fromisoformat(raw["checkpoint_at"]),
        "key_id": str(raw["key_id"]),
        "signature": bytes.fromhex(raw["signature"]),
        "handover": _handover_from_dict(raw.get("handover")),
    }


def _hash(text: str) -> bytes:
    value = bytes.fromhex(text)
    if len(value) != 32:
        raise ValueError("a SHA-256 hash is 32 bytes")
    return value


def _entry(raw: dict[str, Any]) -> LedgerEntry:
    return {
        "sequence": int(raw["sequence"]),
        "appended_at": dt.datetime.fromisoformat(raw["appended_at"]),
        "event_id": str(raw["event_id"]),
        "event_payload": base64.b64decode(raw["event_payload"], validate=True),
        "prev_hash": bytes.fromhex(raw["prev_hash"]),
        "entry_hash": bytes.fromhex(raw["entry_hash"]),
        # Exports written before D23a hold version 1 entries only, without these fields.
        "hash_version": int(raw.get("hash_version", 1)),
        "event_count": int(raw.get("event_count", 0)),
        "events_root": None if raw.get("events_root") is None else _hash(raw["events_root"]),
    }


def read_export(lines: Iterable[str]) -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    """Entries in file order (verify judges the order) and checkpoints."""
    entries: list[LedgerEntry] = []
    checkpoints: list[LedgerCheckpoint] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise TypeError("not an object")
            kind = raw.get("kind", "entry")
            if kind == "entry":
                entries.append(_entry(raw))
            elif kind == "checkpoint":
                checkpoints.append(checkpoint_from_dict(raw))
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, KeyError, TypeError) as error:
            raise ExportFormatError(
                f"line {number}: not a ledger entry or checkpoint ({type(error).__name__})"
            ) from None
    return entries, checkpoints
