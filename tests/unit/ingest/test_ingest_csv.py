"""parse_csv: one header line plus one data row per message."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from ingest.domain.csv_feed import DEFAULT_COLUMNS, parse_csv
from ingest.domain.model import Rejected

RECEIVED = dt.date(2026, 3, 4)

ROW = {
    "message_id": "CSV-0001",
    "patient_no": "MRN-000123",
    "family_name": "김",
    "given_name": "민준",
    "birth_date": "1990-01-01",
    "sex": "M",
    "rrn": "900101-1234568",
    "phone": "010-1234-5678",
    "address": "서울특별시 종로구 세종대로 209, 3층",
    "postal_code": "03154",
    "visit_date": "2026-02-01",
    "kcd_code": "E11.9",
    "kcd_version": "",
    "lab_loinc": "4548-4",
    "lab_value": "6.4",
    "lab_unit": "%",
}


def message(columns: tuple[str, ...] = DEFAULT_COLUMNS, **changes: str) -> bytes:
    values = {**ROW, **changes}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerow([values.get(c, "") for c in columns])
    return buffer.getvalue().encode()


def rejection(raw: bytes) -> str:
    with pytest.raises(Rejected) as caught:
        parse_csv(raw, RECEIVED)
    return caught.value.reason_code


def test_header_and_row_give_identity_and_events() -> None:
    parsed = parse_csv(message(), RECEIVED)
    assert parsed.message_id == "CSV-0001"
    identity = parsed.identity
    assert identity.local_patient_no == "MRN-000123"
    assert (identity.family_name, identity.given_name) == ("김", "민준")
    assert identity.birth_date == dt.date(1990, 1, 1)
    assert identity.rrn == "9001011234568"
    assert identity.phone == "01012345678"
    assert identity.address == "서울특별시 종로구 세종대로 209, 3층"  # quoted comma kept
    assert identity.province_code == "11"

    condition, observation = parsed.events
    assert condition.resource_type == "Condition"
    assert condition.code == "E11.9"
    assert condition.code_version == "9"  # visit on 2026-02-01: KCD-9
    assert condition.code_system == "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9"
    assert "KCD_VERSION_INFERRED" in condition.quality_flags
    assert condition.event_date == dt.date(2026, 2, 1)
    assert observation.resource_type == "Observation"
    assert observation.code_system == "http://loinc.org"
    assert observation.value_number == 6.4
    assert observation.value_unit == "%"


def test_stated_kcd_version_is_used() -> None:
    (condition, _) = parse_csv(message(kcd_version="8"), RECEIVED).events
    assert condition.code_version == "8"
    assert condition.quality_flags == ()


def test_crlf_and_bom_are_accepted() -> None:
    raw = b"\xef\xbb\xbf" + message().replace(b"\n", b"\r\n")
    assert parse_csv(raw, RECEIVED).message_id == "CSV-0001"


def test_minimal_columns() -> None:
    columns = ("message_id", "patient_no", "family_name", "birth_date")
    parsed = parse_csv(message(columns), RECEIVED)
    assert parsed.events == ()
    assert parsed.identity.family_name == "김"


def test_wrong_column_count_is_rejected() -> None:
    header, row = message().decode().splitlines()
    assert rejection(f"{header}\n{row},extra\n".encode()) == "CSV_COLUMN_COUNT"
    assert rejection(f"{header}\n{row.rsplit(',', 1)[0]}\n".encode()) == "CSV_COLUMN_COUNT"


@pytest.mark.parametrize("birth", ["1990-13-01", "1990-02-30", "01/01/1990", "2030-01-01"])
def test_bad_birth_date_becomes_unknown_with_a_flag_and_the_row_flows(birth: str) -> None:
    # D36: flag, do not lose.
    parsed = parse_csv(message(birth_date=birth), RECEIVED)
    assert parsed.identity is not None
    assert "BIRTH_DATE_INVALID" in parsed.identity.quality_flags
    assert parsed.events


def test_header_only_is_rejected() -> None:
    assert rejection(",".join(DEFAULT_COLUMNS).encode() + b"\n") == "CSV_ROW_COUNT"


def test_two_rows_are_rejected() -> None:
    raw = message()
    row = raw.decode().splitlines()[1]
    assert rejection(raw + row.encode() + b"\n") == "CSV_ROW_COUNT"


def test_missing_required_column_is_rejected() -> None:
    columns = tuple(c for c in DEFAULT_COLUMNS if c != "patient_no")
    assert rejection(message(columns)) == "CSV_COLUMNS_MISSING"


def test_empty_patient_number_is_rejected() -> None:
    assert rejection(message(patient_no="  ")) == "PATIENT_NUMBER_MISSING"


def test_empty_message_id_is_rejected() -> None:
    assert rejection(message(message_id="")) == "MESSAGE_ID_MISSING"


def test_non_utf8_is_rejected() -> None:
    assert rejection(message().decode().encode("euc-kr")) == "CSV_NOT_UTF8"


def test_invalid_kcd_version_is_rejected() -> None:
    assert rejection(message(kcd_version="10")) == "KCD_VERSION_INVALID"


def test_non_numeric_lab_value_is_rejected() -> None:
    assert rejection(message(lab_value="양성")) == "LAB_VALUE_INVALID"


def test_bad_visit_date_is_rejected() -> None:
    assert rejection(message(visit_date="2026-02-30")) == "VISIT_DATE_INVALID"
