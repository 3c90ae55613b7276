"""Deliberately broken messages that a correct ingest must dead-letter.

Each kind breaks one rule a reader can check without any knowledge of the truth:

========================================  =========================================================
kind                                      what the line holds
========================================  =========================================================
``invalid_json``                          a truncated JSON document, or a Python ``repr`` of one
``not_a_bundle``                          valid JSON, but a bare Condition/Observation or an
                                          OperationOutcome: no Bundle, no Patient
``missing_birthdate_and_identifier``      a Bundle whose Patient has neither birthDate nor identifier
``no_patient_number``                     a Bundle whose Patient has no identifier (D36: the one
                                          identity field without which nothing can be joined)
``wrong_column_count``                    a CSV row with more or fewer than 16 fields (unquoted
                                          comma in the address, truncated row, trailing field)
``missing_patient_number``                a CSV row whose ``patient_no`` is empty
========================================  =========================================================

``invalid_json`` and ``not_a_bundle`` carry no usable person: their truth line has
``entity_id = null`` and ``patient_no = null``. All malformed lines count zero clinical events.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date
from typing import Any, Final

FHIR_KINDS: Final[tuple[str, ...]] = (
    "invalid_json",
    "not_a_bundle",
    "missing_birthdate_and_identifier",
    "no_patient_number",
)
CSV_KINDS: Final[tuple[str, ...]] = ("wrong_column_count", "missing_patient_number")
PERSONLESS_KINDS: Final[frozenset[str]] = frozenset({"invalid_json", "not_a_bundle"})


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def break_fhir(rng: random.Random, kind: str, document: dict[str, Any], real_birth: date) -> str:
    """The JSON line for ``document`` broken in the way ``kind`` names."""
    if kind == "invalid_json":
        line = _dumps(document)
        if rng.random() < 0.5:
            return line[: rng.randint(len(line) // 3, 2 * len(line) // 3)]
        return repr(document)
    if kind == "not_a_bundle":
        clinical = [e["resource"] for e in document["entry"][1:]]
        if clinical and rng.random() < 0.6:
            return _dumps(rng.choice(clinical))
        return _dumps(
            {
                "resourceType": "OperationOutcome",
                "id": document["id"],
                "issue": [
                    {
                        "severity": "error",
                        "code": "exception",
                        "diagnostics": "interface engine: upstream timeout",
                    }
                ],
            }
        )
    patient = document["entry"][0]["resource"]
    if kind == "missing_birthdate_and_identifier":
        del patient["birthDate"]
        del patient["identifier"]
    elif kind == "no_patient_number":
        # Since D36 an impossible birth date is flagged and the message flows; a Patient
        # without any identifier is still refused.
        del patient["identifier"]
    else:
        raise ValueError(f"unknown FHIR malformed kind {kind!r}")
    return _dumps(document)


def csv_line(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def break_csv(rng: random.Random, kind: str, row: list[str], real_birth: date) -> str:
    """The CSV line (with its line end) for ``row`` broken in the way ``kind`` names."""
    if kind == "wrong_column_count":
        r = rng.random()
        if r < 0.5 and "," in row[8]:
            return ",".join(row) + "\n"  # exporter forgot to quote the address
        if r < 0.8:
            return csv_line(row[: rng.randint(9, len(row) - 1)])
        return csv_line([*row, "재진"])
    if kind == "missing_patient_number":
        broken = list(row)
        broken[1] = ""
        return csv_line(broken)
    raise ValueError(f"unknown CSV malformed kind {kind!r}")
