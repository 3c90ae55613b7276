"""The join of clinical records with link decisions, and what one release looks like.

A clinical record may arrive before its patient's link decision: it then waits in the state,
keyed by patient_ref, and is released when the decision comes. Nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from dataclasses import dataclass
from typing import Any

from biostream.contracts import CuratedRecord, SexCode

from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.domain.pseudonyms import curated_id, pseudonym


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What the pseudonymizer keeps from a link decision: no direct identifier."""

    person_id: str
    sequence: int
    birth_year: int | None
    sex: SexCode
    province_code: str | None

    def to_bytes(self) -> bytes:
        return json.dumps(
            [self.person_id, self.sequence, self.birth_year, self.sex, self.province_code]
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonFacts:
        person_id, sequence, birth_year, sex, province = json.loads(data)
        return cls(person_id, sequence, birth_year, sex, province)


def release(
    clinical: dict[str, Any],
    facts: PersonFacts,
    policy: ReleasePolicy,
    domain_key: bytes,
    now: dt.datetime,
) -> CuratedRecord | None:
    """The curated record for a clinical record, or None when the policy does not release it."""
    if clinical["resource_type"] not in policy.resource_types:
        return None
    return {
        "curated_id": curated_id(domain_key, clinical["record_id"]),
        "dataset": policy.dataset,
        "policy_version": policy.policy_version,
        "approval_ref": policy.approval_ref,
        "pseudonym": pseudonym(domain_key, facts.person_id),
        "key_version": policy.key_version,
        "hospital": clinical["hospital"],
        "resource_type": clinical["resource_type"],
        "event_date": clinical["event_date"],
        "code_system": clinical["code_system"],
        "code": clinical["code"],
        "code_version": clinical["code_version"],
        "value_number": clinical["value_number"],
        "value_unit": clinical["value_unit"],
        "birth_year": facts.birth_year,
        "sex": facts.sex,
        "province_code": facts.province_code,
        "released_at": now,
    }


def pack(items: list[bytes]) -> bytes:
    """Length-prefixed list of byte strings: the records waiting for one patient's decision."""
    return b"".join(struct.pack(">I", len(item)) + item for item in items)


def unpack(data: bytes) -> list[bytes]:
    items, position = [], 0
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        position += 4
        items.append(data[position : position + length])
        position += length
    return items
