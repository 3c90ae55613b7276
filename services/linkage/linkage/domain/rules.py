"""The walking skeleton's deterministic linkage rule (the probabilistic linker replaces it).

A person is keyed by the registration number when there is one, else by name, birth date and sex,
else by the hospital patient alone. The person id is a keyed hash of that key, so it does not
depend on arrival order and is the same across restarts and replays.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IdentityView:
    """The fields linkage reads from an identity record."""

    record_id: str
    patient_ref: str
    family_name: str | None
    given_name: str | None
    birth_date: dt.date | None
    sex: str
    rrn: str | None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The person a hospital patient currently belongs to, and the decision counter."""

    person_id: str
    sequence: int

    def to_bytes(self) -> bytes:
        return json.dumps({"person_id": self.person_id, "sequence": self.sequence}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Assignment:
        raw = json.loads(data)
        return cls(str(raw["person_id"]), int(raw["sequence"]))


@dataclass(frozen=True, slots=True)
class Decision:
    person_id: str
    previous_person_id: str | None
    outcome: str
    rule: str
    sequence: int


def person_key(identity: IdentityView) -> tuple[str, str]:
    """(rule, key). The key holds identifiers and is only ever hashed, never stored or sent."""
    if identity.rrn and len(identity.rrn) == 13 and identity.rrn.isdigit():
        return "rrn-exact", f"rrn:{identity.rrn}"
    if identity.family_name and identity.given_name and identity.birth_date:
        name = unicodedata.normalize("NFC", identity.family_name + identity.given_name)
        name = name.replace(" ", "").lower()
        return "name-birth-sex", f"nbs:{name}|{identity.birth_date.isoformat()}|{identity.sex}"
    return "source-patient", f"ref:{identity.patient_ref}"


def person_id_for(key: bytes, identity: IdentityView) -> tuple[str, str]:
    rule, secret_key = person_key(identity)
    digest = hmac.new(key, secret_key.encode(), hashlib.sha256).hexdigest()
    return rule, "P" + digest[:20]


def decide(
    key: bytes,
    identity: IdentityView,
    current: Assignment | None,
    person_exists: Callable[[str], bool],
) -> Decision | None:
    """The decision for this record, or None when the patient's person does not change."""
    rule, person_id = person_id_for(key, identity)
    if current is None:
        outcome = "MATCH" if person_exists(person_id) else "NEW_PERSON"
        return Decision(person_id, None, outcome, rule, 0)
    if current.person_id == person_id:
        return None
    # The hospital patient's identity changed enough to belong to another person (a corrected
    # registration number, say): a new decision supersedes the old one downstream.
    return Decision(person_id, current.person_id, "MATCH", rule, current.sequence + 1)
