"""parse_fhir: KR Core Bundles and lone Patients."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from ingest.domain.fhir import parse_fhir
from ingest.domain.model import Rejected

RECEIVED = dt.date(2026, 3, 4)
KCD = "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-"

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": "urn:oid:1.2.410.100001/patient-id",
            "value": "MRN-000123",
        },
        {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": "971013-9019902"},
    ],
    "name": [{"text": "남궁민수"}, {"text": "Namgung Minsu"}],
    "gender": "male",
    "birthDate": "1897-10-13",
    "telecom": [
        {"system": "email", "value": "minsu@example.kr"},
        {"system": "phone", "value": "+82 10-1234-5678"},
    ],
    "address": [
        {
            "text": "강원특별자치도 춘천시 중앙로 1",
            "postalCode": "24266",
        }
    ],
}

CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "code": {
        "coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"},
            {"system": KCD + "9", "code": "E11.9"},
        ]
    },
    "onsetDateTime": "2026-02-01T09:30:00+09:00",
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
    "effectiveDateTime": "2026-02-02",
    "valueQuantity": {"value": 6.4, "unit": "%"},
}


def bundle(*resources: dict[str, Any], bundle_id: str | None = "bundle-1") -> bytes:
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": copy.deepcopy(r)} for r in resources],
    }
    if bundle_id is not None:
        document["id"] = bundle_id
    return json.dumps(document, ensure_ascii=False).encode()


def rejection(raw: bytes, fallback: str | None = None) -> str:
    with pytest.raises(Rejected) as caught:
        parse_fhir(raw, fallback, RECEIVED)
    return caught.value.reason_code


def test_bundle_gives_identity_and_two_events_with_kcd_version() -> None:
    parsed = parse_fhir(bundle(PATIENT, CONDITION, OBSERVATION), None, RECEIVED)
    assert parsed.message_id == "bundle-1"

    identity = parsed.identity
    assert identity.local_patient_no == "MRN-000123"
    assert identity.rrn == "9710139019902"
    assert (identity.family_name, identity.given_name) == ("남궁", "민수")
    assert identity.name_latin == "Namgung Minsu"
    assert identity.birth_date == dt.date(1897, 10, 13)
    assert identity.sex == "M"
    assert identity.phone == "01012345678"
    assert identity.postal_code == "24266"
    assert identity.province_code == "51"

    assert [e.resource_type for e in parsed.events] == ["Condition", "Observation"]
    condition, observation = parsed.events
    assert condition.code_system == KCD + "9"  # the KCD coding wins over plain ICD-10
    assert condition.code == "E11.9"
    assert condition.code_version == "9"
    assert condition.event_date == dt.date(2026, 2, 1)
    assert condition.quality_flags == ()
    assert observation.code_system == "http://loinc.org"
    assert observation.code == "4548-4"
    assert observation.value_number == 6.4
    assert observation.value_unit == "%"
    assert observation.event_date == dt.date(2026, 2, 2)


def test_explicit_kcd_version_is_kept() -> None:
    condition = copy.deepcopy(CONDITION)
    condition["code"]["coding"] = [{"system": KCD + "8", "version": "8", "code": "E119"}]
    (event,) = parse_fhir(bundle(PATIENT, condition), None, RECEIVED).events
    assert event.code_version == "8"
    assert event.code == "E119"


def test_bundle_without_id_gets_its_content_hash_as_message_id() -> None:
    # D36: FHIR does not require Bundle.id; a resend of the same content is the same message.
    parsed = parse_fhir(bundle(PATIENT, CONDITION, bundle_id=None), None, RECEIVED)
    assert parsed.message_id.startswith("sha256-") and len(parsed.message_id) == 39
    assert "MESSAGE_ID_FROM_CONTENT" in parsed.flags
    spaced = json.dumps(json.loads(bundle(PATIENT, CONDITION, bundle_id=None)), indent=2)
    assert parse_fhir(spaced.encode(), None, RECEIVED).message_id == parsed.message_id
    other = parse_fhir(bundle(PATIENT, OBSERVATION, bundle_id=None), None, RECEIVED)
    assert other.message_id != parsed.message_id


def test_bundle_identifier_is_the_message_id_when_there_is_no_id() -> None:
    document = json.loads(bundle(PATIENT, bundle_id=None))
    document["identifier"] = {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:b-77"}
    assert parse_fhir(json.dumps(document).encode(), None, RECEIVED).message_id == "urn:uuid:b-77"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"resourceType": "Patient",}', b"\xff\xfe{}", b"{'a': 1}"],
)
def test_invalid_json_is_rejected(raw: bytes) -> None:
    assert rejection(raw) == "FHIR_INVALID_JSON"


def test_json_that_is_not_an_object_is_rejected() -> None:
    assert rejection(b"[1, 2]") == "FHIR_NOT_A_RESOURCE"


def other_patient() -> dict[str, Any]:
    other = copy.deepcopy(PATIENT)
    other["id"] = "pat-2"
    other["identifier"] = [{"type": {"coding": [{"code": "MR"}]}, "value": "MRN-000777"}]
    return other


def with_subject(resource: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(resource), "subject": reference}


def test_two_patients_each_get_the_entries_that_name_them() -> None:
    # D36: a searchset or collection may carry several patients.
    document = json.loads(
        bundle(
            PATIENT,
            other_patient(),
            with_subject(CONDITION, {"reference": "Patient/pat-2"}),
            with_subject(OBSERVATION, {"reference": "urn:uuid:p1"}),
        )
    )
    document["entry"][0]["fullUrl"] = "urn:uuid:p1"
    parsed = parse_fhir(json.dumps(document).encode(), None, RECEIVED)
    first, second = parsed.parts()
    assert (first.patient_no, second.patient_no) == ("MRN-000123", "MRN-000777")
    assert [e.resource_type for e in first.events] == ["Observation"]
    assert [e.resource_type for e in second.events] == ["Condition"]
    assert first.identity is not None and second.identity is not None


def test_entry_naming_no_patient_among_several_is_skipped_and_counted() -> None:
    parsed = parse_fhir(bundle(PATIENT, other_patient(), CONDITION), None, RECEIVED)
    assert [len(p.events) for p in parsed.parts()] == [0, 0]
    assert [(s.resource_type, s.reason) for s in parsed.skipped] == [
        ("Condition", "PATIENT_UNRESOLVED")
    ]


def test_bundle_without_anything_usable_is_rejected() -> None:
    assert rejection(bundle(CONDITION)) == "FHIR_BUNDLE_EMPTY"
    assert rejection(bundle({"resourceType": "Organization"})) == "FHIR_BUNDLE_EMPTY"


def test_context_and_other_entries_are_skipped_and_counted_not_refused() -> None:
    parsed = parse_fhir(
        bundle(
            PATIENT,
            {"resourceType": "Practitioner"},
            {"resourceType": "Organization"},
            {"resourceType": "Location"},
            {"resourceType": "MolecularSequence"},
            {"resourceType": {"not": "a name"}},
            CONDITION,
        ),
        None,
        RECEIVED,
    )
    assert [e.resource_type for e in parsed.events] == ["Condition"]
    assert [(s.resource_type, s.reason) for s in parsed.skipped] == [
        ("Practitioner", "CONTEXT"),
        ("Organization", "CONTEXT"),
        ("Location", "CONTEXT"),
        ("other", "UNSUPPORTED"),  # labels are names from a fixed set, never the message's
        ("other", "UNSUPPORTED"),
    ]


def test_entry_naming_a_patient_outside_the_bundle_by_identifier_joins_that_patient() -> None:
    reference = {"identifier": {"type": {"coding": [{"code": "MR"}]}, "value": "MRN-9"}}
    parsed = parse_fhir(bundle(PATIENT, with_subject(CONDITION, reference)), None, RECEIVED)
    first, second = parsed.parts()
    assert first.events == () and second.patient_no == "MRN-9" and second.identity is None
    assert second.events[0].quality_flags == ()


def test_lone_resource_joins_the_patient_its_reference_identifier_names() -> None:
    reference = {
        "reference": "Patient/123",
        "identifier": {"system": "urn:oid:1.2.410.100001/patient-id", "value": "MRN-000123"},
    }
    observation = {**with_subject(OBSERVATION, reference), "id": "obs-1"}
    parsed = parse_fhir(json.dumps(observation).encode(), None, RECEIVED)
    [part] = parsed.parts()
    assert (part.patient_no, part.identity) == ("MRN-000123", None)
    assert parsed.message_type == "Observation"
    assert parsed.message_id == "Observation/obs-1"
    assert part.events[0].value_number == 6.4
    assert part.events[0].quality_flags == ()


def test_lone_resource_named_by_server_id_only_is_kept_under_that_id_and_flagged() -> None:
    condition = {
        **with_subject(CONDITION, {"reference": "https://ehr.example/fhir/Patient/77/_history/2"}),
        "id": "c1",
        "meta": {"versionId": "3"},
    }
    parsed = parse_fhir(json.dumps(condition).encode(), None, RECEIVED)
    [part] = parsed.parts()
    assert part.patient_no == "Patient/77"
    assert "PATIENT_REFERENCE_UNRESOLVED" in part.events[0].quality_flags
    assert parsed.message_id == "Condition/c1/_history/3"


@pytest.mark.parametrize(
    "subject", [None, {"reference": "urn:uuid:p1"}, {"reference": "#p"}, {"display": "Hong"}]
)
def test_lone_resource_without_a_usable_patient_reference_is_rejected(
    subject: dict[str, Any] | None,
) -> None:
    resource = copy.deepcopy(CONDITION) if subject is None else with_subject(CONDITION, subject)
    assert rejection(json.dumps(resource).encode()) == "FHIR_PATIENT_UNRESOLVED"


def test_lone_resource_without_id_gets_its_content_hash() -> None:
    resource = with_subject(CONDITION, {"reference": "Patient/77"})
    parsed = parse_fhir(json.dumps(resource).encode(), None, RECEIVED)
    assert parsed.message_id.startswith("sha256-")


def test_unsupported_top_level_resource_is_rejected() -> None:
    for kind in ("Practitioner", "OperationOutcome", "Device"):
        raw = json.dumps({"resourceType": kind, "id": "x"}).encode()
        assert rejection(raw) == "FHIR_UNSUPPORTED_RESOURCE"


def test_consent_whose_patient_is_not_known_by_number_is_rejected() -> None:
    consent = {"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/9"}}
    assert rejection(json.dumps(consent).encode()) == "FHIR_PATIENT_UNRESOLVED"
    assert rejection(bundle(PATIENT, other_patient(), consent)) == "FHIR_PATIENT_UNRESOLVED"


@pytest.mark.parametrize(
    ("resource", "field", "code"),
    [
        (
            {
                "resourceType": "DiagnosticReport",
                "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
                "issued": "2026-02-03T10:00:00+09:00",
            },
            "2026-02-03",
            "24323-8",
        ),
        (
            {
                "resourceType": "AllergyIntolerance",
                "code": {"coding": [{"code": "227493005"}]},
                "recordedDate": "2026-02-04",
            },
            "2026-02-04",
            "227493005",
        ),
        (
            {
                "resourceType": "Immunization",
                "vaccineCode": {"coding": [{"code": "FLU"}]},
                "occurrenceDateTime": "2026-02-05",
            },
            "2026-02-05",
            "FLU",
        ),
        (
            {
                "resourceType": "ServiceRequest",
                "code": {"coding": [{"code": "B2570"}]},
                "authoredOn": "2026-02-06",
            },
            "2026-02-06",
            "B2570",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "type": {"coding": [{"code": "11506-3"}]},
                "date": "2026-02-07T09:00:00Z",
                "description": "홍길동 경과기록",
                "content": [{"attachment": {"data": "AAAA"}}],
            },
            "2026-02-07",
            "11506-3",
        ),
    ],
)
def test_more_resource_types_are_read(resource: dict[str, Any], field: str, code: str) -> None:
    (event,) = parse_fhir(bundle(PATIENT, resource), None, RECEIVED).events
    assert event.resource_type == resource["resourceType"]
    assert (str(event.event_date), event.code) == (field, code)
    assert event.value_text is None  # a DocumentReference gives metadata only


def test_partial_event_date_is_kept_without_a_day() -> None:
    condition = {**copy.deepcopy(CONDITION), "onsetDateTime": "2004"}
    (event,) = parse_fhir(bundle(PATIENT, condition), None, RECEIVED).events
    assert event.event_date is None and "EVENT_DATE_PARTIAL" in event.quality_flags


def test_patient_with_invalid_birth_date_flows_with_a_flag() -> None:
    patient = {**copy.deepcopy(PATIENT), "birthDate": "1985-02-30"}
    parsed = parse_fhir(bundle(patient, CONDITION), None, RECEIVED)
    assert parsed.identity is not None and len(parsed.events) == 1
    assert "BIRTH_DATE_INVALID" in parsed.identity.quality_flags


def test_lone_patient_gives_identity_without_events() -> None:
    raw = json.dumps(PATIENT, ensure_ascii=False).encode()
    parsed = parse_fhir(raw, "kafka-key-1", RECEIVED)
    assert parsed.message_id == "pat-1"  # Patient.id wins over the message key
    assert parsed.events == ()
    assert parsed.identity.local_patient_no == "MRN-000123"
    assert parsed.identity.rrn == "9710139019902"


def test_lone_patient_without_id_uses_the_message_key() -> None:
    patient = {k: v for k, v in PATIENT.items() if k != "id"}
    parsed = parse_fhir(json.dumps(patient).encode(), "kafka-key-1", RECEIVED)
    assert parsed.message_id == "kafka-key-1"


def test_lone_patient_without_id_or_key_is_rejected() -> None:
    patient = {k: v for k, v in PATIENT.items() if k != "id"}
    assert rejection(json.dumps(patient).encode()) == "MESSAGE_ID_MISSING"


def test_utf8_bom_is_accepted() -> None:
    raw = b"\xef\xbb\xbf" + json.dumps(PATIENT, ensure_ascii=False).encode()
    assert parse_fhir(raw, None, RECEIVED).identity.given_name == "민수"


def test_patient_without_mrn_is_rejected() -> None:
    patient = copy.deepcopy(PATIENT)
    patient["identifier"] = patient["identifier"][1:]
    assert rejection(bundle(patient, CONDITION)) == "PATIENT_NUMBER_MISSING"


def test_kcd_version_is_inferred_from_the_date_when_the_system_has_none() -> None:
    # A system without the version suffix is not KCD to this parser; a bare prefix is.
    condition = copy.deepcopy(CONDITION)
    condition["code"]["coding"] = [{"system": KCD, "code": "E11.9"}]
    (event,) = parse_fhir(bundle(PATIENT, condition), None, RECEIVED).events
    assert event.code_version == "9"  # onset 2026-02-01: KCD-9 applies since 2026-01-01
    assert "KCD_VERSION_INFERRED" in event.quality_flags
    condition["onsetDateTime"] = "2025-12-31"
    (event,) = parse_fhir(bundle(PATIENT, condition), None, RECEIVED).events
    assert event.code_version == "8"


@pytest.mark.parametrize("value", ["6.4", True, None])
def test_non_numeric_quantity_is_dropped_and_flagged(value: object) -> None:
    # D36: the event stays (as HL7 v2's OBX does).
    observation = copy.deepcopy(OBSERVATION)
    observation["valueQuantity"]["value"] = value
    (event,) = parse_fhir(bundle(PATIENT, observation), None, RECEIVED).events
    assert event.value_number is None
    assert ("OBSERVATION_VALUE_NOT_NUMERIC" in event.quality_flags) == (value is not None)


def test_invalid_event_date_is_dropped_and_flagged() -> None:
    condition = {**copy.deepcopy(CONDITION), "onsetDateTime": "2026-02-30"}
    (event,) = parse_fhir(bundle(PATIENT, condition), None, RECEIVED).events
    assert event.event_date is None and "EVENT_DATE_INVALID" in event.quality_flags


def test_patient_link_replaces_names_the_retired_patient_number() -> None:
    patient = copy.deepcopy(PATIENT)
    patient["link"] = [
        {"type": "replaces", "other": {"identifier": {"value": "MRN-000099"}}},
        {"type": "seealso", "other": {"identifier": {"value": "MRN-000777"}}},
        {"type": "replaces", "other": {"reference": "Patient/old"}},  # no identifier: unusable
    ]
    parsed = parse_fhir(bundle(patient, CONDITION), None, RECEIVED)
    assert parsed.merges == (("MRN-000123", "MRN-000099"),)
    assert parsed.message_type == "Bundle"


def test_patients_named_by_id_resolve_to_known_numbers_and_join_parts() -> None:
    from ingest.domain.fhir import resolve_patient_references

    document = bundle(
        PATIENT,
        with_subject(CONDITION, {"reference": "Patient/old-id"}),
        with_subject(OBSERVATION, {"reference": "Patient/unknown"}),
    )
    parsed = parse_fhir(document, None, RECEIVED)
    assert parsed.resource_ids == (("Patient/pat-1", "MRN-000123"),)
    assert [p.patient_no for p in parsed.parts()] == [
        "MRN-000123",
        "Patient/old-id",
        "Patient/unknown",
    ]
    known = {"Patient/old-id": "MRN-000123"}
    resolved = resolve_patient_references(parsed, known.get)
    first, second = resolved.parts()
    assert first.patient_no == "MRN-000123" and first.identity is not None
    assert [e.resource_type for e in first.events] == ["Condition"]
    assert first.events[0].quality_flags == ()
    assert second.patient_no == "Patient/unknown"
    assert "PATIENT_REFERENCE_UNRESOLVED" in second.events[0].quality_flags


def test_kd_codes_take_kr_cores_system_and_the_earlier_uri_is_read_as_it() -> None:
    for system in (
        "http://www.hl7korea.or.kr/CodeSystem/kpis-kdcode",
        "http://www.hl7korea.or.kr/CodeSystem/kd-code",
    ):
        request = {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"coding": [{"system": system, "code": "8806433031218"}]},
            "authoredOn": "2026-02-01",
        }
        (event,) = parse_fhir(bundle(PATIENT, request), None, RECEIVED).events
        assert event.code_system == "http://www.hl7korea.or.kr/CodeSystem/kpis-kdcode"
