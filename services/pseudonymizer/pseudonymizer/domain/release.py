"""What one release looks like: the curated record of a clinical record for one dataset.

Pure: the person's facts, the policy, the key and the time come in as arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from biostream.contracts import CuratedRecord, SexCode

from pseudonymizer.domain import kanon
from pseudonymizer.domain.consent import Consent
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
    """D-pseudonymizer-2: the generalised quasi-identifiers a released record carries (and its
    k-anonymity class), from the coarse facts linkage sends, never finer ones."""
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


def placement(keyed: Keyed, person_id: str) -> tuple[str, int]:
    """Where a person's records sit in a dataset: their pseudonym and date offset in its domain."""
    shift = keyed.policy.generalisation.shift_days
    return pseudonym(keyed.key, person_id), date_offset(keyed.key, person_id, shift)


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
    """D-pseudonymizer-1: the curated record: approved fields only, the person only under the
    domain's pseudonym, free text scrubbed (D24d) or dropped."""
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
    (see ``pseudonymizer.state``)."""

    pseudonym: str
    key_version: str
    offset_days: int
    curated_ids: list[str]
    chunks: int = 0

    def add(self, curated_id: str) -> list[str] | None:
        """Records one more id; returns a full chunk to store apart (the ``chunks``-th, counted
        before this call), or None."""
        self.curated_ids.append(curated_id)
        if len(self.curated_ids) < RELEASED_CHUNK:
            return None
        full, self.curated_ids = self.curated_ids, []
        self.chunks += 1
        return full


WithheldReason = Literal["RESOURCE_TYPE_NOT_APPROVED", "CONSENT_WITHDRAWN", "NO_CONSENT"]


@dataclass(frozen=True, slots=True)
class Withhold:
    """The dataset does not receive the record, for a reason the audit ledger gives."""

    reason: WithheldReason


@dataclass(frozen=True, slots=True)
class HoldBelowK:
    """The record waits: its quasi-identifier class has fewer than k persons (D-pseudonymizer-6)."""

    klass: str
    k_class: kanon.ClassState | None  # the class's new state, None if unchanged


@dataclass(frozen=True, slots=True)
class Release:
    """The record goes out with these quasi-identifiers; ``opens_class`` releases what waited."""

    quasi: dict[str, Any]
    klass: str | None
    k_class: kanon.ClassState | None  # the class's new state, None if unchanged
    opens_class: bool


ReleaseDecision = Withhold | HoldBelowK | Release


def decide_release(
    clinical: dict[str, Any],
    facts: PersonFacts,
    policy: ReleasePolicy,
    consent: Consent,
    k_class_of: Callable[[str], kanon.ClassState | None],
) -> ReleaseDecision:
    """Whether a dataset receives a clinical record now, waits for it, or never receives it.

    D-pseudonymizer-1: only the record types the policy approves; D-pseudonymizer-5: never after
    the person withdrew from the dataset, and for a ``consent_required`` dataset only after a
    grant (earlier records are withheld, not held); D-pseudonymizer-6: below k the record is held
    in its class (``k_class_of`` reads a class's state)."""
    if clinical["resource_type"] not in policy.record_types:
        return Withhold("RESOURCE_TYPE_NOT_APPROVED")
    if consent.withdrawn_from(policy.dataset):
        return Withhold("CONSENT_WITHDRAWN")
    if policy.consent_required and not consent.granted_for(policy.dataset):
        return Withhold("NO_CONSENT")
    quasi = quasi_identifiers(clinical, facts, policy)
    if policy.k_anonymity.min_k <= 1:
        return Release(quasi, None, None, False)
    klass = class_key(quasi)
    before = k_class_of(klass)
    admission = kanon.admit(before, facts.person_id, policy.k_anonymity.min_k)
    changed = admission.state if admission.state != before else None
    if not admission.releasable:
        return HoldBelowK(klass, changed)
    return Release(quasi, klass, changed, admission.opened)
