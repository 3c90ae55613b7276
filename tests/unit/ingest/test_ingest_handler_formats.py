"""The ingest handler with HL7 v2 feeds, merges, per-hospital CSV mappings and quality metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    DEAD_LETTER,
    IDENTITY_RECORD,
    PATIENT_MERGE,
)
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.adapters.mappings import CsvMappingDirectory
from ingest.handlers import FeedMessageHandler, IngestMetrics, patient_ref
from prometheus_client import CollectorRegistry

NOW = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
KEY = b"k" * 32
HL7 = (("content-type", b"x-application/hl7-v2+er7"),)
CSV = (("content-type", b"text/csv"),)

A01 = (
    "MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260301093000||ADT^A01|A01-1|P|2.5\r"
    "PID|1||00012345^^^H009^MR~971013-1019901^^^KOR^NNKOR||홍^길동||19971013|M|||"
    "세종대로 110^^중구^서울특별시^04524||010-1234-5678\r"
    "DG1|1||E11.9^^KCD-9||20260301\r"
).encode()
A40 = (
    "MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260302093000||ADT^A40|A40-1|P|2.5\r"
    "PID|1||00012345^^^H009^MR||홍^길동\r"
    "MRG|00099999^^^H009^MR\r"
).encode()


def handler(registry: CollectorRegistry, mapping_dir: Path | None = None) -> FeedMessageHandler:
    return FeedMessageHandler(
        CODEC,
        TOPICS,
        Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS),
        KEY,
        IngestMetrics.create(registry),
        CsvMappingDirectory(mapping_dir),
    )


def inbound(
    hospital: str, value: bytes, headers: tuple[tuple[str, bytes], ...], offset: int = 0
) -> Inbound:
    return Inbound(TOPICS.feed(hospital), 0, offset, None, value, headers, 0)


def on(out: list[Outbound], topic: str, contract: str) -> list[dict[str, object]]:
    return [CODEC.decode(o.value, contract) for o in out if o.topic == topic]


def test_hl7_adt_becomes_identity_and_clinical_records() -> None:
    registry = CollectorRegistry()
    out = handler(registry)(inbound("H009", A01, HL7), StateStore(), NOW)
    [identity] = on(out, TOPICS.identity_records, IDENTITY_RECORD)
    [condition] = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert identity["source_format"] == "HL7V2"
    assert identity["rrn"] == "9710131019901"
    assert identity["patient_ref"] == patient_ref(KEY, "H009", "00012345")
    assert (condition["code"], condition["code_version"]) == ("E11.9", "9")
    labels = {"hospital": "H009", "format": "hl7", "message_type": "ADT^A01"}
    assert registry.get_sample_value("biostream_ingest_message_types_total", labels) == 1
    present = {"hospital": "H009", "field": "rrn", "present": "true"}
    assert registry.get_sample_value("biostream_ingest_identity_fields_total", present) == 1
    absent = {"hospital": "H009", "field": "province_code", "present": "false"}
    assert registry.get_sample_value("biostream_ingest_identity_fields_total", absent) is None


def test_a40_is_forwarded_as_a_patient_merge_with_references_only() -> None:
    registry = CollectorRegistry()
    out = handler(registry)(inbound("H009", A40, HL7), StateStore(), NOW)
    [merge] = on(out, TOPICS.patient_merges, PATIENT_MERGE)
    assert merge["surviving_patient_ref"] == patient_ref(KEY, "H009", "00012345")
    assert merge["retired_patient_ref"] == patient_ref(KEY, "H009", "00099999")
    assert merge["merge_id"] == "H009/A40-1/m0"
    [wire] = [o for o in out if o.topic == TOPICS.patient_merges]
    assert wire.key == str(merge["retired_patient_ref"]).encode()
    assert b"00099999" not in (wire.value or b"") and "홍".encode() not in (wire.value or b"")
    assert on(out, TOPICS.identity_records, IDENTITY_RECORD) == []  # name only: no identity
    [audit] = on(out, TOPICS.audit_events_of("svc-ingest"), AUDIT_EVENT)
    assert audit["action"] == "ingest.accepted" and audit["outputs"] == ["H009/A40-1/m0"]
    assert (
        registry.get_sample_value("biostream_ingest_patient_merges_total", {"hospital": "H009"})
        == 1
    )


def test_redelivered_hl7_message_yields_nothing_the_second_time() -> None:
    ingest, state = handler(CollectorRegistry()), StateStore()
    first = ingest(inbound("H009", A01, HL7, 0), state, NOW)
    second = ingest(inbound("H009", A01, HL7, 1), state, NOW)
    assert len(on(first, TOPICS.identity_records, IDENTITY_RECORD)) == 1
    assert [o.topic for o in second] == [TOPICS.audit_events_of("svc-ingest")]
    assert (
        on(second, TOPICS.audit_events_of("svc-ingest"), AUDIT_EVENT)[0]["action"]
        == "ingest.duplicate"
    )


def mapped_csv() -> bytes:
    header = "접수번호;등록번호;성명;생년월일;성별;진단코드;검체번호"
    row = "R-1;55501;김민준;19900101;남;E11.9;BIO-42"
    return f"{header}\n{row}\n".encode()


def write_mapping(directory: Path, hospital: str, document: object) -> None:
    (directory / f"{hospital}.json").write_text(json.dumps(document, ensure_ascii=False))


MAPPING = {
    "columns": {
        "message_id": "접수번호", "patient_no": "등록번호", "full_name": "성명",
        "birth_date": "생년월일", "sex": "성별", "kcd_code": "진단코드", "specimen_id": "검체번호",
    },
    "date_format": "%Y%m%d",
    "delimiter": ";",
    "kcd_version": "8",
}  # fmt: skip


def test_hospital_csv_mapping_is_read_from_the_mapping_directory(tmp_path: Path) -> None:
    write_mapping(tmp_path, "H010", MAPPING)
    out = handler(CollectorRegistry(), tmp_path)(
        inbound("H010", mapped_csv(), CSV), StateStore(), NOW
    )
    [identity] = on(out, TOPICS.identity_records, IDENTITY_RECORD)
    [condition] = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert (identity["family_name"], identity["given_name"]) == ("김", "민준")
    assert identity["birth_date"] == dt.date(1990, 1, 1)
    assert identity["sex"] == "M"
    assert identity["message_id"] == "R-1"
    assert condition["code_version"] == "8"
    assert condition["specimen_refs"] == ["BIO-42"]


def test_hospital_without_mapping_file_uses_default_columns(tmp_path: Path) -> None:
    write_mapping(tmp_path, "H010", MAPPING)
    out = handler(CollectorRegistry(), tmp_path)(
        inbound("H011", mapped_csv(), CSV), StateStore(), NOW
    )
    [dead] = on(out, TOPICS.dead_letters, DEAD_LETTER)
    assert dead["reason_code"] == "CSV_COLUMNS_MISSING"


@pytest.mark.parametrize(
    "document",
    [[], {"columns": {"nonsense": "x"}}, {"columns": {"patient_no": ""}}, {"delimiter": ";;"},
     {"kcd_version": "10"}, {"sex_values": {"남": "X"}}, {"extra": 1}],
)  # fmt: skip
def test_unusable_mapping_dead_letters_the_message(tmp_path: Path, document: object) -> None:
    write_mapping(tmp_path, "H010", document)
    out = handler(CollectorRegistry(), tmp_path)(
        inbound("H010", mapped_csv(), CSV), StateStore(), NOW
    )
    [dead] = on(out, TOPICS.dead_letters, DEAD_LETTER)
    assert dead["reason_code"] == "CSV_MAPPING_INVALID"


def test_changed_mapping_file_is_picked_up_without_restart(tmp_path: Path) -> None:
    ingest = handler(CollectorRegistry(), tmp_path)
    first = ingest(inbound("H010", mapped_csv(), CSV, 0), StateStore(), NOW)
    assert on(first, TOPICS.dead_letters, DEAD_LETTER)[0]["reason_code"] == "CSV_COLUMNS_MISSING"
    write_mapping(tmp_path, "H010", MAPPING)
    second = ingest(inbound("H010", mapped_csv(), CSV, 1), StateStore(), NOW)
    assert len(on(second, TOPICS.identity_records, IDENTITY_RECORD)) == 1
