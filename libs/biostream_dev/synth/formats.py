"""Wire formats of the synthetic feed: FHIR R4 Bundles (``fhir.ndjson``) and CSV rows (``visits.csv``).

Decisions (also in README.md next to this file):

* Every FHIR message is a ``Bundle`` of type ``collection`` -- visits and identity-only updates alike.
  ``Bundle.id`` is the hospital's message id (``H001-F-000123``), ``Bundle.timestamp`` when it was
  assembled, ``Bundle.meta.source`` the sending hospital's base URI. The single ``Patient`` entry has
  ``fullUrl = urn:uuid:<Patient.id>``; ``Patient.id`` is stable for that patient at that hospital
  across messages. Clinical entries point at it through ``subject.reference``.
* The MRN is ``Patient.identifier`` with type ``v2-0203#MR`` and system
  ``http://<hospital code lowercased>.example.kr/patient-id``; the RRN (when sent) has type
  ``v2-0203#NNKOR`` and system :data:`RRN_SYSTEM`. KR Core defines no NamingSystem for RRNs (their
  processing is restricted by law), so the URI is ours, shaped like HL7 Korea's
  ``http://www.hl7korea.or.kr/Identifier/hira-krnpi``.
* CSV: one row per visit, exactly :data:`CSV_COLUMNS`, UTF-8, ``\\n`` line ends, header row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from biostream_dev.synth.clinical import LabResult, Visit
from biostream_dev.synth.corruption import LatinName
from biostream_dev.synth.people import Address, province_by_code
from biostream_dev.synth.reference import Sex

Format = Literal["fhir", "csv"]
MessageKind = Literal["visit", "identity_update"]
PhoneStyle = Literal["dashed", "digits", "intl"]
ProvinceNames = Literal["official", "legacy", "short"]

RRN_SYSTEM: Final = "http://www.hl7korea.or.kr/Identifier/rrn"
MRN_SYSTEM_TEMPLATE: Final = "http://{code}.example.kr/patient-id"
HOSPITAL_SOURCE_TEMPLATE: Final = "http://{code}.example.kr"
IDENTIFIER_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN_TYPE_CODE: Final = "MR"
RRN_TYPE_CODE: Final = "NNKOR"
KCD_SYSTEMS: Final[dict[str, str]] = {
    "8": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8",
    "9": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9",
}
LOINC_SYSTEM: Final = "http://loinc.org"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"
KRCORE_PATIENT_PROFILE: Final = (
    "http://www.hl7korea.or.kr/fhir/krcore/StructureDefinition/krcore-patient"
)
ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "message_id", "patient_no", "family_name", "given_name", "birth_date", "sex", "rrn", "phone",
    "address", "postal_code", "visit_date", "kcd_code", "kcd_version", "lab_loinc", "lab_value",
    "lab_unit",
)  # fmt: skip

FHIR_FILE: Final = "fhir.ndjson"
CSV_FILE: Final = "visits.csv"

_CLASS_DISPLAY: Final = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}


def mrn_system(hospital_code: str) -> str:
    return MRN_SYSTEM_TEMPLATE.format(code=hospital_code.lower())


def hospital_source(hospital_code: str) -> str:
    return HOSPITAL_SOURCE_TEMPLATE.format(code=hospital_code.lower())


class HospitalProfile(BaseModel):
    """How one hospital writes its feed (documented in the manifest)."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    weight: float  # relative number of patients
    fhir_share: float  # share of its patients sent as FHIR, the rest as CSV
    phone_style: PhoneStyle
    province_names: ProvinceNames  # spelling of the 시도 in addresses
    kcd_dotless_csv: bool  # CSV writes E119 for E11.9, as claims data does
    latin_name_rate: float  # FHIR patients that also carry a Latin name
    mrn_system: str
    source: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The identity exactly as written in one message."""

    family: str
    given: str
    korean_name: bool
    sex: Sex
    birth_date: date
    rrn: str | None
    phone: str | None
    address: Address | None
    latin: LatinName | None

    @property
    def full_name(self) -> str:
        return self.family + self.given if self.korean_name else f"{self.family} {self.given}"


def format_phone(phone: str, style: PhoneStyle) -> str:
    if style == "digits":
        return phone.replace("-", "")
    if style == "intl":
        return "+82-" + phone[1:]
    return phone


def state_name(address: Address, style: ProvinceNames) -> str:
    province = province_by_code(address.province_code)
    if style == "legacy" and province.legacy_name:
        return province.legacy_name
    if style == "short":
        return province.short
    return address.state


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# FHIR
# --------------------------------------------------------------------------------------------------


def patient_resource(
    profile: HospitalProfile, identity: Snapshot, *, patient_id: str, mrn: str
) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": MRN_TYPE_CODE}]},
            "system": profile.mrn_system,
            "value": mrn,
        }
    ]
    if identity.rrn is not None:
        identifiers.append(
            {
                "use": "official",
                "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": RRN_TYPE_CODE}]},
                "system": RRN_SYSTEM,
                "value": identity.rrn,
            }
        )
    names: list[dict[str, Any]] = [
        {
            "use": "official",
            "text": identity.full_name,
            "family": identity.family,
            "given": [identity.given],
        }
    ]
    if identity.latin is not None:
        names.append(
            {
                "use": "usual",
                "text": identity.latin.text,
                "family": identity.latin.family,
                "given": [identity.latin.given],
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"profile": [KRCORE_PATIENT_PROFILE]},
        "identifier": identifiers,
        "name": names,
        "gender": "male" if identity.sex == "M" else "female",
        "birthDate": identity.birth_date.isoformat(),
    }
    if identity.phone is not None:
        resource["telecom"] = [
            {
                "system": "phone",
                "value": format_phone(identity.phone, profile.phone_style),
                "use": "mobile",
            }
        ]
    if identity.address is not None:
        resource["address"] = [fhir_address(identity.address, profile.province_names)]
    return resource


def fhir_address(address: Address, style: ProvinceNames) -> dict[str, Any]:
    state = state_name(address, style)
    result: dict[str, Any] = {
        "use": "home",
        "text": address.text(state),
        "line": [address.street] + ([address.detail] if address.detail else []),
        "city": address.city or state,
    }
    if address.district:
        result["district"] = address.district
    result["state"] = state
    result["postalCode"] = address.postal_code
    result["country"] = "KR"
    return result


def _quantity(lab: LabResult) -> dict[str, Any]:
    value: float | int = lab.value if lab.test.decimals else round(lab.value)
    return {"value": value, "unit": lab.test.unit, "system": UCUM_SYSTEM, "code": lab.test.unit}


def clinical_entries(visit: Visit, patient_ref: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    subject = {"reference": patient_ref}
    encounter_ref: dict[str, str] | None = None
    if visit.encounter_id is not None:
        encounter_ref = {"reference": f"urn:uuid:{visit.encounter_id}"}
        encounter = {
            "resourceType": "Encounter",
            "id": visit.encounter_id,
            "status": "finished",
            "class": {
                "system": ACT_CODE_SYSTEM,
                "code": visit.encounter_class,
                "display": _CLASS_DISPLAY[visit.encounter_class],
            },
            "subject": subject,
            "period": {"start": _ts(visit.start), "end": _ts(visit.end)},
        }
        entries.append({"fullUrl": encounter_ref["reference"], "resource": encounter})
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "id": visit.condition_id,
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": "active"}]},
        "verificationStatus": {
            "coding": [{"system": CONDITION_VER_STATUS_SYSTEM, "code": "confirmed"}]
        },
        "category": [
            {"coding": [{"system": CONDITION_CATEGORY_SYSTEM, "code": "encounter-diagnosis"}]}
        ],
        "code": {
            "coding": [
                {
                    "system": KCD_SYSTEMS[visit.kcd_version],
                    "code": visit.diagnosis.code,
                    "display": visit.diagnosis.display,
                }
            ]
        },
        "subject": subject,
    }
    if encounter_ref:
        condition["encounter"] = encounter_ref
    condition["onsetDateTime"] = _ts(visit.onset)
    condition["recordedDate"] = visit.start.date().isoformat()
    entries.append({"fullUrl": f"urn:uuid:{visit.condition_id}", "resource": condition})
    for lab in visit.labs:
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": lab.resource_id,
            "status": "final",
            "category": [
                {"coding": [{"system": OBSERVATION_CATEGORY_SYSTEM, "code": "laboratory"}]}
            ],
            "code": {
                "coding": [
                    {"system": LOINC_SYSTEM, "code": lab.test.loinc, "display": lab.test.display}
                ]
            },
            "subject": subject,
        }
        if encounter_ref:
            observation["encounter"] = encounter_ref
        observation["effectiveDateTime"] = _ts(lab.effective)
        observation["valueQuantity"] = _quantity(lab)
        entries.append({"fullUrl": f"urn:uuid:{lab.resource_id}", "resource": observation})
    return entries


def bundle(
    profile: HospitalProfile,
    *,
    message_id: str,
    timestamp: datetime,
    identity: Snapshot,
    patient_id: str,
    mrn: str,
    visit: Visit | None,
) -> dict[str, Any]:
    patient_ref = f"urn:uuid:{patient_id}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_ref,
            "resource": patient_resource(profile, identity, patient_id=patient_id, mrn=mrn),
        }
    ]
    if visit is not None:
        entries.extend(clinical_entries(visit, patient_ref))
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "meta": {"source": profile.source},
        "type": "collection",
        "timestamp": _ts(timestamp),
        "entry": entries,
    }


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------


def csv_row(
    profile: HospitalProfile, *, message_id: str, identity: Snapshot, mrn: str, visit: Visit
) -> list[str]:
    address = identity.address
    lab = visit.labs[0] if visit.labs else None
    code = visit.diagnosis.code
    if profile.kcd_dotless_csv:
        code = code.replace(".", "")
    return [
        message_id,
        mrn,
        identity.family,
        identity.given,
        identity.birth_date.isoformat(),
        identity.sex,
        identity.rrn or "",
        format_phone(identity.phone, profile.phone_style) if identity.phone else "",
        address.text(state_name(address, profile.province_names)) if address else "",
        address.postal_code if address else "",
        visit.start.date().isoformat(),
        code,
        visit.kcd_version,
        lab.test.loinc if lab else "",
        lab.value_text if lab else "",
        lab.test.unit if lab else "",
    ]
