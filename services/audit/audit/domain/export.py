"""The ledger's JSON-lines form, for `audit export` and `audit verify --input`."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from biostream.contracts import LedgerEntry


def entry_to_json(entry: LedgerEntry) -> str:
    return json.dumps(
        {
            "sequence": entry["sequence"],
            "appended_at": entry["appended_at"].isoformat(),
            "event_id": entry["event_id"],
            "event_payload": base64.b64encode(entry["event_payload"]).decode(),
            "prev_hash": entry["prev_hash"].hex(),
            "entry_hash": entry["entry_hash"].hex(),
        },
        sort_keys=True,
    )


class ExportFormatError(ValueError):
    pass


def entry_from_json(line: str, line_number: int) -> LedgerEntry:
    try:
        raw: dict[str, Any] = json.loads(line)
        return {
            "sequence": int(raw["sequence"]),
            "appended_at": dt.datetime.fromisoformat(raw["appended_at"]),
            "event_id": str(raw["event_id"]),
            "event_payload": base64.b64decode(raw["event_payload"], validate=True),
            "prev_hash": bytes.fromhex(raw["prev_hash"]),
            "entry_hash": bytes.fromhex(raw["entry_hash"]),
        }
    except (ValueError, KeyError, TypeError) as error:
        raise ExportFormatError(
            f"line {line_number}: not a ledger entry ({type(error).__name__})"
        ) from None
