"""split_feed: a hospital feed file becomes one Kafka message per document or CSV row."""

from __future__ import annotations

import datetime as dt
import json

from ingest.domain.csv_feed import parse_csv
from ingest.domain.fhir import parse_fhir
from ingest.domain.files import split_feed

RECEIVED = dt.date(2026, 3, 4)


def test_ndjson_gives_one_message_per_line_keyed_by_id() -> None:
    docs = [
        {"resourceType": "Bundle", "id": "b-1", "entry": []},
        {"resourceType": "Patient", "id": "p-2", "name": [{"text": "김민준"}]},
        {"resourceType": "Patient", "name": [{"text": "이서연"}]},
    ]
    lines = [json.dumps(d, ensure_ascii=False).encode() for d in docs]
    data = lines[0] + b"\n\n" + lines[1] + b"\r\n" + lines[2] + b"\n"
    messages = list(split_feed("fhir", data))
    assert [m.value for m in messages] == lines
    assert [m.key for m in messages] == [b"b-1", b"p-2", None]
    assert {m.content_type for m in messages} == {"application/fhir+json"}


def test_pretty_printed_single_resource_is_one_message() -> None:
    doc = {"resourceType": "Patient", "id": "p-1", "name": [{"text": "남궁민수"}]}
    data = json.dumps(doc, ensure_ascii=False, indent=2).encode()
    (message,) = split_feed("fhir", data)
    assert message.key == b"p-1"
    assert json.loads(message.value) == doc


def test_empty_feed_gives_no_messages() -> None:
    assert list(split_feed("fhir", b"")) == []
    assert list(split_feed("csv", b"")) == []


HEADER = "message_id,patient_no,family_name,given_name,birth_date,address"


def test_csv_rows_become_messages_with_the_header_repeated() -> None:
    data = (
        f"{HEADER}\n"
        "M-1,MRN-1,김,민준,1990-01-01,서울특별시 종로구\n"
        "M-2,MRN-2,이,서연,1991-02-03,부산광역시 해운대구\n"
    ).encode()
    messages = list(split_feed("csv", data))
    assert [m.key for m in messages] == [b"M-1", b"M-2"]
    assert {m.content_type for m in messages} == {"text/csv"}
    for m in messages:
        assert m.value.decode().splitlines()[0] == HEADER
        assert len(m.value.decode().splitlines()) == 2


def test_quoted_newline_stays_inside_one_message() -> None:
    data = (
        f"{HEADER}\r\n"
        'M-1,MRN-1,김,민준,1990-01-01,"서울특별시 종로구\r\n세종대로 209, 3층"\r\n'
        "M-2,MRN-2,이,서연,1991-02-03,부산광역시\r\n"
    ).encode()
    messages = list(split_feed("csv", data))
    assert [m.key for m in messages] == [b"M-1", b"M-2"]
    first = parse_csv(messages[0].value, RECEIVED)
    assert first.message_id == "M-1"
    assert first.identity.address is not None
    assert "세종대로 209, 3층" in first.identity.address
    assert "\n" in first.identity.address
    assert parse_csv(messages[1].value, RECEIVED).identity.address == "부산광역시"


def test_csv_key_is_the_message_id_column_wherever_it_is() -> None:
    data = "patient_no,message_id,family_name\nMRN-1,M-9,김\nMRN-2,,이\n".encode()
    assert [m.key for m in split_feed("csv", data)] == [b"M-9", None]


def test_csv_without_message_id_column_has_no_keys() -> None:
    data = b"patient_no,family_name\nMRN-1,kim\n"
    assert [m.key for m in split_feed("csv", data)] == [None]


def test_csv_with_bom_keeps_the_header_name() -> None:
    data = b"\xef\xbb\xbf" + f"{HEADER}\nM-1,MRN-1,김,민준,1990-01-01,서울\n".encode()
    (message,) = split_feed("csv", data)
    assert message.key == b"M-1"
    assert message.value.startswith(b"message_id,")


def test_split_messages_parse_back() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p-1",
        "identifier": [{"system": "urn:h001/mrn", "value": "MRN-1"}],
        "name": [{"text": "남궁민수"}],
        "birthDate": "1990-01-01",
    }
    (message,) = split_feed("fhir", json.dumps(patient, ensure_ascii=False).encode() + b"\n")
    parsed = parse_fhir(message.value, None, RECEIVED)
    assert parsed.identity.family_name == "남궁"
