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
class ParsedMessage:
    """One hospital message. ``identity`` is None only for a merge notice (HL7 ADT^A40) whose PID
    carries too little to make an identity record. ``merges`` are the hospital's own record
    merges as (surviving, retired) patient numbers."""

    message_id: str
    identity: PatientIdentity | None
    events: tuple[ClinicalEvent, ...] = field(default_factory=tuple)
    message_type: str = "unknown"
    merges: tuple[tuple[str, str], ...] = ()
    consents: tuple[ConsentChange, ...] = ()
