"""Consent recorded at the consent desk (D32): who the change is about, which datasets, and the
``ConsentEvent`` that says so (D-pseudonymizer-5 is what the pseudonymizer does with it).

A participant is named by the programme's internal person id, or by a hospital and its patient
number, which the caller turns into a ``patient_ref`` with ingest's own keyed function (D4) before
the event is built: the patient number never enters an event, an audit event or a message here.
No clock, no Kafka: the time is an argument.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from biostream.contracts import ConsentEvent, ConsentKind
from biostream.topics import HOSPITAL_CODE

from ingest.domain.model import ConsentChange
from ingest.domain.patient_refs import PatientRefs

# Linkage's person ids are "P" + hex (linkage.domain.index); a registry that pastes anything
# else (a registration number, a name) is refused before it can reach a topic.
PERSON_ID = re.compile(r"^P[0-9a-f]{1,40}$")
DATASET = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MRN_MAX = 64
KINDS: dict[str, ConsentKind] = {"grant": "GRANTED", "withdraw": "WITHDRAWN"}


class ConsentRefused(ValueError):
    """A consent request that cannot be recorded. The message never repeats a patient number."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a consent change is about: exactly one of the two references."""

    person_id: str | None = None
    patient_ref: str | None = None
    hospital: str | None = None
    # D33: the same patient's refs under older patient-ref key versions, newest first.
    previous_patient_refs: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        ref = self.person_id or self.patient_ref
        assert ref is not None
        return ref


def person_subject(person_id: str) -> Subject:
    """D32: a person id must have linkage's shape, so nothing identifying is sent by mistake."""
    if not PERSON_ID.fullmatch(person_id):
        raise ConsentRefused("a person id is 'P' followed by hexadecimal digits, as linkage issues")
    return Subject(person_id=person_id)


def check_patient_number(hospital: str, mrn: str) -> tuple[str, str]:
    """D32: a hospital code as feed topics take it and a patient number of printable characters
    without spaces (the same text the hospital's feed carries; trimmed only at the ends). The
    errors name the rule, never the value."""
    if not HOSPITAL_CODE.fullmatch(hospital):
        raise ConsentRefused("hospital code must be 1-32 of A-Z, 0-9, '_' or '-'")
    number = mrn.strip()
    if not number:
        raise ConsentRefused("the patient number is empty")
    if len(number) > MRN_MAX:
        raise ConsentRefused(f"the patient number is longer than {MRN_MAX} characters")
    if any(c.isspace() or not c.isprintable() for c in number):
        raise ConsentRefused("the patient number holds spaces or control characters")
    return hospital, number


def check_datasets(datasets: list[str]) -> list[str]:
    """D32: dataset names as policies spell them; none means every dataset (the schema's rule),
    duplicates are dropped, the order kept."""
    for name in datasets:
        if not DATASET.fullmatch(name):
            raise ConsentRefused(
                "a dataset name is 1-64 of a-z, 0-9, '.', '_' or '-' (as its policy names it)"
            )
    return list(dict.fromkeys(datasets))


def consent_event(
    kind: str, subject: Subject, datasets: list[str], now: dt.datetime, source: str
) -> ConsentEvent:
    """D32: the event for one request. Its id is derived from everything it says and the time it
    was recorded, so two requests are two events and a resent one is recognisable."""
    if kind not in KINDS:
        raise ConsentRefused("the command is grant or withdraw")
    if not SOURCE.fullmatch(source):
        raise ConsentRefused("a source is 1-64 of A-Z, a-z, 0-9, '.', '_' or '-'")
    if (subject.person_id is None) == (subject.patient_ref is None):
        raise ConsentRefused("name the participant by person id or by hospital and patient number")
    names = check_datasets(datasets)
    recorded_at = now.astimezone(dt.UTC)
    millis = int(recorded_at.timestamp() * 1000)
    text = "\x1f".join((KINDS[kind], subject.reference, *names, "|", source, str(millis)))
    return {
        "event_id": "consent-" + hashlib.sha256(text.encode()).hexdigest()[:32],
        "kind": KINDS[kind],
        "patient_ref": subject.patient_ref,
        "person_id": subject.person_id,
        "datasets": names,
        "recorded_at": recorded_at,
        "source": source,
        "previous_patient_refs": list(subject.previous_patient_refs),
    }


def consent_from_feed(
    event_id: str, refs: PatientRefs, hospital: str, change: ConsentChange, now: dt.datetime
) -> ConsentEvent:
    """D32: a FHIR ``Consent`` of a hospital's feed as a ``ConsentEvent`` of the message's
    patient: id from the record ids (``<hospital>/<message>/c<n>``, so a redelivered message
    gives the same event), source the hospital, recorded at the resource's time or on receipt;
    D33: with the patient's refs under older key versions."""
    return {
        "event_id": event_id,
        "kind": "GRANTED" if change.kind == "GRANTED" else "WITHDRAWN",
        "patient_ref": refs.current,
        "person_id": None,
        "datasets": list(change.datasets),
        "recorded_at": (change.recorded_at or now).astimezone(dt.UTC),
        "source": hospital,
        "previous_patient_refs": list(refs.previous),
    }
