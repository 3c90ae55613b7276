"""The Avro contracts in schemas/avro: parse, round-trip, drift and data-minimisation guards,
decode failures and reading messages written with archived schema versions."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import typing
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest
from biostream.codec import HEADER_LENGTH, AvroCodec, DecodeError, encode_with
from biostream.contracts import TYPED_VIEWS
from biostream.schemas import SINGLE_OBJECT_MAGIC, SchemaRegistry, load_contract

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.avsc"))

IDENTITY_ZONE = frozenset({"IdentityRecord", "DeadLetter", "ReviewTask", "LinkageParamsVersion"})
NO_PII = frozenset(
    {
        "CuratedRecord",
        "LinkDecision",
        "AuditEvent",
        "AuditEventBatch",
        "LedgerEntry",
        "LedgerCheckpoint",
        "ClinicalRecord",
        "AccessEvent",
        "ReleasePolicyVersion",
        "RiskRequest",
        "RiskReport",
    }
)

UTC = dt.UTC
# timestamp-millis keeps milliseconds only, and fastavro reads it back as an aware UTC datetime.
T0 = dt.datetime(2026, 3, 4, 1, 2, 3, 456000, tzinfo=UTC)

EXAMPLES: dict[str, dict[str, Any]] = {
    "IdentityRecord": {
        "record_id": "H001/MSG-0001/0",
        "patient_ref": "pr_3f9a1c",
        "hospital": "H001",
        "message_id": "MSG-0001",
        "source_format": "FHIR",
        "received_at": T0,
        "family_name": "남궁",
        "given_name": "민수",
        "name_latin": None,
        "birth_date": dt.date(1897, 10, 13),
        "sex": "M",
        "rrn": "9710139019902",
        "local_patient_no": "MRN-000123",
        "phone": "01012345678",
        "address": "서울특별시 종로구 세종대로 209, 3층",
        "postal_code": "03154",
        "province_code": "11",
        "quality_flags": ["NAME_SPLIT_FROM_TEXT", "RRN_CHECKSUM_MISMATCH"],
        "rrn_sealed": None,
        "rrn_key_id": None,
        "previous_patient_refs": ["pr_0a1b2c"],
    },
    "ClinicalRecord": {
        "record_id": "H001/MSG-0001/1",
        "patient_ref": "pr_3f9a1c",
        "hospital": "H001",
        "message_id": "MSG-0001",
        "source_format": "CSV",
        "received_at": T0,
        "resource_type": "Observation",
        "event_date": dt.date(2026, 2, 28),
        "code_system": "http://loinc.org",
        "code": "4548-4",
        "code_version": None,
        "value_number": 6.4,
        "value_unit": "%",
        "value_text": "정상 범위 내",
        "specimen_refs": ["SPC-2026-0001", "FASTQ-검체-01"],
        "quality_flags": [],
        "previous_patient_refs": [],
    },
    "DeadLetter": {
        "dead_letter_id": "ingest/raw.fhir.h001/2/17",
        "service": "ingest",
        "reason_code": "FHIR_INVALID_JSON",
        "message": "the message is not valid UTF-8 JSON",
        "hospital": None,
        "source_topic": "raw.fhir.h001",
        "source_partition": 2,
        "source_offset": 17_000_000_000,
        "source_key": None,
        "original": b'{"resourceType": "Patient", "name": [{"text": "\xea\xb9\x80"}]\xff\x00',
        "failed_at": T0,
        "sealed_original": None,
        "seal_key_id": None,
    },
    "LinkDecision": {
        "decision_id": "pr_3f9a1c/3",
        "patient_ref": "pr_3f9a1c",
        "record_id": "H001/MSG-0001/0",
        "hospital": "H001",
        "person_id": "P-00042",
        "previous_person_id": None,
        "outcome": "POSSIBLE_MATCH",
        "score": -3.25,
        "rule": "fellegi-sunter",
        "sequence": 3,
        "decided_at": T0,
        "birth_year": 1990,
        "sex": "F",
        "province_code": "52",
        "birth_month": 7,
        "postal_prefix": "541",
        "district_code": "52111",
        "params_version": 3,
    },
    "ReleasePolicyVersion": {
        "dataset": "cohort-late",
        "version": 2,
        "status": "WITHDRAWN",
        "withdrawn_reason": "REVOKED",
        "policy_json": b'{"approval_ref":"DRB-2026-014","dataset":"cohort-late","version":"2"}',
        "application_id": "APP-2026-0007",
        "approval_ref": "DRB-2026-014",
        "valid_from_ms": 1_790_000_000_000,
        "valid_until_ms": 1_821_536_000_000,
        "principal": "User:project-cohort-late",
        "issued_at_ms": 1_790_000_100_000,
        "board_key_id": "3fa1c0de77b21e90",
        "signature": b"\x01" * 64,
    },
    "LinkageParamsVersion": {
        "version": 3,
        "state": "SHADOWED",
        "params_json_zlib": b"x\x9c\xab\xae\x05\x00\x01u\x00\xf9",
        "params_sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "trained_on": {
            "topic": "identity.records",
            "records": 2013,
            "skipped": 1,
            "offsets": [{"partition": 0, "first": 0, "last": 670}],
            "first_record_at": T0,
            "last_record_at": T0,
            "sample_sha256": "9f" * 32,
        },
        "proposed_by": "User:linkage-trainer",
        "proposed_at": T0,
        "shadow": {
            "baseline_version": 2,
            "records": 2013,
            "patients": 1990,
            "offsets": [{"partition": 0, "first": 0, "last": 670}],
            "persons_before": 649,
            "persons_after": 647,
            "patients_regrouped": 4,
            "pairs_linked": 2,
            "pairs_unlinked": 0,
            "outcomes_changed": 3,
            "outcomes_before": {"NEW_PERSON": 643, "MATCH": 205},
            "outcomes_after": {"NEW_PERSON": 641, "MATCH": 207},
            "transitions": {"NEW_PERSON>MATCH": 2},
            "seconds": 1.5,
            "shadowed_by": "User:linkage-trainer",
            "shadowed_at": T0,
        },
        "activated_by": None,
        "activated_at": None,
        "retired_at": None,
    },
    "ReviewTask": {
        "task_id": "review/pr_3f9a1c/3",
        "created_at": T0,
        "record_id": "H001/MSG-0001/0",
        "patient_ref": "pr_3f9a1c",
        "hospital": "H001",
        "provisional_person_id": "P-00042",
        "candidate_person_ids": ["P-00042", "P-00077"],
        "score": 7.5,
        "reason": "NAME_PARTIAL,BIRTH_DATE_TRANSPOSED",
        "comparisons": [
            {"field": "family", "level": "SAME", "weight": 4.2},
            {"field": "birth", "level": "NEAR", "weight": 1.5},
        ],
    },
    "CuratedRecord": {
        "curated_id": "c_81ab",
        "dataset": "diabetes-2026",
        "policy_version": "diabetes-2026@3",
        "approval_ref": "IRB-2026-017",
        "pseudonym": "ps_77e0",
        "key_version": "k2",
        "hospital": "H001",
        "resource_type": "Condition",
        "event_date": None,
        "code_system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9",
        "code": "E11.9",
        "code_version": "9",
        "value_number": None,
        "value_unit": None,
        "birth_year": None,
        "sex": "U",
        "province_code": "51",
        "released_at": T0,
        "age_band": "35-39",
        "postal_prefix": "24",
        "district_code": None,
        "value_text": "검사 결과 [PHONE] 으로 통보",
        "specimen_ids": ["sp_4kq2"],
        "event_date_handling": "shift",
    },
    "AuditEvent": {
        "event_id": "ev_19c2",
        "occurred_at": T0,
        "service": "pseudonymizer",
        "principal": "User:pseudonymizer",
        "action": "pseudonymizer.released",
        "purpose": "당뇨병 코호트 연구",
        "hospital": "H001",
        "dataset": None,
        "inputs": ["clinical.records/0/42"],
        "outputs": [],
        "outcome": "ok",
        "reason_code": None,
        "policy": None,
    },
    "AuditEventBatch": {
        "batch_id": "ab_77d0",
        "service": "ingest",
        "packed_at": T0,
        "events": [SINGLE_OBJECT_MAGIC + bytes(range(40)), SINGLE_OBJECT_MAGIC + bytes(12)],
    },
    "LedgerEntry": {
        "sequence": 0,
        "appended_at": T0,
        "event_id": "ev_19c2",
        "event_payload": SINGLE_OBJECT_MAGIC + bytes(range(256)),
        "prev_hash": bytes(32),
        "entry_hash": bytes(range(32)),
        "hash_version": 2,
        "event_count": 1,
        "events_root": bytes(range(2, 34)),
    },
    "LedgerCheckpoint": {
        "size": 1000,
        "root_hash": bytes(range(32)),
        "tip_hash": bytes(range(1, 33)),
        "checkpoint_at": T0,
        "key_id": "3f9a1c0b2d4e5f60",
        "signature": bytes(range(64)),
        "handover": None,
    },
    "ReviewDecision": {
        "task_id": "review/pr_3f9a1c/0",
        "decision": "SAME_PERSON",
        "candidate_person_id": "P0123456789abcdef0123",
        "reviewer": "steward-07",
        "reason": "same RRN on paper form",
        "decided_at": T0,
    },
    "PatientMerge": {
        "merge_id": "H001/A40-0007/0",
        "hospital": "H001",
        "message_id": "A40-0007",
        "received_at": T0,
        "surviving_patient_ref": "pr_3f9a1c",
        "retired_patient_ref": "pr_77b0e2",
        "previous_surviving_patient_refs": [],
        "previous_retired_patient_refs": ["pr_5d6e7f"],
    },
    "DatasetNotice": {
        "notice_id": "nt_5d1e",
        "dataset": "diabetes-2026",
        "policy_version": "diabetes-2026@3",
        "approval_ref": "IRB-2026-017",
        "kind": "CORRECTION",
        "pseudonym": "ps_77e0",
        "new_pseudonym": "ps_91aa",
        "key_version": "k2",
        "curated_ids": ["cr_81ab", "cr_0c3f"],
        "date_offset_change_days": -4,
        "reason": "MERGED",
        "issued_at": T0,
    },
    "ConsentEvent": {
        "event_id": "consent/2026/0001",
        "kind": "WITHDRAWN",
        "patient_ref": "pr_3f9a1c",
        "person_id": None,
        "datasets": [],
        "recorded_at": T0,
        "source": "H001",
        "previous_patient_refs": [],
    },
    "AccessEvent": {
        "event_id": "APP-1f2e3d4c5b6a/3",
        "application_id": "APP-1f2e3d4c5b6a",
        "sequence": 3,
        "event_type": "voted",
        "actor": "drb-h002",
        "occurred_at": T0,
        "body_json": '{"type":"voted","vote":"approve"}',
    },
    "RiskRequest": {
        "request_id": "APP-1f2e3d4c5b6a/risk/1",
        "application_id": "APP-1f2e3d4c5b6a",
        "requested_by": "system",
        "requested_at": T0,
        "draft_policy_json": '{"dataset":"cohort-x"}',
        "variants_json": '{"k=10":{"min_k":10}}',
    },
    "RiskReport": {
        "request_id": "APP-1f2e3d4c5b6a/risk/1",
        "application_id": "APP-1f2e3d4c5b6a",
        "computed_at": T0,
        "outcome": "COMPUTED",
        "error_reason": None,
        "records_read": 4103,
        "figures_json": '{"requested":{"persons":649}}',
    },
}


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry(SCHEMA_DIR)


@pytest.fixture(scope="module")
def codec(registry: SchemaRegistry) -> AvroCodec:
    return AvroCodec(registry)


def _raw(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _raw_by_name() -> dict[str, dict[str, Any]]:
    return {_raw(path)["name"]: _raw(path) for path in SCHEMA_FILES}


def _tags(field: dict[str, Any]) -> list[str]:
    tags = field.get("confluent:tags", [])
    assert isinstance(tags, list), f"{field['name']}: confluent:tags must be a list"
    return tags


def _nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


# --- parsing -----------------------------------------------------------------------------------


def test_the_contract_set_is_the_expected_one() -> None:
    assert {path.stem for path in SCHEMA_FILES} >= {
        "identity_record",
        "clinical_record",
        "dead_letter",
        "link_decision",
        "review_task",
        "curated_record",
        "audit_event",
        "ledger_entry",
    }


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_schema_parses_with_fastavro_and_apache_avro(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["type"] == "record"
    assert document["namespace"].startswith("kr.biostream.")
    fastavro.parse_schema(document)
    parsed = avro.schema.parse(text)
    assert parsed.name == document["name"]


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_field_names_are_unique_and_null_defaults_come_first(path: Path) -> None:
    document = _raw(path)
    names = [field["name"] for field in document["fields"]]
    assert len(names) == len(set(names)), "duplicate field names"
    for field in document["fields"]:
        # A union default must match its first branch (Avro spec); null first for optional fields.
        if isinstance(field["type"], list) and field.get("default", ...) is None:
            assert field["type"][0] == "null", field["name"]


def test_registry_indexes_every_schema_by_name_and_fingerprint(registry: SchemaRegistry) -> None:
    assert set(registry.names()) == {_raw(path)["name"] for path in SCHEMA_FILES}
    for name in registry.names():
        contract = registry.current(name)
        assert len(contract.fingerprint) == 8
        assert contract.header == SINGLE_OBJECT_MAGIC + contract.fingerprint
        assert registry.by_fingerprint(contract.fingerprint) is contract


def test_fingerprint_is_crc64_avro_of_the_canonical_form() -> None:
    # Avro spec reference value: fingerprint64 of the canonical form '"int"' is 0x7275d51a3f395c8f,
    # written little-endian on the wire.
    canonical = fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema("int"))
    assert canonical == '"int"'
    expected = (0x7275D51A3F395C8F).to_bytes(8, "little")
    assert bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")) == expected


# --- round trip --------------------------------------------------------------------------------


def test_every_schema_has_a_round_trip_example(registry: SchemaRegistry) -> None:
    assert set(EXAMPLES) == set(registry.names())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_round_trips_through_the_codec(codec: AvroCodec, name: str) -> None:
    record = EXAMPLES[name]
    data = codec.encode(name, record)
    assert data[:2] == SINGLE_OBJECT_MAGIC
    assert data[2:HEADER_LENGTH] == codec.registry.current(name).fingerprint
    decoded = codec.decode(data, name)
    assert decoded == record
    assert set(decoded) == {f["name"] for f in _raw_by_name()[name]["fields"]}


def test_round_trip_keeps_hangul_dates_bytes_and_none(codec: AvroCodec) -> None:
    identity = codec.decode(
        codec.encode("IdentityRecord", EXAMPLES["IdentityRecord"]), "IdentityRecord"
    )
    assert identity["family_name"] == "남궁"
    assert identity["birth_date"] == dt.date(1897, 10, 13)
    assert identity["received_at"] == T0 and identity["received_at"].tzinfo is not None
    assert identity["name_latin"] is None
    dead = codec.decode(codec.encode("DeadLetter", EXAMPLES["DeadLetter"]), "DeadLetter")
    assert dead["original"] == EXAMPLES["DeadLetter"]["original"]
    assert dead["source_key"] is None


def test_encoding_is_deterministic(codec: AvroCodec) -> None:
    record = EXAMPLES["ClinicalRecord"]
    assert codec.encode("ClinicalRecord", record) == codec.encode("ClinicalRecord", dict(record))


# --- contract drift guard ----------------------------------------------------------------------


def test_typed_views_cover_exactly_the_schemas() -> None:
    assert set(TYPED_VIEWS) == {_raw(path)["name"] for path in SCHEMA_FILES}


@pytest.mark.parametrize("name", sorted(TYPED_VIEWS))
def test_typed_view_keys_equal_schema_field_names(name: str) -> None:
    schema = _raw_by_name()[name]
    view = TYPED_VIEWS[name]
    keys = set(typing.get_type_hints(view))
    fields = {f["name"] for f in schema["fields"]}
    assert keys == fields, f"only in TypedDict: {keys - fields}, only in schema: {fields - keys}"


@pytest.mark.parametrize("name", sorted(TYPED_VIEWS))
def test_typed_view_optionality_matches_schema_nullability(name: str) -> None:
    hints = typing.get_type_hints(TYPED_VIEWS[name])
    for field in _raw_by_name()[name]["fields"]:
        hint = hints[field["name"]]
        hint_nullable = type(None) in typing.get_args(hint)
        assert hint_nullable == _nullable(field["type"]), f"{name}.{field['name']}"


# --- data-minimisation guard -------------------------------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_pii_fields_only_in_identity_zone_and_nullable_or_bytes(path: Path) -> None:
    document = _raw(path)
    for field in document["fields"]:
        if "PII" not in _tags(field):
            continue
        where = f"{document['name']}.{field['name']}"
        assert document["name"] in IDENTITY_ZONE, f"{where} is PII outside the identity zone"
        assert _nullable(field["type"]) or field["type"] == "bytes", (
            f"{where} is PII but neither nullable nor bytes"
        )


@pytest.mark.parametrize("name", sorted(NO_PII))
def test_no_pii_tag_in_released_linkage_audit_or_clinical_contracts(name: str) -> None:
    schema = _raw_by_name()[name]
    tagged = [f["name"] for f in schema["fields"] if {"PII", "RRN"} & set(_tags(f))]
    assert tagged == []


def test_identity_record_tags_its_direct_identifiers_as_pii() -> None:
    fields = {f["name"]: f for f in _raw_by_name()["IdentityRecord"]["fields"]}
    for name in ("family_name", "given_name", "birth_date", "rrn", "phone", "address"):
        assert "PII" in _tags(fields[name]), name
    assert "RRN" in _tags(fields["rrn"])


# --- decode failures ---------------------------------------------------------------------------


def _valid_identity(codec: AvroCodec) -> bytes:
    return codec.encode("IdentityRecord", EXAMPLES["IdentityRecord"])


def _decode_error(codec: AvroCodec, data: bytes | None, name: str = "IdentityRecord") -> str:
    with pytest.raises(DecodeError) as caught:
        codec.decode(data, name)
    return caught.value.reason_code


def test_garbage_is_not_single_object_avro(codec: AvroCodec) -> None:
    assert _decode_error(codec, "환자 김민준, not avro at all".encode()) == "NOT_SINGLE_OBJECT_AVRO"


def test_too_short_for_a_header(codec: AvroCodec) -> None:
    assert _decode_error(codec, SINGLE_OBJECT_MAGIC + b"\x01\x02") == "NOT_SINGLE_OBJECT_AVRO"


def test_wrong_magic(codec: AvroCodec) -> None:
    data = _valid_identity(codec)
    assert _decode_error(codec, b"\xc3\x02" + data[2:]) == "NOT_SINGLE_OBJECT_AVRO"
    assert _decode_error(codec, b"\x00" + data[1:]) == "NOT_SINGLE_OBJECT_AVRO"


def test_unknown_fingerprint(codec: AvroCodec) -> None:
    data = _valid_identity(codec)
    forged = SINGLE_OBJECT_MAGIC + b"\xde\xad\xbe\xef\x00\x11\x22\x33" + data[HEADER_LENGTH:]
    assert _decode_error(codec, forged) == "UNKNOWN_SCHEMA"


def test_message_of_another_contract(codec: AvroCodec) -> None:
    clinical = codec.encode("ClinicalRecord", EXAMPLES["ClinicalRecord"])
    assert _decode_error(codec, clinical, "IdentityRecord") == "WRONG_CONTRACT"


@pytest.mark.parametrize("cut", [1, 2, 7, 20])
def test_truncated_body(codec: AvroCodec, cut: int) -> None:
    data = _valid_identity(codec)
    assert _decode_error(codec, data[:-cut]) == "AVRO_BODY_INVALID"


def test_header_only_body(codec: AvroCodec) -> None:
    data = _valid_identity(codec)
    assert _decode_error(codec, data[:HEADER_LENGTH]) == "AVRO_BODY_INVALID"


def test_garbage_body_after_a_valid_header(codec: AvroCodec) -> None:
    data = _valid_identity(codec)
    assert (
        _decode_error(codec, data[:HEADER_LENGTH] + bytes(range(200, 256))) == "AVRO_BODY_INVALID"
    )


def test_missing_value(codec: AvroCodec) -> None:
    assert _decode_error(codec, None) == "EMPTY_VALUE"


def test_each_failure_kind_has_its_own_reason_code(codec: AvroCodec) -> None:
    data = _valid_identity(codec)
    codes = {
        "not avro": _decode_error(codec, b"garbage garbage"),
        "unknown schema": _decode_error(codec, SINGLE_OBJECT_MAGIC + bytes(8) + data[10:]),
        "other contract": _decode_error(
            codec, codec.encode("AuditEvent", EXAMPLES["AuditEvent"]), "IdentityRecord"
        ),
        "corrupt body": _decode_error(codec, data[:-3]),
        "no value": _decode_error(codec, None),
    }
    assert len(set(codes.values())) == len(codes), codes


def test_decode_error_message_does_not_quote_the_input(codec: AvroCodec) -> None:
    data = _valid_identity(codec)
    with pytest.raises(DecodeError) as caught:
        codec.decode(data[:-5], "IdentityRecord")
    assert "9710139019902" not in str(caught.value)
    assert "남궁" not in str(caught.value)


# --- schema evolution: archived writer versions ------------------------------------------------


def _schema_dir_with_archived_identity(tmp_path: Path) -> tuple[Path, Path]:
    schema_dir = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, schema_dir, ignore=shutil.ignore_patterns("archive"))
    archive = schema_dir / "archive"
    archive.mkdir()
    old = _raw(SCHEMA_DIR / "identity_record.avsc")
    dropped = {"province_code", "quality_flags"}
    assert all("default" in f for f in old["fields"] if f["name"] in dropped)
    old["fields"] = [f for f in old["fields"] if f["name"] not in dropped]
    old_path = archive / "identity_record.v1.avsc"
    old_path.write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    return schema_dir, old_path


def test_message_written_with_archived_version_decodes_with_current_reader(
    tmp_path: Path,
) -> None:
    schema_dir, old_path = _schema_dir_with_archived_identity(tmp_path)
    registry = SchemaRegistry(schema_dir)
    codec = AvroCodec(registry)
    old_contract = load_contract(old_path)
    assert old_contract.fingerprint != registry.current("IdentityRecord").fingerprint
    assert registry.by_fingerprint(old_contract.fingerprint) is not None

    old_record = {
        k: v
        for k, v in EXAMPLES["IdentityRecord"].items()
        if k not in {"province_code", "quality_flags"}
    }
    data = encode_with(old_contract, old_record)
    decoded = codec.decode(data, "IdentityRecord")

    assert decoded == {**old_record, "province_code": None, "quality_flags": []}


def test_archived_versions_do_not_replace_the_current_contract(tmp_path: Path) -> None:
    schema_dir, old_path = _schema_dir_with_archived_identity(tmp_path)
    registry = SchemaRegistry(schema_dir)
    assert registry.current("IdentityRecord").source == schema_dir / "identity_record.avsc"
    assert set(registry.names()) == {_raw(path)["name"] for path in SCHEMA_FILES}
    # Writers always use the current version, which carries the new fields.
    data = AvroCodec(registry).encode("IdentityRecord", EXAMPLES["IdentityRecord"])
    assert data[2:HEADER_LENGTH] != load_contract(old_path).fingerprint


def test_message_with_archived_fingerprint_is_unknown_without_the_archive(tmp_path: Path) -> None:
    schema_dir, old_path = _schema_dir_with_archived_identity(tmp_path)
    old_contract = load_contract(old_path)
    old_record = {
        k: v
        for k, v in EXAMPLES["IdentityRecord"].items()
        if k not in {"province_code", "quality_flags"}
    }
    data = encode_with(old_contract, old_record)
    shutil.rmtree(schema_dir / "archive")
    with pytest.raises(DecodeError) as caught:
        AvroCodec(SchemaRegistry(schema_dir)).decode(data, "IdentityRecord")
    assert caught.value.reason_code == "UNKNOWN_SCHEMA"
