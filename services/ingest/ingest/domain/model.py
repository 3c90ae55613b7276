"""What ingest makes of one hospital message, before it is put on the wire."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


class Rejected(Exception):
    """The message cannot become records. ``message`` names fields and positions, never values."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True, slots=True)
class RawIdentity:
    """Identity fields as the source gave them, before validation."""

    local_patient_no: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    full_name: str | None = None
    name_latin: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    rrn: str | None = None
    phone: str | None = None
    address: str | None = None
    postal_code: str | None = None
    province_code: str | None = None


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    local_patient_no: str
    family_name: str | None
    given_name: str | None
    name_latin: str | None
    birth_date: dt.date | None
    sex: str
    rrn: str | None
    phone: str | None
    address: str | None
    postal_code: str | None
    province_code: str | None
    quality_flags: tuple[str, ...]
    # The fields as the source gave them: what the free-text scrub also removes (D24c) when
    # validation dropped or rewrote a value (a mistyped registration number, a foreign phone).
    source: RawIdentity | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ClinicalEvent:
    resource_type: str
    event_date: dt.date | None = None
    code_system: str | None = None
    code: str | None = None
    code_version: str | None = None
    value_number: float | None = None
    value_unit: str | None = None
    value_text: str | None = None
    specimen_refs: tuple[str, ...] = ()
    quality_flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A FHIR ``Consent`` of the message's patient (D32): granted or withdrawn, for every
    dataset (empty) or the ones named, recorded at the resource's time if it gives one."""

    kind: str  # "GRANTED" or "WITHDRAWN"
    datasets: tuple[str, ...] = ()
    recorded_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PatientPart:
    """What one message says about one of its patients (D36): the hospital's key of that
    patient (its patient number, or ``Patient/<id>`` when the hospital names it only by its FHIR
    resource id), the identity if the message carries one, and the patient's events, merges and
    consents."""

    patient_no: str
    identity: PatientIdentity | None = None
    events: tuple[ClinicalEvent, ...] = ()
    merges: tuple[tuple[str, str], ...] = ()
    consents: tuple[ConsentChange, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A part of a message that ingest read and did not use (D36): a FHIR entry that is context
    (Organization, Practitioner, Location ...) or of a type ingest does not read, or whose
    patient cannot be found. ``resource_type`` is a name from ``SKIP_LABELS`` or ``other``."""

    resource_type: str
    reason: str  # CONTEXT, UNSUPPORTED, PATIENT_UNRESOLVED, NO_RESOURCE


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One hospital message. ``identity`` is None for a merge notice (HL7 ADT^A40) or for clinical
    content whose patient's identity comes in another message (D36: then ``patient_no`` names the
    patient). ``merges`` are the hospital's own record merges as (surviving, retired) patient
    numbers. The fields describe the message's first patient; ``more`` holds the others (a Bundle
    or an HL7 batch with several patients, D36). ``skipped`` counts what was read and not used,
    ``flags`` are message-level data-quality flags (e.g. ``MESSAGE_ID_FROM_CONTENT``)."""

    message_id: str
    identity: PatientIdentity | None
    events: tuple[ClinicalEvent, ...] = field(default_factory=tuple)
    message_type: str = "unknown"
    merges: tuple[tuple[str, str], ...] = ()
    consents: tuple[ConsentChange, ...] = ()
    patient_no: str | None = None
    more: tuple[PatientPart, ...] = ()
    skipped: tuple[SkippedEntry, ...] = ()
    flags: tuple[str, ...] = ()
    # D36: (``Patient/<id>``, patient number) of every FHIR Patient of the message with an id,
    # for ingest to resolve later resources that name that patient by its id only.
    resource_ids: tuple[tuple[str, str], ...] = ()

    def first_patient_no(self) -> str | None:
        if self.identity is not None:
            return self.identity.local_patient_no
        if self.merges:
            return self.merges[0][0]
        return self.patient_no

    def parts(self) -> tuple[PatientPart, ...]:
        """Every patient of the message, the first one first (D36)."""
        number = self.first_patient_no()
        first = (
            ()
            if number is None
            else (PatientPart(number, self.identity, self.events, self.merges, self.consents),)
        )
        return (*first, *self.more)

    @classmethod
    def of_parts(
        cls,
        message_id: str,
        parts: list[PatientPart],
        message_type: str,
        skipped: tuple[SkippedEntry, ...] = (),
        flags: tuple[str, ...] = (),
        resource_ids: tuple[tuple[str, str], ...] = (),
    ) -> ParsedMessage:
        head = parts[0]
        return cls(
            message_id,
            head.identity,
            head.events,
            message_type=message_type,
            merges=head.merges,
            consents=head.consents,
            patient_no=head.patient_no,
            more=tuple(parts[1:]),
            skipped=skipped,
            flags=flags,
            resource_ids=resource_ids,
        )
