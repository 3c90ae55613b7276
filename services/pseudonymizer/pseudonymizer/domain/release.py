"""What one release looks like: the curated record of a clinical record for one dataset.

Pure: the person's facts, the policy, the key and the time come in as arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from dataclasses import dataclass
from typing import Any

from biostream.contracts import CuratedRecord, SexCode

from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.domain.pseudonyms import curated_id, date_offset, pseudonym, specimen_id
from pseudonymizer.domain.scrub import scrub


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What the pseudonymizer keeps from a link decision: no direct identifier."""

    person_id: str
    sequence: int
    birth_year: int | None
    sex: SexCode
    province_code: str | None
    birth_month: int | None = None
    postal_prefix: str | None = None
    district_code: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(
            [
                self.person_id,
                self.sequence,
                self.birth_year,
                self.sex,
                self.province_code,
                self.birth_month,
                self.postal_prefix,
                self.district_code,
            ]
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonFacts:
        values = json.loads(data)
        return cls(*values)

    @classmethod
    def from_decision(cls, decision: dict[str, Any]) -> PersonFacts:
        return cls(
            person_id=decision["person_id"],
            sequence=decision["sequence"],
            birth_year=decision["birth_year"],
            sex=decision["sex"],
            province_code=decision["province_code"],
            birth_month=decision.get("birth_month"),
            postal_prefix=decision.get("postal_prefix"),
            district_code=decision.get("district_code"),
        )


@dataclass(frozen=True, slots=True)
class Keyed:
    """A policy with the key of its pseudonym domain and version."""

    policy: ReleasePolicy
    key: bytes


def age_band(birth_year: int | None, birth_month: int | None, event: dt.date | None) -> str | None:
    """Five-year band of the age at the event. Without the birth month the age is taken as if the
    birthday had passed (at most one year high), so a band boundary may be off by one year."""
    if birth_year is None or event is None:
        return None
    age = event.year - birth_year
    if birth_month is not None and event.month < birth_month:
        age -= 1
    age = max(age, 0)
    if age >= 90:
        return "90+"  # top coding: the oldest are few
    low = age - age % 5
    return f"{low}-{low + 4}"


def address_codes(facts: PersonFacts, address: str) -> dict[str, str | None]:
    """D24b: the place a released record names, at the policy's level. ``district`` releases the
    시군구 code linkage derived (D24a) and no province (the code's first two digits are the
    province); a record whose district is unknown (no address, a 구 name several cities share,
    an address linkage could not read) falls back to its province, the next coarser level of the
    same hierarchy, never to a guess. Its k-anonymity class is then the province's, apart from
    the districts' classes, so each class still needs k persons."""
    if address == "province" or (address == "district" and facts.district_code is None):
        return {"province_code": facts.province_code, "district_code": None}
    if address == "district":
        return {"province_code": None, "district_code": facts.district_code}
    return {"province_code": None, "district_code": None}


def quasi_identifiers(
    clinical: dict[str, Any], facts: PersonFacts, policy: ReleasePolicy
) -> dict[str, Any]:
    """The generalised quasi-identifiers a released record carries (and its k-anonymity class)."""
    g = policy.generalisation
    event: dt.date | None = clinical["event_date"]
    prefix = facts.postal_prefix[: g.postal_digits] if facts.postal_prefix else None
    return {
        "birth_year": facts.birth_year if g.birth == "year" else None,
        "age_band": age_band(facts.birth_year, facts.birth_month, event)
        if g.birth == "age_band_5"
        else None,
        "sex": facts.sex if g.sex == "keep" else "U",
        **address_codes(facts, g.address),
        "postal_prefix": prefix if g.postal_digits > 0 else None,
    }


def class_key(quasi: dict[str, Any]) -> str:
    return "|".join(
        "" if quasi[name] is None else str(quasi[name])
        for name in (
            "birth_year",
            "age_band",
            "sex",
            "province_code",
            "district_code",
            "postal_prefix",
        )
    )


def generalise_date(
    event: dt.date | None, facts: PersonFacts, keyed: Keyed
) -> tuple[dt.date | None, str]:
    g = keyed.policy.generalisation
    method = g.date_method
    if event is None or "event_date" not in keyed.policy.fields or method == "drop":
        return None, "drop"
    if method == "month":
        return event.replace(day=1), method
    if method == "shift":
        return event + dt.timedelta(
            days=date_offset(keyed.key, facts.person_id, g.shift_days)
        ), method
    return event, method


def build(
    clinical: dict[str, Any],
    facts: PersonFacts,
    keyed: Keyed,
    quasi: dict[str, Any],
    now: dt.datetime,
) -> CuratedRecord:
    """The curated record: approved fields only, the person only under the domain's pseudonym."""
    policy, key = keyed.policy, keyed.key
    fields = policy.fields
    event_date, handling = generalise_date(clinical["event_date"], facts, keyed)
    text: str | None = clinical["value_text"]
    if text is not None and ("value_text" not in fields or policy.free_text == "drop"):
        text = None
    elif text is not None:
        text = scrub(text)
    return {
        "curated_id": curated_id(key, clinical["record_id"]),
        "dataset": policy.dataset,
        "policy_version": policy.policy_version,
        "approval_ref": policy.approval_ref,
        "pseudonym": pseudonym(key, facts.person_id),
        "key_version": policy.key_version,
        "hospital": clinical["hospital"] if "hospital" in fields else "",
        "resource_type": clinical["resource_type"],
        "event_date": event_date,
        "code_system": clinical["code_system"] if "code_system" in fields else None,
        "code": clinical["code"] if "code" in fields else None,
        "code_version": clinical["code_version"] if "code_version" in fields else None,
        "value_number": clinical["value_number"] if "value_number" in fields else None,
        "value_unit": clinical["value_unit"] if "value_unit" in fields else None,
        "birth_year": quasi["birth_year"],
        "sex": quasi["sex"],
        "province_code": quasi["province_code"],
        "released_at": now,
        "age_band": quasi["age_band"],
        "postal_prefix": quasi["postal_prefix"],
        "district_code": quasi["district_code"],
        "value_text": text,
        "specimen_ids": [specimen_id(key, ref) for ref in clinical["specimen_refs"]]
        if "specimen_ids" in fields
        else [],
        "event_date_handling": handling,
    }


# A patient_ref's curated ids in one dataset are kept for correction notices: the newest (fewer
# than RELEASED_CHUNK) in its ``Released`` entry, older ones in full chunks under keys of their own,
# each written once. A release then rewrites at most RELEASED_CHUNK ids, for a patient's first
# record as for their ten-thousandth (an ICU patient's vital signs), instead of the whole history.
RELEASED_CHUNK = 1000


@dataclass(slots=True)
class Released:
    """What one patient_ref has released into one dataset: the pseudonym, key version and date
    offset its records carry at the consumer, and their curated ids (for correction notices):
    ``curated_ids`` are the newest, ``chunks`` full chunks of older ones are stored apart
    (``chunk_key``)."""

    pseudonym: str
    key_version: str
    offset_days: int
    curated_ids: list[str]
    chunks: int = 0

    def add(self, curated_id: str) -> list[str] | None:
        """Records one more id; returns a full chunk to store under ``chunk_key(..., n)`` (n the
        number of chunks before this call), or None."""
        self.curated_ids.append(curated_id)
        if len(self.curated_ids) < RELEASED_CHUNK:
            return None
        full, self.curated_ids = self.curated_ids, []
        self.chunks += 1
        return full

    def to_bytes(self) -> bytes:
        fields: list[object] = [
            self.pseudonym,
            self.key_version,
            self.offset_days,
            self.curated_ids,
        ]
        if self.chunks:  # without chunks, the layout of the entries written before chunks existed
            fields.append(self.chunks)
        return json.dumps(fields).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Released:
        fields = json.loads(data)
        p, kv, offset, ids = fields[:4]
        return cls(p, kv, offset, ids, fields[4] if len(fields) > 4 else 0)


# State keys (also the changelog's keys, so their format never changes).
DECISION_PREFIX = "dec:"


def decision_key(patient_ref: str) -> str:
    """The state key of a patient_ref's latest link decision (``PersonFacts``)."""
    return f"{DECISION_PREFIX}{patient_ref}"


def released_key(dataset: str, patient_ref: str) -> str:
    """The state key of what a patient_ref has released into a dataset (``Released``)."""
    return f"rel:{dataset}:{patient_ref}"


def chunk_key(released_key: str, number: int) -> str:
    """The state key of a patient_ref's ``number``-th full chunk of released curated ids."""
    return f"relc{released_key.removeprefix('rel')}:{number}"


def chunk_to_bytes(curated_ids: list[str]) -> bytes:
    """A full chunk of released curated ids as stored under ``chunk_key``."""
    return json.dumps(curated_ids).encode()


def chunk_from_bytes(data: bytes | None) -> list[str]:
    """The curated ids of a stored chunk (none if the key is absent)."""
    ids: list[str] = json.loads(data or b"[]")
    return ids


def pack(items: list[bytes]) -> bytes:
    """Length-prefixed list of byte strings (records waiting in the state)."""
    return b"".join(struct.pack(">I", len(item)) + item for item in items)


def unpack(data: bytes) -> list[bytes]:
    items, position = [], 0
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        position += 4
        items.append(data[position : position + length])
        position += length
    return items
