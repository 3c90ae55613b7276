"""FHIR R4 JSON (KR Core): a Bundle of any type with one or more Patients, their clinical
resources and context entries; a lone Patient; or a lone clinical resource joined to its patient
by its ``subject``/``patient`` reference (D36).

Hand-written on plain dicts over ``json.loads``: about 8x faster than validating with
fhir.resources for the same records (D-ingest-2); every check that matters to the records is made
here, each failure a stable reason code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ingest.domain.codes import (
    KCD9_SINCE,
    KCD_SYSTEM_PREFIX,
    KD_CODE_SYSTEM,
    LEGACY_KD_CODE_SYSTEM,
    kcd_flags,
    kd_code_valid,
)
from ingest.domain.identity import parse_date, validate_identity
from ingest.domain.model import (
    ClinicalEvent,
    ConsentChange,
    ParsedMessage,
    PatientIdentity,
    PatientPart,
    RawIdentity,
    Rejected,
    SkippedEntry,
)

CLINICAL_TYPES = frozenset(
    {
        "Condition",
        "Observation",
        "Encounter",
        "MedicationRequest",
        "MedicationStatement",
        "Procedure",
        "Specimen",
        "DiagnosticReport",
        "AllergyIntolerance",
        "Immunization",
        "ServiceRequest",
        "DocumentReference",
    }
)
# Entries that describe the care around the patient's records, not the patient: read past and
# counted, never an error (D36).
CONTEXT_TYPES = frozenset(
    {
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Medication",
        "Substance",
        "Device",
        "Composition",
        "MessageHeader",
        "Provenance",
        "Binary",
        "RelatedPerson",
        "Coverage",
        "EpisodeOfCare",
        "Group",
        "List",
        "OperationOutcome",
    }
)
# Resource types a skipped entry is counted under; any other is "other" (metric labels carry no
# value from a message).
SKIP_LABELS = CONTEXT_TYPES | CLINICAL_TYPES | {"Patient", "Consent", "Bundle", "Parameters"}
_GENDER = {"male": "M", "female": "F"}
# Consent.status values that are not a decision of the patient's (yet, or any more): read, and
# nothing follows from them (D32).
CONSENT_NOT_DECIDED = frozenset({"draft", "proposed", "entered-in-error"})
# provision.purpose codings of this system name the datasets a Consent is about.
DATASET_SYSTEM = "urn:biostream:dataset"
# The patient key of a patient named only by its FHIR resource id (D36): never a patient number.
RESOURCE_ID_PREFIX = "Patient/"
_PARTIAL_DATE = re.compile(r"\d{4}(-\d{2})?")


def parse_fhir(raw: bytes, fallback_message_id: str | None, received: dt.date) -> ParsedMessage:
    """D-ingest-2: a FHIR R4 Bundle, a lone Patient or a lone clinical resource read over
    ``json.loads`` by this module, not validated by fhir.resources; each failure that matters to
    the records is a reason code. D36: what a message carries is read resource by resource."""
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected("FHIR_INVALID_JSON", "the message is not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise Rejected("FHIR_NOT_A_RESOURCE", "the JSON document is not an object")
    resource_type = _text(document.get("resourceType"))
    if resource_type == "Bundle":
        return _parse_bundle(document, received)
    if resource_type == "Patient":
        message_id = _text(document.get("id")) or fallback_message_id
        if not message_id:
            raise Rejected("MESSAGE_ID_MISSING", "Patient has no id and the message no key")
        patient = _patient(document, received)
        own_id = _resource_ref(document)
        return ParsedMessage(
            message_id,
            patient,
            message_type="Patient",
            merges=_merges(document, patient.local_patient_no),
            resource_ids=((own_id, patient.local_patient_no),) if own_id else (),
        )
    if resource_type in CLINICAL_TYPES or resource_type == "Consent":
        return _parse_lone(document, resource_type)
    raise Rejected(
        "FHIR_UNSUPPORTED_RESOURCE",
        "resourceType must be Bundle, Patient, Consent or a supported clinical resource",
    )


def content_message_id(document: Mapping[str, Any]) -> str:
    """D36: the message id of a message that carries none: ``sha256-`` and the first 32 hex
    digits of SHA-256 over the document in canonical form (keys sorted, no white space), so
    a resend of the same content, however it is spaced or ordered, is the same message."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def lone_message_id(resource: Mapping[str, Any], kind: str) -> str:
    """D36: a lone clinical resource's message id: ``<type>/<id>``, with ``/_history/<versionId>``
    when ``meta.versionId`` is given (a corrected resource is a new version, hence a new
    message); without an id, the content hash."""
    resource_id = _text(resource.get("id"))
    if resource_id is None:
        return content_message_id(resource)
    version = _text(_dict(resource.get("meta")).get("versionId"))
    return f"{kind}/{resource_id}" + (f"/_history/{version}" if version else "")


def _parse_lone(resource: Mapping[str, Any], kind: str) -> ParsedMessage:
    """D36: a clinical resource (or a Consent) on its own, as a Bulk Data export or a REST
    ``POST`` sends it. Its patient is the one its ``subject``/``patient`` reference names: by the
    reference's patient-number identifier (the records join that patient exactly), else by a
    ``Patient/<id>`` reference (kept under that id's ref, flagged PATIENT_REFERENCE_UNRESOLVED);
    with neither it has no usable patient and is rejected (FHIR_PATIENT_UNRESOLVED)."""
    number, flags = _referenced_patient(resource)
    if kind == "Consent" and flags:
        number = None  # a consent must be applied to its patient, never parked (D32, D36)
    if number is None:
        raise Rejected(
            "FHIR_PATIENT_UNRESOLVED",
            f"{kind}.subject/patient names no patient by identifier or Patient/<id> reference",
        )
    if kind == "Consent":
        change = _consent(resource, 0)
        part = PatientPart(number, consents=(change,) if change is not None else ())
    else:
        event = _clinical(kind, resource, 0)
        if flags:
            event = _with_flags(event, flags)
        part = PatientPart(number, events=(event,))
    return ParsedMessage.of_parts(lone_message_id(resource, kind), [part], message_type=kind)


def _with_flags(event: ClinicalEvent, flags: tuple[str, ...]) -> ClinicalEvent:
    merged = tuple(dict.fromkeys((*event.quality_flags, *flags)))
    return ClinicalEvent(
        resource_type=event.resource_type,
        event_date=event.event_date,
        code_system=event.code_system,
        code=event.code,
        code_version=event.code_version,
        value_number=event.value_number,
        value_unit=event.value_unit,
        value_text=event.value_text,
        specimen_refs=event.specimen_refs,
        quality_flags=merged,
    )


def _subject(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(resource.get("subject") or resource.get("patient"))


def _referenced_patient(resource: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """D36: the patient key a reference names outside its message: the patient number of its
    ``identifier`` (typed MR or a patient-id system), else ``Patient/<id>`` of a literal
    reference (flagged: no identity record is ever keyed so; see D36)."""
    subject = _subject(resource)
    number = _patient_number(_dict(subject.get("identifier")))
    if number is not None:
        return number, ()
    literal = _literal_patient(subject)
    if literal is not None:
        return literal, ("PATIENT_REFERENCE_UNRESOLVED",)
    return None, ()


def _literal_patient(subject: Mapping[str, Any]) -> str | None:
    """``Patient/<id>`` of a relative or absolute literal reference (``.../_history/n`` dropped);
    None for ``urn:uuid:``, ``#contained`` or any other kind."""
    reference = _text(subject.get("reference"))
    if not reference:
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return RESOURCE_ID_PREFIX + parts[-1]
    return None


def _patient_number(identifier: Mapping[str, Any]) -> str | None:
    """D-ingest-3: an identifier is a patient number when typed ``MR`` or of a ``/patient-id``
    or ``/mrn`` system."""
    system = _text(identifier.get("system")) or ""
    codes = {_text(c.get("code")) for c in _list(_dict(identifier.get("type")).get("coding"))}
    if "MR" in codes or system.endswith(("/patient-id", "/mrn")):
        return _text(identifier.get("value"))
    return None


def _bundle_message_id(bundle: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """D36: ``Bundle.id``, else ``Bundle.identifier.value`` (FHIR's persistent id of a Bundle),
    else the content hash (flagged MESSAGE_ID_FROM_CONTENT): FHIR does not require a Bundle id."""
    bundle_id = _text(bundle.get("id"))
    if bundle_id:
        return bundle_id, ()
    identifier = _text(_dict(bundle.get("identifier")).get("value"))
    if identifier:
        return identifier, ()
    return content_message_id(bundle), ("MESSAGE_ID_FROM_CONTENT",)


def _skip_label(kind: object) -> str:
    return kind if isinstance(kind, str) and kind in SKIP_LABELS else "other"


def _parse_bundle(bundle: Mapping[str, Any], received: dt.date) -> ParsedMessage:
    """D36: a Bundle of any type (collection, searchset, transaction, batch, document, message):
    each Patient entry with a patient number is a patient of the message; each clinical entry
    joins the patient its reference names (the Bundle's own by ``fullUrl``, ``Patient/<id>`` or
    patient number; the only Patient when it names none), or, outside the Bundle, as a lone
    resource does; context entries (Organization, Practitioner, Location ...) and entries of
    other types are skipped and counted, never an error. Rejected only when nothing in it is
    usable, with the reason of the first unusable Patient if there is one."""
    message_id, flags = _bundle_message_id(bundle)
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise Rejected("FHIR_BUNDLE_EMPTY", "Bundle.entry is missing or not a list")
    skipped: list[SkippedEntry] = []
    resources: list[tuple[int, Mapping[str, Any], str | None]] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            skipped.append(SkippedEntry("other", "NO_RESOURCE"))  # e.g. a DELETE request
            continue
        resources.append((index, resource, _text(entry.get("fullUrl"))))

    parts: dict[str, _Part] = {}
    keys: dict[str, str] = {}  # fullUrl, Patient/<id> and patient number -> patient number
    resource_ids: dict[str, str] = {}  # Patient/<id> -> patient number
    first_refusal: Rejected | None = None
    for _index, resource, full_url in resources:
        if resource.get("resourceType") != "Patient":
            continue
        try:
            identity = _patient(resource, received)
        except Rejected as rejected:
            first_refusal = first_refusal or rejected
            skipped.append(SkippedEntry("Patient", rejected.reason_code))
            continue
        number = identity.local_patient_no
        part = parts.setdefault(number, _Part(number))
        if part.identity is None:
            part.identity = identity
            part.merges.extend(_merges(resource, number))
        own_id = _resource_ref(resource)
        if own_id:
            resource_ids.setdefault(own_id, number)
        for key in (full_url, own_id, number):
            if key:
                keys.setdefault(key, number)
    sole = next(iter(parts)) if len(parts) == 1 else None
    for index, resource, _full_url in resources:
        kind = _text(resource.get("resourceType"))
        if kind == "Patient":
            continue
        if kind not in CLINICAL_TYPES and kind != "Consent":
            reason = "CONTEXT" if kind in CONTEXT_TYPES else "UNSUPPORTED"
            skipped.append(SkippedEntry(_skip_label(kind), reason))
            continue
        found, ref_flags = _entry_patient(resource, keys, sole)
        if found is None:
            skipped.append(SkippedEntry(_skip_label(kind), "PATIENT_UNRESOLVED"))
            continue
        if kind == "Consent" and ref_flags:
            # A consent names its patient by patient number or is not applied: a withdrawal
            # parked under an unresolved ref would look applied and be none (D32, D36).
            raise Rejected(
                "FHIR_PATIENT_UNRESOLVED",
                f"entry {index}: Consent.patient names no patient of the Bundle or by identifier",
            )
        part = parts.setdefault(found, _Part(found))
        if kind == "Consent":
            change = _consent(resource, index)
            if change is not None:
                part.consents.append(change)
            continue
        event = _clinical(kind, resource, index)
        part.events.append(_with_flags(event, ref_flags) if ref_flags else event)
    usable = [p.frozen() for p in parts.values() if p.identity or p.events or p.consents]
    if not usable:
        if first_refusal is not None:
            raise first_refusal
        raise Rejected(
            "FHIR_BUNDLE_EMPTY", "the Bundle holds no Patient and no clinical entry ingest can use"
        )
    return ParsedMessage.of_parts(
        message_id,
        usable,
        message_type="Bundle",
        skipped=tuple(skipped),
        flags=flags,
        resource_ids=tuple(resource_ids.items()),
    )


def resolve_patient_references(
    parsed: ParsedMessage, number_of: Callable[[str], str | None]
) -> ParsedMessage:
    """D36: a patient named only by ``Patient/<id>`` whose Patient ingest has read before (in
    any message of the hospital, ``number_of`` answers from ingest's state) is that patient: its
    records take the patient number's ref and lose PATIENT_REFERENCE_UNRESOLVED. Parts that
    come to name the same patient are joined, in order. Patients not read before stay as they
    are (kept under the unresolved ref)."""
    parts = parsed.parts()
    if not any(p.patient_no.startswith(RESOURCE_ID_PREFIX) for p in parts):
        return parsed
    joined: dict[str, PatientPart] = {}
    for part in parts:
        number = part.patient_no
        events = part.events
        if number.startswith(RESOURCE_ID_PREFIX) and (known := number_of(number)) is not None:
            number = known
            events = tuple(_without_flag(e, "PATIENT_REFERENCE_UNRESOLVED") for e in events)
        before = joined.get(number)
        joined[number] = (
            PatientPart(number, part.identity, events, part.merges, part.consents)
            if before is None
            else PatientPart(
                number,
                before.identity or part.identity,
                before.events + events,
                before.merges + part.merges,
                before.consents + part.consents,
            )
        )
    return ParsedMessage.of_parts(
        parsed.message_id,
        list(joined.values()),
        parsed.message_type,
        skipped=parsed.skipped,
        flags=parsed.flags,
        resource_ids=parsed.resource_ids,
    )


def _without_flag(event: ClinicalEvent, flag: str) -> ClinicalEvent:
    return dataclasses.replace(
        event, quality_flags=tuple(f for f in event.quality_flags if f != flag)
    )


def _resource_ref(resource: Mapping[str, Any]) -> str | None:
    resource_id = _text(resource.get("id"))
    return f"Patient/{resource_id}" if resource_id else None


def _entry_patient(
    resource: Mapping[str, Any], keys: Mapping[str, str], sole: str | None
) -> tuple[str | None, tuple[str, ...]]:
    subject = _subject(resource)
    if not subject:
        return sole, ()
    reference = _text(subject.get("reference"))
    literal = _literal_patient(subject)
    number = _patient_number(_dict(subject.get("identifier")))
    for key in (reference, literal, number):
        if key and key in keys:
            return keys[key], ()
    if reference and (reference.startswith(("urn:", "#"))) and sole is not None:
        return sole, ()
    return _referenced_patient(resource)


class _Part:
    """A patient of a Bundle while it is being read."""

    def __init__(self, number: str) -> None:
        self.number = number
        self.identity: PatientIdentity | None = None
        self.events: list[ClinicalEvent] = []
        self.merges: list[tuple[str, str]] = []
        self.consents: list[ConsentChange] = []

    def frozen(self) -> PatientPart:
        return PatientPart(
            self.number,
            self.identity,
            tuple(self.events),
            tuple(self.merges),
            tuple(self.consents),
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
        if _patient_number(identifier) is not None:
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
    """One clinical resource as an event: its code (a KCD coding first), date, value and
    specimen references. D36: a DocumentReference gives its metadata only (type and date), never
    its content, description or attachments."""
    flags: list[str] = []
    concept = _dict(
        resource.get("code")
        or resource.get("medicationCodeableConcept")
        or _contained_code(resource, resource.get("medicationReference"))
        or resource.get("vaccineCode")
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
    if system == LEGACY_KD_CODE_SYSTEM:
        system = KD_CODE_SYSTEM
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
                        "occurrenceDateTime",
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
        or _text(_dict(_dict(resource.get("context")).get("period")).get("start"))
        # When it was reported or recorded, if nothing says when it happened.
        or _text(resource.get("issued"))
        or _text(resource.get("dateAsserted"))
        or _text(resource.get("date"))
    )
    event_date = None
    if date_text and _PARTIAL_DATE.fullmatch(date_text):
        # FHIR allows a year or a year and month; the event keeps no day it was not given.
        flags.append("EVENT_DATE_PARTIAL")
    elif date_text:
        try:
            event_date = parse_date(date_text[:10], "date")
        except Rejected:
            # D36: as in HL7 v2 (D7), an unreadable event date is dropped and flagged; the
            # event is kept.
            flags.append("EVENT_DATE_INVALID")
    if system and system.startswith(KCD_SYSTEM_PREFIX):
        version = version or system.removeprefix(KCD_SYSTEM_PREFIX) or None
        if not version:
            version = "9" if event_date and event_date >= KCD9_SINCE else "8"
            flags.append("KCD_VERSION_INFERRED")
    quantity = _dict(resource.get("valueQuantity"))
    value_number = quantity.get("value")
    if value_number is not None and (
        isinstance(value_number, bool)
        or not isinstance(value_number, (int, float))
        or value_number != value_number  # NaN is no measurement
    ):
        # D36: as in HL7 v2, a value that is no number is dropped and flagged, the event kept.
        value_number = None
        flags.append("OBSERVATION_VALUE_NOT_NUMERIC")
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
        value_text=_text(resource.get("valueString")) if kind == "Observation" else None,
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
