"""D48: the disclosure-risk figures on small hand-made populations with known class sizes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pseudonymizer.domain.consent import Consent
from pseudonymizer.domain.release import PersonFacts
from pseudonymizer.domain.risk import (
    RetainedRecord,
    VariantError,
    bucket_label,
    disclosure_risk,
    draft_policy,
    variant_policy,
)

REPO = Path(__file__).resolve().parents[3]
NO_ENTRY = Consent(None, None)
EVENT = dt.date(2026, 6, 1)


def draft(**changes: Any) -> dict[str, Any]:
    document = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    document.pop("target_topic", None)
    document["generalisation"] = {
        "birth": "year", "sex": "keep", "address": "province", "postal_digits": 0,
        "event_date": {"method": "month"},
    }  # fmt: skip
    document["k_anonymity"] = {"min_k": 5, "max_hold_hours": 168}
    document.update(changes)
    return document


def person(n: int, birth_year: int, sex: str = "F", province: str = "11") -> PersonFacts:
    return PersonFacts(f"person-{n}", 1, birth_year, sex, province)  # type: ignore[arg-type]


def population(sizes: list[int], records_each: int = 1) -> dict[str, PersonFacts]:
    """Class i (birth year 1950 + i) holds sizes[i] persons; patient_ref -> facts."""
    facts: dict[str, PersonFacts] = {}
    n = 0
    for i, size in enumerate(sizes):
        for _ in range(size):
            facts[f"ref-{n}"] = person(n, 1950 + i)
            n += 1
    return facts


def records_of(facts: dict[str, PersonFacts], each: int = 1) -> list[RetainedRecord]:
    return [RetainedRecord(ref, "Observation", EVENT) for ref in facts for _ in range(each)]


def figures(facts: dict[str, PersonFacts], records: list[RetainedRecord], **kwargs: Any) -> Any:
    variants = kwargs.pop("variants", {})
    consent = kwargs.pop("consent", lambda _p: NO_ENTRY)
    return disclosure_risk(
        records,
        lambda r: facts.get(r.patient_ref),
        consent,
        draft_policy(draft(**kwargs)),
        variants,
    )


def test_known_class_sizes_give_the_histogram_shares_and_risks() -> None:
    facts = population([1, 2, 3, 6, 12])
    result = figures(facts, records_of(facts, each=2)).requested
    assert (result.persons, result.records, result.classes) == (24, 48, 5)
    assert result.min_class_size == 1
    assert result.median_class_size == 3
    histogram = {b.label: (b.classes, b.persons, b.records) for b in result.histogram}
    assert histogram == {
        "1": (1, 1, 2), "2": (1, 2, 4), "3-4": (1, 3, 6), "5-9": (1, 6, 12),
        "10-19": (1, 12, 24), "20-49": (0, 0, 0), "50+": (0, 0, 0),
    }  # fmt: skip
    assert result.k == 5
    assert (result.classes_below_k, result.records_below_k, result.persons_below_k) == (3, 12, 6)
    assert result.share_records_below_k == pytest.approx(12 / 48)
    assert result.share_persons_below_k == pytest.approx(6 / 24)
    assert result.max_risk == 1.0
    assert result.average_risk == pytest.approx(5 / 24)  # El Emam's J / n


def test_withheld_and_undecided_records_are_counted_apart() -> None:
    facts = population([3])
    records = [
        *records_of(facts),
        RetainedRecord("ref-0", "Specimen", EVENT),  # not a requested record type
        RetainedRecord("ref-unlinked", "Observation", EVENT),
    ]
    withdrawn = Consent(["cohort-demo"], None)
    result = figures(
        facts, records, record_types=["Observation"],
        consent=lambda p: withdrawn if p == "person-2" else NO_ENTRY,
    )  # fmt: skip
    assert result.awaiting_link_decision == 1
    assert result.requested.records == 2
    assert dict(result.requested.withheld) == {
        "CONSENT_WITHDRAWN": 1, "RESOURCE_TYPE_NOT_APPROVED": 1,
    }  # fmt: skip


def test_variants_measure_what_the_conditions_would_change() -> None:
    # Ten persons born 1950..1954 (two each): by year five classes of 2, by 5-year age band one.
    facts = {f"ref-{n}": person(n, 1950 + n % 5) for n in range(10)}
    result = figures(
        facts, records_of(facts),
        variants={
            "k=10": {"min_k": 10},
            "age bands": {"birth": "age_band_5"},
            "no address, no sex": {"address": "drop", "sex": "drop"},
        },
    )  # fmt: skip
    assert result.requested.classes == 5 and result.requested.max_risk == 0.5
    by_label = {v.label: v.measures for v in result.variants}
    assert by_label["k=10"].k == 10 and by_label["k=10"].share_records_below_k == 1.0
    # born 1950-1954, event 2026-06: ages 72-76 fall in two bands (70-74, 75-79)
    assert by_label["age bands"].classes == 2
    assert by_label["age bands"].max_risk == pytest.approx(1 / 4)
    assert by_label["no address, no sex"].classes == 5


def test_a_person_whose_records_span_two_age_bands_counts_in_both() -> None:
    facts = {"ref-0": PersonFacts("person-0", 1, 1980, "F", "11", birth_month=7)}
    records = [
        RetainedRecord("ref-0", "Observation", dt.date(2025, 6, 1)),  # 44
        RetainedRecord("ref-0", "Observation", dt.date(2025, 8, 1)),  # 45
    ]
    result = figures(facts, records, generalisation={"birth": "age_band_5"}).requested
    assert (result.persons, result.classes, result.appearances) == (1, 2, 2)
    assert result.average_risk == 1.0


def test_a_variant_only_narrows_k_and_refuses_unknown_conditions() -> None:
    policy = draft_policy(draft())
    assert variant_policy(policy, {"min_k": 2}).k_anonymity.min_k == 5
    assert variant_policy(policy, {"no_free_text": True}).free_text == "drop"
    with pytest.raises(VariantError, match="unknown condition 'birth_exact'"):
        variant_policy(policy, {"birth_exact": True})
    with pytest.raises(VariantError):
        variant_policy(policy, {"birth": "day"})


@pytest.mark.parametrize(
    ("size", "label"), [(1, "1"), (2, "2"), (4, "3-4"), (5, "5-9"), (19, "10-19"), (50, "50+")]
)
def test_bucket_labels(size: int, label: str) -> None:
    assert bucket_label(size) == label


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=15), min_size=1, max_size=8),
    k=st.integers(min_value=1, max_value=12),
    each=st.integers(min_value=1, max_value=3),
)
def test_share_below_k_and_the_risks_follow_the_class_sizes(
    sizes: list[int], k: int, each: int
) -> None:
    facts = population(sizes)
    result = figures(
        facts, records_of(facts, each), k_anonymity={"min_k": k, "max_hold_hours": 1}
    ).requested
    assert result.max_risk == pytest.approx(1 / min(sizes))
    assert result.average_risk == pytest.approx(len(sizes) / sum(sizes))
    assert sum(b.classes for b in result.histogram) == len(sizes)
    if min(sizes) >= k:
        assert result.share_records_below_k == 0 and result.share_persons_below_k == 0
    else:
        below = sum(s for s in sizes if s < k)
        assert result.share_persons_below_k == pytest.approx(below / sum(sizes))


# -- the report (pseudonymizer/risk.py): a request in, counts out --------------------------------


def request(document: dict[str, Any] | str, variants: Any = None) -> Any:
    from biostream.contracts import RiskRequest

    return RiskRequest(
        request_id="APP-1/risk/1",
        application_id="APP-1",
        requested_by="system",
        requested_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        draft_policy_json=document if isinstance(document, str) else json.dumps(document),
        variants_json=json.dumps(variants or {}),
    )


NOW = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def canary_population() -> Any:
    """Persons whose every quasi-identifier and id is a string a report must never carry."""
    from pseudonymizer.risk import Retained

    retained = Retained()
    for n in range(7):
        facts = PersonFacts(
            f"canary-person-{n}", 1, 1931 + n % 2, "M",  # type: ignore[arg-type]
            "47", birth_month=3, postal_prefix="397", district_code="47190",
        )  # fmt: skip
        retained.facts[f"pr_canary{n}"] = facts
        retained.records += [
            RetainedRecord(f"pr_canary{n}", "Observation", dt.date(2026, 5, 1 + n)),
            RetainedRecord(f"pr_canary{n}", "Condition", dt.date(2026, 5, 2 + n)),
        ]
    return retained


def test_a_report_holds_no_quasi_identifier_value_id_or_pseudonym() -> None:
    from pseudonymizer.domain.pseudonyms import pseudonym
    from pseudonymizer.risk import answer, numbers_only

    retained = canary_population()
    variants = {"k=10": {"min_k": 10}, "district": {"address": "district", "postal_digits": 3}}
    document = draft(generalisation={"birth": "year", "sex": "keep", "address": "district"})
    report = answer(request(document, variants), lambda: retained, NOW)
    assert report["outcome"] == "COMPUTED" and report["records_read"] == 14
    text = json.dumps(report, default=str)
    forbidden = ["canary", "pr_", "ps_", "1931", "1932", "47190", "397", '"47"', '"M"', "2026-05"]
    forbidden += [pseudonym(b"k" * 32, f"canary-person-{n}") for n in range(7)]
    assert [value for value in forbidden if value in text] == []
    figures = json.loads(report["figures_json"] or "")
    field_names = set(figures) | set(figures["requested"]) | {"label", "changes", "measures"}
    labels = {label for _low, label in __import__(
        "pseudonymizer.domain.risk", fromlist=["SIZE_BUCKETS"]
    ).SIZE_BUCKETS} | set(variants) | {"district"}  # fmt: skip
    assert numbers_only(figures, labels | field_names)
    assert figures["requested"]["classes"] == 2  # 1931 and 1932, the district kept apart


def test_a_request_that_cannot_be_answered_gets_a_report_with_the_reason() -> None:
    from pseudonymizer.risk import answer

    def never() -> Any:
        raise AssertionError("nothing is read for a bad request")

    bad_draft = answer(request("{not json"), never, NOW)
    assert (bad_draft["outcome"], bad_draft["figures_json"]) == ("DRAFT_INVALID", None)
    unknown_type = answer(request(draft(record_types=["Genome"])), never, NOW)
    assert unknown_type["outcome"] == "DRAFT_INVALID"
    assert "unknown record types" in (unknown_type["error_reason"] or "")
    bad_variant = answer(request(draft(), {"v": {"birth_exact": True}}), canary_population, NOW)
    assert bad_variant["outcome"] == "VARIANT_INVALID"
    assert "birth_exact" in (bad_variant["error_reason"] or "")


def test_an_access_draft_with_validity_dates_and_no_key_version_is_read() -> None:
    document = draft(
        valid_from="2026-12-01T00:00:00+00:00", valid_until="2027-12-01T00:00:00+00:00"
    )
    document.pop("key_version")
    assert draft_policy(document).key_version == "k1"
