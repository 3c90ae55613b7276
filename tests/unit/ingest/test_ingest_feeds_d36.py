"""D36 through the handler: records of several patients, resources on their own, messages
without ids, invalid identity fields flagged, and the data-quality and skipped-entry counters."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import AUDIT_EVENT, CLINICAL_RECORD, IDENTITY_RECORD, PATIENT_MERGE
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.domain.hl7v2 import parse_hl7v2
from ingest.handlers import FeedMessageHandler, IngestMetrics, patient_ref
from prometheus_client import CollectorRegistry

NOW = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
RECEIVED = NOW.date()
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
KEY = b"k" * 32
FHIR = (("content-type", b"application/fhir+json"),)
HL7 = (("content-type", b"x-application/hl7-v2+er7"),)
MR = {"type": {"coding": [{"code": "MR"}]}}


def handler(registry: CollectorRegistry) -> FeedMessageHandler:
    return FeedMessageHandler(
        CODEC,
        TOPICS,
        Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS),
        KEY,
        IngestMetrics.create(registry),
    )


def inbound(value: bytes, headers: tuple[tuple[str, bytes], ...], offset: int = 0) -> Inbound:
    return Inbound(TOPICS.feed("H009"), 0, offset, None, value, headers, 0)


def on(out: list[Outbound], topic: str, contract: str) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value, contract) for o in out if o.topic == topic]


def patient(number: str, name: str, birth: str = "1985-03-21") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p-{number}",
        "identifier": [{**MR, "value": number}],
        "name": [{"text": name}],
        "gender": "female",
        "birthDate": birth,
    }


def condition(subject: dict[str, Any] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "code": {
            "coding": [
                {"system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9", "code": "E11.9"}
            ]
        },
        "recordedDate": "2026-02-01",
    }
    if subject is not None:
        resource["subject"] = subject
    return resource


def searchset() -> bytes:
    entries = [
        {"fullUrl": "urn:uuid:a", "resource": patient("A-1", "김서연")},
        {"fullUrl": "urn:uuid:b", "resource": patient("B-2", "이민준", birth="1985-02-30")},
        {"resource": {"resourceType": "Organization", "name": "병원"}},
        {"resource": {"resourceType": "Practitioner"}},
        {"resource": condition({"reference": "urn:uuid:a"})},
        {"resource": condition({"reference": "Patient/p-B-2"})},
        {"resource": {"resourceType": "ImagingStudy"}},
    ]
    return json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}).encode()


def test_bundle_of_two_patients_gives_each_its_identity_and_records() -> None:
    registry = CollectorRegistry()
    out = handler(registry)(inbound(searchset(), FHIR), StateStore(), NOW)
    identities = on(out, TOPICS.identity_records, IDENTITY_RECORD)
    clinical = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    refs = [patient_ref(KEY, "H009", n) for n in ("A-1", "B-2")]
    assert [i["patient_ref"] for i in identities] == refs
    assert [c["patient_ref"] for c in clinical] == refs
    message_id = identities[0]["message_id"]
    assert message_id.startswith("sha256-")  # no Bundle.id: the content hash
    assert [i["record_id"] for i in identities] == [
        f"H009/{message_id}/0",
        f"H009/{message_id}/p1/0",
    ]
    assert [c["record_id"] for c in clinical] == [
        f"H009/{message_id}/1",
        f"H009/{message_id}/p1/1",
    ]
    # The second patient's impossible birth date is unknown and flagged; the record flows.
    assert identities[1]["birth_date"] is None
    assert "BIRTH_DATE_INVALID" in identities[1]["quality_flags"]
    [audit] = on(out, TOPICS.audit_events_of("svc-ingest"), AUDIT_EVENT)
    assert audit["outputs"] == [i["record_id"] for i in identities[:1]] + [
        clinical[0]["record_id"],
        identities[1]["record_id"],
        clinical[1]["record_id"],
    ]

    def count(metric: str, **labels: str) -> float | None:
        return registry.get_sample_value(metric, {"hospital": "H009", **labels})

    skipped = "biostream_ingest_skipped_entries_total"
    assert count(skipped, resource_type="Organization", reason="CONTEXT") == 1
    assert count(skipped, resource_type="Practitioner", reason="CONTEXT") == 1
    assert count(skipped, resource_type="other", reason="UNSUPPORTED") == 1
    flags = "biostream_ingest_quality_flags_total"
    assert count(flags, flag="MESSAGE_ID_FROM_CONTENT") == 1
    assert count(flags, flag="BIRTH_DATE_INVALID") == 1
    assert count(flags, flag="IDENTITY_INSUFFICIENT") == 1
    assert count("biostream_ingest_feed_messages_total", format="fhir", outcome="accepted") == 1


def test_resend_of_a_bundle_without_id_is_a_duplicate() -> None:
    ingest, state = handler(CollectorRegistry()), StateStore()
    ingest(inbound(searchset(), FHIR, 0), state, NOW)
    spaced = json.dumps(json.loads(searchset()), indent=1).encode()
    second = ingest(inbound(spaced, FHIR, 1), state, NOW)
    [audit] = on(second, TOPICS.audit_events_of("svc-ingest"), AUDIT_EVENT)
    assert audit["action"] == "ingest.duplicate"


def test_lone_resource_naming_its_patient_by_number_joins_that_patient() -> None:
    subject = {"identifier": {**MR, "value": "A-1"}}
    resource = {**condition(subject), "id": "c-1"}
    out = handler(CollectorRegistry())(
        inbound(json.dumps(resource).encode(), FHIR), StateStore(), NOW
    )
    assert on(out, TOPICS.identity_records, IDENTITY_RECORD) == []  # its Patient comes apart
    [record] = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert record["patient_ref"] == patient_ref(KEY, "H009", "A-1")
    assert record["record_id"] == "H009/Condition/c-1/1"
    assert record["quality_flags"] == []


def test_lone_resource_naming_its_patient_by_server_id_is_kept_unresolved() -> None:
    registry = CollectorRegistry()
    resource = {**condition({"reference": "Patient/p-A-1"}), "id": "c-2"}
    out = handler(registry)(inbound(json.dumps(resource).encode(), FHIR), StateStore(), NOW)
    [record] = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert record["patient_ref"] == patient_ref(KEY, "H009", "Patient/p-A-1")
    assert record["patient_ref"] != patient_ref(KEY, "H009", "A-1")
    assert "PATIENT_REFERENCE_UNRESOLVED" in record["quality_flags"]
    labels = {"hospital": "H009", "flag": "PATIENT_REFERENCE_UNRESOLVED"}
    assert registry.get_sample_value("biostream_ingest_quality_flags_total", labels) == 1


ORU_BAD_BIRTH = (
    "MSH|^~\\&|LIS|H009|BIOSTREAM|NBB|20260302101500||ORU^R01|LAB-9|P|2.5.1\r"
    "PID|1||00012345^^^H009^MR||홍^길동||19971399|M\r"
    "OBR|1|ORD-1|FIL-1|4548-4^HbA1c^LN|||20260302080000\r"
    "OBX|1|NM|4548-4^HbA1c^LN||7.1|%|||||F\r"
).encode()


def test_oru_with_an_impossible_birth_date_keeps_its_results() -> None:
    out = handler(CollectorRegistry())(inbound(ORU_BAD_BIRTH, HL7), StateStore(), NOW)
    [identity] = on(out, TOPICS.identity_records, IDENTITY_RECORD)
    [result] = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert identity["birth_date"] is None and "BIRTH_DATE_INVALID" in identity["quality_flags"]
    assert (result["code"], result["value_number"]) == ("4548-4", 7.1)


PID = "PID|1||00012345^^^H009^MR||홍^길동||19971013|M"


def er7(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode()


def msh(kind: str, control: str = "M-1") -> str:
    return f"MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260301093000||{kind}|{control}|P|2.5"


def test_transfer_and_discharge_give_their_encounter_and_cancellations_none() -> None:
    pv1 = "PV1|1|I|W1^101^1" + "|" * 41 + "20260301093000"
    for kind in ("ADT^A02", "ADT^A03"):
        parsed = parse_hl7v2(er7(msh(kind), PID, pv1), None, RECEIVED)
        assert [e.resource_type for e in parsed.events] == ["Encounter"]
    for kind in ("ADT^A11", "ADT^A12", "ADT^A13"):
        parsed = parse_hl7v2(er7(msh(kind), PID, pv1), None, RECEIVED)
        assert parsed.identity is not None and parsed.events == ()


def test_identifier_change_and_merges_of_every_trigger_are_merges() -> None:
    for kind in ("ADT^A18", "ADT^A34", "ADT^A39", "ADT^A40", "ADT^A47"):
        parsed = parse_hl7v2(er7(msh(kind), PID, "MRG|00099999^^^H009^MR"), None, RECEIVED)
        assert parsed.merges == (("00012345", "00099999"),)
        assert parsed.message_type == kind


def test_merge_is_forwarded_with_references_only() -> None:
    raw = er7(msh("ADT^A47", "A47-1"), PID, "MRG|00099999^^^H009^MR")
    out = handler(CollectorRegistry())(inbound(raw, HL7), StateStore(), NOW)
    [merge] = on(out, TOPICS.patient_merges, PATIENT_MERGE)
    assert merge["retired_patient_ref"] == patient_ref(KEY, "H009", "00099999")


def test_order_gives_a_service_request_and_its_results() -> None:
    raw = er7(
        msh("OML^O21"),
        PID,
        "ORC|NW|ORD-7",
        "OBR|1|ORD-7||2345-7^Glucose^LN|||20260301080000",
        "OBX|1|NM|2345-7^Glucose^LN||99|mg/dL|||||F",
        "SPM|1|SP-1||SER",
    )
    parsed = parse_hl7v2(raw, None, RECEIVED)
    kinds = [(e.resource_type, e.code) for e in parsed.events]
    assert kinds == [
        ("ServiceRequest", "2345-7"),
        ("Observation", "2345-7"),
        ("Specimen", "SER"),
    ]
    assert parsed.events[0].code_system == "http://loinc.org"
    assert parsed.events[0].event_date == dt.date(2026, 3, 1)


def test_mdm_gives_document_metadata_and_never_its_text() -> None:
    raw = er7(
        msh("MDM^T02"),
        PID,
        "TXA|1|DS|TX|20260301101500||20260301100000",
        "OBX|1|TX|||홍길동 님은 2026-03-01 퇴원하였다||||||F",
    )
    parsed = parse_hl7v2(raw, None, RECEIVED)
    [document] = parsed.events
    assert (document.resource_type, document.code) == ("DocumentReference", "DS")
    assert document.event_date == dt.date(2026, 3, 1)
    assert document.value_text is None


def test_each_pid_of_a_result_message_is_a_patient() -> None:
    raw = er7(
        msh("ORU^R01"),
        PID,
        "OBX|1|NM|4548-4^HbA1c^LN||7.1|%|||||F",
        "PID|2||00055555^^^H009^MR||김^서연||19850321|F",
        "OBX|1|NM|4548-4^HbA1c^LN||5.2|%|||||F",
    )
    parts = parse_hl7v2(raw, None, RECEIVED).parts()
    assert [(p.patient_no, [e.value_number for e in p.events]) for p in parts] == [
        ("00012345", [7.1]),
        ("00055555", [5.2]),
    ]


def test_batch_is_one_message_and_refused_whole_if_one_message_is() -> None:
    good = er7(msh("ADT^A04", "M-1"), PID).decode()
    batch = f"FHS|^~\\&|HIS|H009\rBHS|^~\\&|HIS|H009|||||||B-77\r{good}{good.replace('M-1', 'M-2')}BTS|2\rFTS|1\r"
    parsed = parse_hl7v2(batch.encode(), None, RECEIVED)
    assert parsed.message_id == "B-77" and len(parsed.parts()) == 2
    broken = batch.replace("ADT^A04|M-2", "ADT^A24|M-2")
    out = handler(CollectorRegistry())(inbound(broken.encode(), HL7), StateStore(), NOW)
    assert [o.topic for o in out] == [TOPICS.dead_letters, TOPICS.audit_events_of("svc-ingest")]


def test_message_without_control_id_gets_a_content_hash_and_a_resend_is_a_duplicate() -> None:
    raw = er7(msh("ADT^A01", ""), PID)
    parsed = parse_hl7v2(raw, None, RECEIVED)
    assert parsed.message_id.startswith("sha256-")
    assert parse_hl7v2(raw.replace(b"\r", b"\n"), None, RECEIVED).message_id == parsed.message_id
    ingest, state = handler(CollectorRegistry()), StateStore()
    ingest(inbound(raw, HL7, 0), state, NOW)
    [audit] = on(ingest(inbound(raw, HL7, 1), state, NOW), TOPICS.audit_events_of("svc-ingest"), AUDIT_EVENT)  # fmt: skip
    assert audit["action"] == "ingest.duplicate"


def test_resource_naming_a_patient_read_before_by_its_id_joins_that_patient() -> None:
    ingest, state = handler(CollectorRegistry()), StateStore()
    ingest(inbound(json.dumps(patient("A-1", "김서연")).encode(), FHIR, 0), state, NOW)
    resource = {**condition({"reference": "Patient/p-A-1"}), "id": "c-3"}
    out = ingest(inbound(json.dumps(resource).encode(), FHIR, 1), state, NOW)
    [record] = on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert record["patient_ref"] == patient_ref(KEY, "H009", "A-1")
    assert record["quality_flags"] == []
    # A resource naming a patient not read before stays unresolved.
    other = {**condition({"reference": "Patient/p-Z-9"}), "id": "c-4"}
    [kept] = on(ingest(inbound(json.dumps(other).encode(), FHIR, 2), state, NOW), TOPICS.clinical_records, CLINICAL_RECORD)  # fmt: skip
    assert "PATIENT_REFERENCE_UNRESOLVED" in kept["quality_flags"]


def test_bulk_data_export_with_patients_first_joins_every_resource_to_its_patient() -> None:
    data = Path(__file__).resolve().parents[2] / "data" / "fhir-r4"
    ingest, state = handler(CollectorRegistry()), StateStore()
    offset = 0
    identities: list[dict[str, Any]] = []
    clinical: list[dict[str, Any]] = []
    for name in ("bulk-10-patients_Patient.000.ndjson", "bulk-10-patients_AllergyIntolerance.000.ndjson"):  # fmt: skip
        for line in (data / name).read_bytes().splitlines():
            out = ingest(inbound(line, FHIR, offset), state, NOW)
            offset += 1
            identities += on(out, TOPICS.identity_records, IDENTITY_RECORD)
            clinical += on(out, TOPICS.clinical_records, CLINICAL_RECORD)
    assert len(identities) == 13 and len(clinical) == 11
    assert {c["patient_ref"] for c in clinical} <= {i["patient_ref"] for i in identities}
    assert not any("PATIENT_REFERENCE_UNRESOLVED" in c["quality_flags"] for c in clinical)


def test_allergies_and_procedures_of_an_adt_are_events() -> None:
    raw = er7(
        msh("ADT^A03"),
        PID,
        "AL1|1|DA|1605^acetaminophen^L|MO|rash|20260220",
        "PR1|1||M0111^Appendectomy^EDI||20260301120000",
        "PR1|2||",
    )
    parsed = parse_hl7v2(raw, None, RECEIVED)
    assert [(e.resource_type, e.code, e.event_date) for e in parsed.events] == [
        ("AllergyIntolerance", "1605", dt.date(2026, 2, 20)),
        ("Procedure", "M0111", dt.date(2026, 3, 1)),
    ]
    assert parsed.events[1].code_system == "http://www.hl7korea.or.kr/CodeSystem/hira-edi-procedure"
