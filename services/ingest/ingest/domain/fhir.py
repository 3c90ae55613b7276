"""FHIR R4 JSON (KR Core): a Bundle of one Patient and its clinical resources, or a lone Patient.

Hand-written on plain dicts over ``json.loads``: about 8x faster than validating with
fhir.resources for the same records (D-ingest-2); every check that matters to the records is made
here, each failure a stable reason code.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ingest.domain.codes import (
    KCD9_SINCE,
    KCD_SYSTEM_PREFIX,
    KD_CODE_SYSTEM,
    kcd_flags,
    kd_code_valid,
)
from ingest.domain.identity import parse_date, validate_identity
from ingest.domain.model import (
    ClinicalEvent,
    ConsentChange,
    ParsedMessage,
    PatientIdentity,
    RawIdentity,
    Rejected,
)

CLINICAL_TYPES = frozenset(
    {"Condition", "Observation", "Encounter", "MedicationRequest", "Procedure", "Specimen"}
)
_GENDER = {"male": "M", "female": "F"}
# Consent.status values that are not a decision of the patient's (yet, or any more): read, and
# nothing follows from them (D32).
CONSENT_NOT_DECIDED = frozenset({"draft", "proposed", "entered-in-error"})
# provision.purpose codings of this system name the datasets a Consent is about.
DATASET_SYSTEM = "urn:biostream:dataset"


def parse_fhir(raw: bytes, fallback_message_id: str | None, received: dt.date) -> ParsedMessage:
    """D-ingest-2: a FHIR R4 Bundle (or a lone Patient) read over ``json.loads`` by this module,
    not validated by fhir.resources; each failure that matters to the records is a reason code."""
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected("FHIR_INVALID_JSON", "the message is not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise Rejected("FHIR_NOT_A_RESOURCE", "the JSON document is not an object")
    resource_type = document.get("resourceType")
    if resource_type == "Bundle":
        return _parse_bundle(document, received)
    if resource_type == "Patient":
        message_id = _text(document.get("id")) or fallback_message_id
        if not message_id:
            raise Rejected("MESSAGE_ID_MISSING", "Patient has no id and the message no key")
        patient = _patient(document, received)
        return ParsedMessage(
            message_id,
            patient,
            message_type="Patient",
            merges=_merges(document, patient.local_patient_no),
        )
    raise Rejected("FHIR_UNSUPPORTED_RESOURCE", "resourceType must be Bundle or Patient")


def _parse_bundle(bundle: Mapping[str, Any], received: dt.date) -> ParsedMessage:
    message_id = _text(bundle.get("id"))
    if not message_id:
        raise Rejected("MESSAGE_ID_MISSING", "Bundle.id is missing")
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise Rejected("FHIR_BUNDLE_EMPTY", "Bundle.entry is missing or not a list")
    resources = [e.get("resource") for e in entries if isinstance(e, dict)]
    patients = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise Rejected(
            "FHIR_BUNDLE_PATIENT_COUNT", f"Bundle has {len(patients)} Patient entries, expected 1"
        )
    identity = _patient(patients[0], received)
    events: list[ClinicalEvent] = []
    consents: list[ConsentChange] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict) or resource is patients[0]:
            continue
        kind = resource.get("resourceType")
        if kind == "Consent":
            change = _consent(resource, index)
            if change is not None:
                consents.append(change)
            continue
        if kind not in CLINICAL_TYPES:
            raise Rejected(
                "FHIR_UNSUPPORTED_RESOURCE", f"entry {index} has an unsupported resourceType"
            )
        events.append(_clinical(kind, resource, index))
    return ParsedMessage(
        message_id,
        identity,
        tuple(events),
        message_type="Bundle",
        merges=_merges(patients[0], identity.local_patient_no),
        consents=tuple(consents),
    )


def _consent(resource: Mapping[str, Any], index: int) -> ConsentChange | None:
    """D32: a FHIR R4 ``Consent`` in a Bundle is the consent of the Bundle's Patient. ``active``
    with ``provision.type`` ``permit`` (or none) grants; ``active`` with ``deny``, ``inactive``
    and ``rejected`` withdraw; ``draft``, ``proposed`` and ``entered-in-error`` decide nothing
    and give no event; any other status rejects the message (FHIR_CONSENT_INVALID), since a
    misread withdrawal would release a person's data. Datasets: ``provision.purpose`` codings of
    the system ``urn:biostream:dataset``; none named means every dataset. ``dateTime`` is when it
    was recorded."""
    status = _text(resource.get("status"))
    if status in CONSENT_NOT_DECIDED:
        return None
    provision = _dict(resource.get("provision"))
    provision_type = _text(provision.get("type"))
    if status not in ("active", "inactive", "rejected") or provision_type not in (
        None, "permit", "deny"
    ):  # fmt: skip
        raise Rejected(
            "FHIR_CONSENT_INVALID",
            f"entry {index}: Consent.status or provision.type is not one ingest reads",
        )
    granted = status == "active" and provision_type != "deny"
    datasets = tuple(
        dict.fromkeys(
            code
            for coding in _list(provision.get("purpose"))
            if _text(coding.get("system")) == DATASET_SYSTEM and (code := _text(coding.get("code")))
        )
    )
    recorded_at = None
    when = _text(resource.get("dateTime"))
    if when:
        try:
            recorded_at = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected(
                "FHIR_DATE_INVALID", f"entry {index}: Consent.dateTime is not a date-time"
            ) from None
        if recorded_at.tzinfo is None:
            recorded_at = recorded_at.replace(tzinfo=dt.UTC)
    return ConsentChange("GRANTED" if granted else "WITHDRAWN", datasets, recorded_at)


def _patient(patient: Mapping[str, Any], received: dt.date) -> PatientIdentity:
    """The Patient's identity. D-ingest-3: the patient number only from an identifier typed ``MR``
    or with a ``/patient-id`` or ``/mrn`` system; an untyped identifier is not guessed at."""
    mrn = rrn = None
    for identifier in _list(patient.get("identifier")):
        system = _text(identifier.get("system")) or ""
        codes = {_text(c.get("code")) for c in _list(_dict(identifier.get("type")).get("coding"))}
        value = _text(identifier.get("value"))
        if "MR" in codes or system.endswith(("/patient-id", "/mrn")):
            mrn = mrn or value
        elif "RRN" in codes or "NNKOR" in codes or system.endswith("/rrn"):
            rrn = rrn or value
    family = given = full = latin = None
    for name in _list(patient.get("name")):
        text = _text(name.get("text"))
        name_family = _text(name.get("family"))
        name_given = " ".join(_strings(name.get("given"))) or None
        candidate = text or " ".join(p for p in (name_family, name_given) if p)
        if candidate and candidate.isascii():
            latin = latin or candidate
        elif family is None and given is None and full is None:
            family, given, full = name_family, name_given, text
    phone = next(
        (
            _text(t.get("value"))
            for t in _list(patient.get("telecom"))
            if t.get("system") == "phone"
        ),
        None,
    )
    address = postal = None
    for entry in _list(patient.get("address"))[:1]:
        lines = _strings(entry.get("line"))
        parts = [_text(entry.get(k)) for k in ("state", "city", "district")]
        address = _text(entry.get("text")) or " ".join(p for p in [*parts, *lines] if p) or None
        postal = _text(entry.get("postalCode"))
    raw = RawIdentity(
        local_patient_no=mrn,
        family_name=family,
        given_name=given,
        full_name=full,
        name_latin=latin,
        birth_date=_text(patient.get("birthDate")),
        sex=_GENDER.get(_text(patient.get("gender")) or "", "U"),
        rrn=rrn,
        phone=phone,
        address=address,
        postal_code=postal,
    )
    return validate_identity(raw, received)


def _merges(patient: Mapping[str, Any], surviving: str) -> tuple[tuple[str, str], ...]:
    """D-ingest-4: ``Patient.link`` of type ``replaces`` naming the retired record by
    identifier: the hospital merged that record into this one (the FHIR counterpart of HL7
    ADT^A40)."""
    retired: list[str] = []
    for link in _list(patient.get("link")):
        if link.get("type") != "replaces":
            continue
        value = _text(_dict(_dict(link.get("other")).get("identifier")).get("value"))
        if value and value != surviving and value not in retired:
            retired.append(value)
    return tuple((surviving, number) for number in retired)


def _clinical(kind: str, resource: Mapping[str, Any], index: int) -> ClinicalEvent:
    flags: list[str] = []
    concept = _dict(
        resource.get("code")
        or resource.get("medicationCodeableConcept")
        or _contained_code(resource, resource.get("medicationReference"))
        or resource.get("type")
    )
    if kind == "Encounter":
        concept = {"coding": [_dict(resource.get("class"))]}
    codings = [c for c in _list(concept.get("coding")) if isinstance(c, dict)]
    coding = next(
        (c for c in codings if (_text(c.get("system")) or "").startswith(KCD_SYSTEM_PREFIX)), None
    )
    coding = coding or (codings[0] if codings else {})
    system = _text(coding.get("system"))
    version = _text(coding.get("version"))
    date_text = (
        next(
            (
                value
                for value in (
                    _text(resource.get(k))
                    for k in (
                        "onsetDateTime",
                        "recordedDate",
                        "effectiveDateTime",
                        "authoredOn",
                        "performedDateTime",
                    )
                )
                if value
            ),
            None,
        )
        or _text(_dict(resource.get("period")).get("start"))
        or _text(_dict(resource.get("effectivePeriod")).get("start"))
        or _text(_dict(resource.get("performedPeriod")).get("start"))
        or _text(_dict(resource.get("collection")).get("collectedDateTime"))
    )
    event_date = None
    if date_text:
        try:
            event_date = parse_date(date_text[:10], "date")
        except Rejected:
            # One stable code for every entry; the message names the entry.
            raise Rejected(
                "FHIR_DATE_INVALID", f"entry {index}: date is not a calendar date"
            ) from None
    if system and system.startswith(KCD_SYSTEM_PREFIX):
        version = version or system.removeprefix(KCD_SYSTEM_PREFIX) or None
        if not version:
            version = "9" if event_date and event_date >= KCD9_SINCE else "8"
            flags.append("KCD_VERSION_INFERRED")
    quantity = _dict(resource.get("valueQuantity"))
    value_number = quantity.get("value")
    if value_number is not None and not isinstance(value_number, (int, float)):
        raise Rejected("FHIR_VALUE_INVALID", f"entry {index} valueQuantity.value is not a number")
    specimen_refs: tuple[str, ...] = ()
    if kind == "Specimen":
        identifiers = [
            *_list(resource.get("identifier")),
            _dict(resource.get("accessionIdentifier")),
        ]
        specimen_refs = tuple(
            dict.fromkeys(v for v in (_text(i.get("value")) for i in identifiers) if v)
        )
    code = _text(coding.get("code"))
    if code and system and system.startswith(KCD_SYSTEM_PREFIX):
        flags += kcd_flags(code)
    if code and system == KD_CODE_SYSTEM and not kd_code_valid(code):
        flags.append("KD_CODE_INVALID")
    return ClinicalEvent(
        resource_type=kind,
        event_date=event_date,
        code_system=system,
        code=code,
        code_version=version,
        value_number=float(value_number) if value_number is not None else None,
        value_unit=_text(quantity.get("unit")),
        value_text=_text(resource.get("valueString")),
        specimen_refs=specimen_refs,
        quality_flags=tuple(flags),
    )


def _contained_code(resource: Mapping[str, Any], reference: object) -> object:
    """``medicationReference: {"reference": "#med1"}`` points into ``contained``."""
    target = _text(_dict(reference).get("reference"))
    if not target or not target.startswith("#"):
        return None
    for item in _list(resource.get("contained")):
        if item.get("id") == target[1:]:
            return item.get("code")
    return None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _list(value: object) -> list[Any]:
    """The JSON objects of a list; anything else in it is ignored, as FHIR lists hold objects."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
