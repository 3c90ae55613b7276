"""The disclosure-risk report a data review board reads before it decides (D48).

Pure: the retained clinical records, each person's facts and consent come in as arguments. A
record is placed exactly as the release would place it: ``release.decide_release`` decides whether
the draft policy releases it (record type, consent) and ``release.quasi_identifiers`` /
``release.class_key`` give its equivalence class, so the report measures what would really be
released. k is ignored while placing (a draft's k does not change which class a record is in;
it only decides what is held), and measured instead: the share below k.

Definitions (El Emam K., Dankar F. K., "Protecting privacy using k-anonymity", JAMIA 15(5), 2008;
El Emam K., "Guide to the De-Identification of Personal Health Information", 2013, ch. 14):
an equivalence class is the set of released records sharing one combination of generalised
quasi-identifiers; its size f is the number of distinct persons in it (what the release's
k-anonymity counts, D-pseudonymizer-6). Under the prosecutor model (the attacker knows the
target is in the data) the risk of re-identifying a member of a class is 1/f; the maximum risk
is 1/min f, the average is the mean of 1/f over every (person, class) appearance, which is
(number of classes) / (number of appearances), i.e. El Emam's J/n when each person appears in
one class. A person may appear in several classes: the age band is that of the age at each
event, so a person's records can span two bands.

What a report holds: counts, shares and risks, the histogram's bucket labels (fixed strings of
this module) and the labels of the variants the request named. Never a class's values, a person
id, a pseudonym or a record: ``ClassTally`` keys are dropped before ``Measures`` is built, and
``Measures`` has only numbers. So a small class is reported as "one class of size 1", not as
which combination it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pseudonymizer.domain import kanon
from pseudonymizer.domain.consent import Consent
from pseudonymizer.domain.policy import ReleasePolicy, parse_policy
from pseudonymizer.domain.release import (
    PersonFacts,
    Release,
    Withhold,
    class_key,
    decide_release,
)

# Class-size buckets (lower bound, label): the sizes a board weighs against k = 2, 3, 5, 10, 20.
SIZE_BUCKETS: tuple[tuple[int, str], ...] = (
    (1, "1"),
    (2, "2"),
    (3, "3-4"),
    (5, "5-9"),
    (10, "10-19"),
    (20, "20-49"),
    (50, "50+"),
)

# The generalisation words a variant may change; the rest of a variant is the board's conditions
# in the access service's words (D45: min_k, fields_removed, consent_required, no_free_text).
_GENERALISATION_KEYS = ("birth", "sex", "address", "postal_digits")


class VariantError(ValueError):
    """A variant the draft policy cannot take (unknown key, a value the vocabulary refuses)."""


@dataclass(frozen=True, slots=True)
class RetainedRecord:
    """What the report needs of one retained clinical record: never its content."""

    patient_ref: str
    resource_type: str
    event_date: dt.date | None
    previous_patient_refs: tuple[str, ...] = ()


@dataclass(slots=True)
class ClassTally:
    persons: set[str] = field(default_factory=set)
    records: int = 0


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    classes: int
    persons: int  # (person, class) appearances in classes of this size
    records: int


@dataclass(frozen=True, slots=True)
class Measures:
    """One policy's figures: numbers only (see the module docstring)."""

    k: int
    persons: int
    records: int
    classes: int
    appearances: int
    min_class_size: int
    median_class_size: float
    histogram: tuple[Bucket, ...]
    classes_below_k: int
    records_below_k: int
    persons_below_k: int
    share_records_below_k: float
    share_persons_below_k: float
    max_risk: float
    average_risk: float
    withheld: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class VariantMeasures:
    label: str
    changes: Mapping[str, Any]
    measures: Measures


@dataclass(frozen=True, slots=True)
class RiskFigures:
    """The whole report's figures: the draft as requested, then each variant."""

    requested: Measures
    variants: tuple[VariantMeasures, ...]
    awaiting_link_decision: int  # retained records whose patient linkage has not decided yet

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def bucket_label(size: int) -> str:
    """D48: the histogram bucket of a class of ``size`` persons."""
    label = SIZE_BUCKETS[0][1]
    for low, name in SIZE_BUCKETS:
        if size >= low:
            label = name
    return label


def draft_policy(document: Mapping[str, Any]) -> ReleasePolicy:
    """D48: the policy a draft stands for, from the access service's words (D45's
    ``approved_policy`` document): its validity dates are not the pseudonymizer's words and the
    key version does not place a record, so the one is dropped and the other filled in."""
    words = {k: v for k, v in document.items() if k not in ("valid_from", "valid_until")}
    words.setdefault("key_version", "k1")
    words.setdefault("version", "draft")
    words.setdefault("approval_ref", "draft")
    try:
        return parse_policy(words, "draft")
    except Exception as error:  # PolicyError names the problem, never a person
        raise VariantError(str(error)) from None


def variant_policy(draft: ReleasePolicy, changes: Mapping[str, Any]) -> ReleasePolicy:
    """D48: the policy a board's conditions would make of the draft: ``min_k`` (raised, as D45's
    conditions only narrow), ``birth``/``sex``/``address``/``postal_digits`` (generalisation
    words of the release vocabulary), ``fields_removed``, ``consent_required``,
    ``no_free_text``. The result goes through the same validation as any policy."""
    document = draft.model_dump(mode="json")
    for name, value in changes.items():
        if name == "min_k":
            k = document["k_anonymity"]
            k["min_k"] = max(int(value), int(k["min_k"]))
        elif name in _GENERALISATION_KEYS:
            document["generalisation"][name] = value
        elif name == "fields_removed":
            document["fields"] = [f for f in document["fields"] if f not in set(value)]
        elif name == "consent_required":
            document["consent_required"] = bool(value) or document["consent_required"]
        elif name == "no_free_text":
            if value:
                document["fields"] = [f for f in document["fields"] if f != "value_text"]
                document["free_text"] = "drop"
        else:
            raise VariantError(f"unknown condition {name!r}")
    try:
        return parse_policy(document, "variant")
    except Exception as error:  # PolicyError: say what, without quoting a document
        raise VariantError(str(error)) from None


def place(
    record: RetainedRecord,
    facts: PersonFacts,
    consent: Consent,
    policy: ReleasePolicy,
) -> str:
    """D48: the equivalence class a record would be released in under ``policy``, or the
    withholding reason: the release's own decision (``decide_release``) with k set aside
    (every class taken as open)."""
    clinical = {"resource_type": record.resource_type, "event_date": record.event_date}
    decision = decide_release(clinical, facts, policy, consent, lambda _klass: kanon.OPEN)
    if isinstance(decision, Release):
        return "C" + class_key(decision.quasi)
    if isinstance(decision, Withhold):
        return "W" + decision.reason
    raise AssertionError("k is set aside while placing: nothing is held")


def measure(classes: Mapping[str, ClassTally], withheld: Mapping[str, int], k: int) -> Measures:
    """D48: the figures of one policy from its classes (class key -> persons, records). The keys
    are not carried into the result."""
    tallies = list(classes.values())
    sizes = sorted(len(t.persons) for t in tallies)
    appearances = sum(sizes)
    persons: set[str] = set()
    below_persons: set[str] = set()
    records = below_records = below_classes = 0
    buckets: dict[str, list[int]] = {label: [0, 0, 0] for _low, label in SIZE_BUCKETS}
    for tally in tallies:
        size = len(tally.persons)
        persons |= tally.persons
        records += tally.records
        bucket = buckets[bucket_label(size)]
        bucket[0] += 1
        bucket[1] += size
        bucket[2] += tally.records
        if size < k:
            below_classes += 1
            below_records += tally.records
            below_persons |= tally.persons
    n = len(sizes)
    median = 0.0
    if n:
        median = float(sizes[n // 2]) if n % 2 else (sizes[n // 2 - 1] + sizes[n // 2]) / 2
    return Measures(
        k=k,
        persons=len(persons),
        records=records,
        classes=n,
        appearances=appearances,
        min_class_size=sizes[0] if sizes else 0,
        median_class_size=median,
        histogram=tuple(Bucket(label, *buckets[label]) for _low, label in SIZE_BUCKETS),
        classes_below_k=below_classes,
        records_below_k=below_records,
        persons_below_k=len(below_persons),
        share_records_below_k=below_records / records if records else 0.0,
        share_persons_below_k=len(below_persons) / len(persons) if persons else 0.0,
        max_risk=1 / sizes[0] if sizes else 0.0,
        average_risk=n / appearances if appearances else 0.0,
        withheld=dict(sorted(withheld.items())),
    )


def disclosure_risk(
    records: Iterable[RetainedRecord],
    facts_of: Callable[[RetainedRecord], PersonFacts | None],
    consent_of: Callable[[str], Consent],
    draft: ReleasePolicy,
    variants: Mapping[str, Mapping[str, Any]],
) -> RiskFigures:
    """D48: the disclosure-risk figures of a draft policy and of each variant (label -> the
    conditions it adds), over the retained records, in one pass. ``facts_of`` gives the newest
    link decision's facts of the record's patient (None: not decided yet, counted apart)."""
    policies = [("", draft)] + [
        (label, variant_policy(draft, changes)) for label, changes in variants.items()
    ]
    classes: list[dict[str, ClassTally]] = [{} for _ in policies]
    withheld: list[dict[str, int]] = [{} for _ in policies]
    awaiting = 0
    for record in records:
        facts = facts_of(record)
        if facts is None:
            awaiting += 1
            continue
        consent = consent_of(facts.person_id)
        for i, (_label, policy) in enumerate(policies):
            where = place(record, facts, consent, policy)
            if where[0] == "W":
                withheld[i][where[1:]] = withheld[i].get(where[1:], 0) + 1
                continue
            tally = classes[i].get(where)
            if tally is None:
                tally = classes[i][where] = ClassTally()
            tally.persons.add(facts.person_id)
            tally.records += 1
    measured = [
        measure(classes[i], withheld[i], policy.k_anonymity.min_k)
        for i, (_label, policy) in enumerate(policies)
    ]
    return RiskFigures(
        requested=measured[0],
        variants=tuple(
            VariantMeasures(label, dict(variants[label]), measured[i])
            for i, (label, _policy) in enumerate(policies)
            if i > 0
        ),
        awaiting_link_decision=awaiting,
    )
