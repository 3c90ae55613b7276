"""CSV extracts: each message is a header line plus one data row (the publisher splits files so).

Which column holds what is declared per hospital by a mapping (``CsvMapping``, read from a JSON
file by the adapters): onboarding a hospital's extract is a file, not a code change. Fields a
mapping does not name keep their default column names.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ingest.domain.codes import (
    HIRA_EDI_PROCEDURE,
    KCD_SYSTEM_PREFIX,
    KCD_VERSIONS,
    KD_CODE_SYSTEM,
    LOINC_SYSTEM,
    infer_kcd_version,
    kcd_flags,
    kd_code_valid,
)
from ingest.domain.identity import parse_date, validate_identity
from ingest.domain.model import ClinicalEvent, ParsedMessage, RawIdentity, Rejected

# Default column names, also the field names a mapping file maps from.
DEFAULT_COLUMNS = (
    "message_id", "patient_no", "family_name", "given_name", "birth_date", "sex", "rrn", "phone",
    "address", "postal_code", "visit_date", "kcd_code", "kcd_version", "lab_loinc", "lab_value",
    "lab_unit",
)  # fmt: skip
OPTIONAL_FIELDS = (
    "full_name", "name_latin", "province_code", "specimen_id", "edi_procedure_code", "kd_code",
)  # fmt: skip
FIELDS = frozenset(DEFAULT_COLUMNS + OPTIONAL_FIELDS)
REQUIRED_FIELDS = ("message_id", "patient_no")
_SEX_DEFAULTS = {"M": "M", "F": "F", "남": "M", "여": "F", "1": "M", "2": "F"}


class MappingInvalid(ValueError):
    """A mapping document that cannot be used; the text names the offending key, never data."""


@dataclass(frozen=True)
class CsvMapping:
    name: str = "default"
    columns: Mapping[str, str] = field(default_factory=dict)  # field -> column header
    date_format: str = "%Y-%m-%d"
    delimiter: str = ","
    sex_values: Mapping[str, str] = field(default_factory=dict)
    kcd_version: str | None = None  # used when no kcd_version column is given

    def column(self, name: str) -> str:
        return self.columns.get(name, name)

    @cached_property
    def field_columns(self) -> tuple[tuple[str, str], ...]:
        """(field, column header) for every field, worked out once per mapping."""
        return tuple((name, self.column(name)) for name in sorted(FIELDS))


DEFAULT_MAPPING = CsvMapping()


def mapping_from_document(document: Any, name: str) -> CsvMapping:
    """D-ingest-5: validates a mapping file's JSON document (unknown keys or fields, a field mapped
    twice, a bad delimiter or version are ``MappingInvalid``)::

    {"columns": {"patient_no": "등록번호", "birth_date": "생년월일", ...},
     "date_format": "%Y%m%d", "delimiter": ";", "sex_values": {"남": "M", "여": "F"},
     "kcd_version": "8"}
    """
    if not isinstance(document, dict):
        raise MappingInvalid(f"{name}: the mapping is not a JSON object")
    unknown = set(document) - {"columns", "date_format", "delimiter", "sex_values", "kcd_version"}
    if unknown:
        raise MappingInvalid(f"{name}: unknown keys {sorted(unknown)}")
    columns = document.get("columns", {})
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in columns.items()
    ):
        raise MappingInvalid(f"{name}: 'columns' must map field names to column names")
    bad = set(columns) - FIELDS
    if bad:
        raise MappingInvalid(f"{name}: unknown fields in 'columns': {sorted(bad)}")
    if len(set(columns.values())) != len(columns):
        raise MappingInvalid(f"{name}: two fields map to the same column")
    date_format = document.get("date_format", "%Y-%m-%d")
    if not isinstance(date_format, str) or "%" not in date_format:
        raise MappingInvalid(f"{name}: 'date_format' must be a strptime format")
    delimiter = document.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise MappingInvalid(f"{name}: 'delimiter' must be one character")
    sex_values = document.get("sex_values", {})
    if not isinstance(sex_values, dict) or not all(
        isinstance(k, str) and v in ("M", "F", "U") for k, v in sex_values.items()
    ):
        raise MappingInvalid(f"{name}: 'sex_values' must map source values to M, F or U")
    kcd_version = document.get("kcd_version")
    if kcd_version is not None and kcd_version not in KCD_VERSIONS:
        raise MappingInvalid(f"{name}: 'kcd_version' must be one of {sorted(KCD_VERSIONS)}")
    return CsvMapping(name, dict(columns), date_format, delimiter, dict(sex_values), kcd_version)


def parse_csv(
    raw: bytes, received: dt.date, mapping: CsvMapping = DEFAULT_MAPPING
) -> ParsedMessage:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejected("CSV_NOT_UTF8", "the message is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=mapping.delimiter))
    except csv.Error:
        raise Rejected("CSV_UNPARSEABLE", "the message is not well-formed CSV") from None
    rows = [row for row in rows if row]
    if len(rows) != 2:
        raise Rejected("CSV_ROW_COUNT", f"expected a header and one row, got {len(rows)} lines")
    header, row = rows
    missing = [f for f in REQUIRED_FIELDS if mapping.column(f) not in header]
    if missing:
        columns = ", ".join(mapping.column(f) for f in missing)
        raise Rejected("CSV_COLUMNS_MISSING", f"missing columns: {columns}")
    if len(row) != len(header):
        raise Rejected("CSV_COLUMN_COUNT", f"row has {len(row)} fields, header has {len(header)}")
    by_column = {name: value.strip() for name, value in zip(header, row, strict=True)}
    cells: dict[str, str] = {
        name: by_column.get(column, "") for name, column in mapping.field_columns
    }
    message_id = cells["message_id"]
    if not message_id:
        raise Rejected("MESSAGE_ID_MISSING", f"{mapping.column('message_id')} is empty")
    sex = cells["sex"]
    identity = validate_identity(
        RawIdentity(
            local_patient_no=cells["patient_no"] or None,
            family_name=cells["family_name"] or None,
            given_name=cells["given_name"] or None,
            full_name=cells["full_name"] or None,
            name_latin=cells["name_latin"] or None,
            birth_date=_iso_date(cells["birth_date"], "birth_date", mapping),
            sex=(mapping.sex_values.get(sex) or _SEX_DEFAULTS.get(sex.upper(), sex)) or None,
            rrn=cells["rrn"] or None,
            phone=cells["phone"] or None,
            address=cells["address"] or None,
            postal_code=cells["postal_code"] or None,
            province_code=cells["province_code"] or None,
        ),
        received,
    )
    visit_text = _iso_date(cells["visit_date"], "visit_date", mapping)
    visit = parse_date(visit_text, "visit_date") if visit_text else None
    specimens = (cells["specimen_id"],) if cells["specimen_id"] else ()
    events: list[ClinicalEvent] = []
    if cells["kcd_code"]:
        version = cells["kcd_version"] or mapping.kcd_version
        flags: list[str] = []
        if version is None:
            version = infer_kcd_version(visit)
            flags.append("KCD_VERSION_INFERRED")
        if version not in KCD_VERSIONS:
            raise Rejected("KCD_VERSION_INVALID", "kcd_version must be 6, 7, 8 or 9")
        flags += kcd_flags(cells["kcd_code"])
        events.append(
            ClinicalEvent(
                resource_type="Condition",
                event_date=visit,
                code_system=KCD_SYSTEM_PREFIX + version,
                code=cells["kcd_code"],
                code_version=version,
                specimen_refs=specimens,
                quality_flags=tuple(flags),
            )
        )
    if cells["lab_loinc"]:
        value = cells["lab_value"] or None
        try:
            number = float(value) if value is not None else None
        except ValueError:
            raise Rejected("LAB_VALUE_INVALID", "lab_value is not a number") from None
        if number is not None and (number != number or number in (float("inf"), float("-inf"))):
            raise Rejected("LAB_VALUE_INVALID", "lab_value is not a finite number")
        events.append(
            ClinicalEvent(
                resource_type="Observation",
                event_date=visit,
                code_system=LOINC_SYSTEM,
                code=cells["lab_loinc"],
                value_number=number,
                value_unit=cells["lab_unit"] or None,
                specimen_refs=specimens,
            )
        )
    if cells["edi_procedure_code"]:
        events.append(
            ClinicalEvent(
                resource_type="Procedure",
                event_date=visit,
                code_system=HIRA_EDI_PROCEDURE,
                code=cells["edi_procedure_code"],
            )
        )
    if cells["kd_code"]:
        events.append(
            ClinicalEvent(
                resource_type="MedicationRequest",
                event_date=visit,
                code_system=KD_CODE_SYSTEM,
                code=cells["kd_code"],
                quality_flags=() if kd_code_valid(cells["kd_code"]) else ("KD_CODE_INVALID",),
            )
        )
    if specimens and not events:
        events.append(ClinicalEvent("Specimen", visit, specimen_refs=specimens))
    return ParsedMessage(message_id, identity, tuple(events), message_type="csv-row")


def _iso_date(value: str, name: str, mapping: CsvMapping) -> str | None:
    """A date in the mapping's format as ``YYYY-MM-DD``; the column is named, never the value."""
    if not value:
        return None
    if mapping.date_format == "%Y-%m-%d":
        return value  # the shared validator checks it
    try:
        return dt.datetime.strptime(value, mapping.date_format).date().isoformat()
    except ValueError:
        raise Rejected(
            f"{name.upper()}_INVALID", f"{mapping.column(name)} is not a date in the mapped format"
        ) from None
