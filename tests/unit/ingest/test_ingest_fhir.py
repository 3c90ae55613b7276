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


def test_bundle_without_id_is_rejected() -> None:
    assert rejection(bundle(PATIENT, bundle_id=None)) == "MESSAGE_ID_MISSING"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"resourceType": "Patient",}', b"\xff\xfe{}", b"{'a': 1}"],
)
def test_invalid_json_is_rejected(raw: bytes) -> None:
    assert rejection(raw) == "FHIR_INVALID_JSON"


def test_json_that_is_not_an_object_is_rejected() -> None:
    assert rejection(b"[1, 2]") == "FHIR_NOT_A_RESOURCE"


def test_two_patients_are_rejected() -> None:
    other = {**copy.deepcopy(PATIENT), "id": "pat-2"}
    assert rejection(bundle(PATIENT, other, CONDITION)) == "FHIR_BUNDLE_PATIENT_COUNT"


def test_bundle_without_patient_is_rejected() -> None:
    assert rejection(bundle(CONDITION)) == "FHIR_BUNDLE_PATIENT_COUNT"


def test_unsupported_resource_in_bundle_is_rejected() -> None:
    assert rejection(bundle(PATIENT, {"resourceType": "Practitioner"})) == (
        "FHIR_UNSUPPORTED_RESOURCE"
    )


def test_unsupported_top_level_resource_is_rejected() -> None:
    assert rejection(json.dumps(CONDITION).encode()) == "FHIR_UNSUPPORTED_RESOURCE"


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


def test_non_numeric_quantity_is_rejected() -> None:
    observation = copy.deepcopy(OBSERVATION)
    observation["valueQuantity"]["value"] = "6.4"
    assert rejection(bundle(PATIENT, observation)) == "FHIR_VALUE_INVALID"


def test_invalid_event_date_is_rejected() -> None:
    condition = {**copy.deepcopy(CONDITION), "onsetDateTime": "2026-02-30"}
    assert rejection(bundle(PATIENT, condition)) == "FHIR_DATE_INVALID"


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
