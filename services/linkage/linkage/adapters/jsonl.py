"""JSON-lines records for ``linkage evaluate``: the input format of the issue, read into Identity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from linkage.domain.profile import Identity


class InputError(ValueError):
    pass


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    return str(value).strip() or None


def identity_from_json(raw: dict[str, Any]) -> tuple[Identity, str | None]:
    """(identity, source). Missing keys are unknown values; ``identifiers.rrn`` is the RRN."""
    if "record_id" not in raw:
        raise InputError("record_id missing")
    identifiers = raw.get("identifiers") or {}
    if not isinstance(identifiers, dict):
        raise InputError("identifiers must be an object")
    rrn = identifiers.get("rrn")
    others = tuple(
        sorted(
            (str(k), str(v)) for k, v in identifiers.items() if k != "rrn" and v not in (None, "")
        )
    )
    identity = Identity(
        record_id=str(raw["record_id"]),
        family_name=_text(raw, "family_name"),
        given_name=_text(raw, "given_name"),
        name_latin=_text(raw, "name_latin"),
        birth_date=_text(raw, "birth_date"),
        sex=_text(raw, "sex"),
        rrn=str(rrn) if rrn else None,
        identifiers=others,
        phone=_text(raw, "phone"),
        postal_code=_text(raw, "postal_code"),
        address=_text(raw, "address"),
    )
    return identity, _text(raw, "source")


def read_records(path: Path) -> Iterator[tuple[Identity, str | None]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"line {number}: not JSON ({error.msg})") from None
            if not isinstance(raw, dict):
                raise InputError(f"line {number}: not a JSON object")
            try:
                yield identity_from_json(raw)
            except InputError as error:
                raise InputError(f"line {number}: {error}") from None


def read_truth(path: Path) -> dict[str, str]:
    truth: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                raw = json.loads(line)
                truth[str(raw["record_id"])] = str(raw["entity_id"])
    return truth
