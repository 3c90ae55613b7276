"""CSV extracts: each message is a header line plus one data row (the publisher splits files so)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping

from ingest.domain.identity import parse_date, validate_identity
from ingest.domain.model import ClinicalEvent, ParsedMessage, RawIdentity, Rejected

KCD_SYSTEM_PREFIX = "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-"
LOINC_SYSTEM = "http://loinc.org"

# Default column names; a per-hospital mapping file (ingest issue) renames them.
DEFAULT_COLUMNS = (
    "message_id", "patient_no", "family_name", "given_name", "birth_date", "sex", "rrn", "phone",
    "address", "postal_code", "visit_date", "kcd_code", "kcd_version", "lab_loinc", "lab_value",
    "lab_unit",
)  # fmt: skip
REQUIRED_COLUMNS = frozenset({"message_id", "patient_no"})


def parse_csv(raw: bytes, received: dt.date) -> ParsedMessage:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejected("CSV_NOT_UTF8", "the message is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        raise Rejected("CSV_UNPARSEABLE", "the message is not well-formed CSV") from None
    rows = [row for row in rows if row]
    if len(rows) != 2:
        raise Rejected("CSV_ROW_COUNT", f"expected a header and one row, got {len(rows)} lines")
    header, row = rows
    missing = REQUIRED_COLUMNS - set(header)
    if missing:
        raise Rejected("CSV_COLUMNS_MISSING", f"missing columns: {', '.join(sorted(missing))}")
    if len(row) != len(header):
        raise Rejected("CSV_COLUMN_COUNT", f"row has {len(row)} fields, header has {len(header)}")
    cells: Mapping[str, str] = {
        name: value.strip() for name, value in zip(header, row, strict=True)
    }
    message_id = cells.get("message_id") or ""
    if not message_id:
        raise Rejected("MESSAGE_ID_MISSING", "message_id is empty")
    identity = validate_identity(
        RawIdentity(
            local_patient_no=cells.get("patient_no") or None,
            family_name=cells.get("family_name") or None,
            given_name=cells.get("given_name") or None,
            birth_date=cells.get("birth_date") or None,
            sex=cells.get("sex") or None,
            rrn=cells.get("rrn") or None,
            phone=cells.get("phone") or None,
            address=cells.get("address") or None,
            postal_code=cells.get("postal_code") or None,
        ),
        received,
    )
    visit = parse_date(cells["visit_date"], "visit_date") if cells.get("visit_date") else None
    events: list[ClinicalEvent] = []
    if cells.get("kcd_code"):
        version = cells.get("kcd_version") or None
        flags: tuple[str, ...] = ()
        if version is None:
            version = "9" if visit and visit >= dt.date(2026, 1, 1) else "8"
            flags = ("KCD_VERSION_INFERRED",)
        if version not in ("7", "8", "9"):
            raise Rejected("KCD_VERSION_INVALID", "kcd_version must be 7, 8 or 9")
        events.append(
            ClinicalEvent(
                resource_type="Condition",
                event_date=visit,
                code_system=KCD_SYSTEM_PREFIX + version,
                code=cells["kcd_code"],
                code_version=version,
                quality_flags=flags,
            )
        )
    if cells.get("lab_loinc"):
        value = cells.get("lab_value") or None
        try:
            number = float(value) if value is not None else None
        except ValueError:
            raise Rejected("LAB_VALUE_INVALID", "lab_value is not a number") from None
        events.append(
            ClinicalEvent(
                resource_type="Observation",
                event_date=visit,
                code_system=LOINC_SYSTEM,
                code=cells["lab_loinc"],
                value_number=number,
                value_unit=cells.get("lab_unit") or None,
            )
        )
    return ParsedMessage(message_id, identity, tuple(events))
