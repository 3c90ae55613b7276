"""D41: parameter versions: which one is active, which may be activated, the next number, and
the shadow re-linkage's counts of what new parameters would change."""

from __future__ import annotations

import dataclasses

import pytest
from linkage.domain.params_versions import (
    ACTIVE,
    PROPOSED,
    RETIRED,
    SHADOWED,
    VersionState,
    activation_refusal,
    active_version,
    newest_by_version,
    next_version,
    sample_digest,
    shadow_refusal,
)
from linkage.domain.profile import Identity, make_profile
from linkage.domain.shadow import Replay, ReplayRecord, replay, shadow_diff
from linkage.domain.weights import Thresholds, default_params

KEY = b"k" * 32


def v(number: int, state: str, baseline: int | None = None, shadowed: bool = False) -> VersionState:
    return VersionState(number, state, baseline, shadowed or state == SHADOWED)


def test_no_version_is_active_until_one_is_activated_and_numbers_follow_the_highest() -> None:
    assert active_version([]) is None
    assert next_version([]) == 1
    versions = [v(1, RETIRED), v(2, ACTIVE), v(3, PROPOSED)]
    assert active_version(versions) == 2
    assert next_version(versions) == 4
    assert active_version([v(1, RETIRED), v(2, SHADOWED)]) is None


def test_the_newest_record_of_each_version_is_its_state() -> None:
    records = [
        {"version": 1, "state": PROPOSED}, {"version": 1, "state": SHADOWED},
        {"version": 2, "state": PROPOSED}, {"version": 1, "state": ACTIVE},
    ]  # fmt: skip
    newest = newest_by_version(records)
    assert {n: r["state"] for n, r in newest.items()} == {1: ACTIVE, 2: PROPOSED}


@pytest.mark.parametrize(
    ("versions", "wanted", "refusal"),
    [
        ([v(1, PROPOSED)], 2, "no parameter version 2"),
        ([v(1, PROPOSED)], 1, "has no shadow report"),
        ([v(1, ACTIVE)], 1, "already active"),
        # shadowed against the defaults, but version 1 was activated since: stale
        ([v(1, ACTIVE), v(2, SHADOWED, baseline=None)], 2, "shadow it again"),
        ([v(1, RETIRED), v(2, ACTIVE), v(3, SHADOWED, baseline=1)], 3, "shadow it again"),
    ],
)
def test_a_version_is_activated_only_with_a_shadow_report_against_the_active_one(
    versions: list[VersionState], wanted: int, refusal: str
) -> None:
    reason = activation_refusal(versions, wanted)
    assert reason is not None and refusal in reason


def test_a_shadowed_version_against_the_active_one_may_be_activated_even_a_retired_one() -> None:
    assert activation_refusal([v(1, SHADOWED, baseline=None)], 1) is None
    assert activation_refusal([v(1, ACTIVE), v(2, SHADOWED, baseline=1)], 2) is None
    # rolling back: the retired version shadowed again against the active one
    assert activation_refusal([v(1, RETIRED, baseline=2, shadowed=True), v(2, ACTIVE)], 1) is None


def test_the_active_version_is_not_shadowed_against_itself() -> None:
    assert shadow_refusal([v(1, ACTIVE)], 1) == "version 1 is the active one"
    assert shadow_refusal([v(1, ACTIVE)], 5) == "no parameter version 5"
    assert shadow_refusal([v(1, ACTIVE), v(2, RETIRED)], 2) is None


def test_the_sample_digest_names_positions_and_ids_only() -> None:
    one = sample_digest([(0, 1, "H001/M1/0"), (1, 0, "H002/M7/0")])
    assert one == sample_digest([(0, 1, "H001/M1/0"), (1, 0, "H002/M7/0")])
    assert one != sample_digest([(0, 1, "H001/M1/0"), (1, 1, "H002/M7/0")])
    assert len(one) == 64


# ----------------------------------------------------------------------------- shadow diff


def test_pair_and_regrouping_counts_come_from_the_two_groupings() -> None:
    before = Replay(
        ["NEW_PERSON", "MATCH", "MATCH", "NEW_PERSON"], {"a": "X", "b": "X", "c": "X", "d": "Y"}
    )
    after = Replay(
        ["NEW_PERSON", "MATCH", "NEW_PERSON", "MATCH"], {"a": "P", "b": "P", "c": "Q", "d": "Q"}
    )
    diff = shadow_diff(before, after)
    assert (diff.pairs_linked, diff.pairs_unlinked) == (1, 2)  # c-d together; a-c, b-c apart
    assert diff.patients_regrouped == 4
    assert (diff.persons_before, diff.persons_after) == (2, 2)
    assert diff.outcomes_changed == 2
    assert diff.transitions == {"MATCH>NEW_PERSON": 1, "NEW_PERSON>MATCH": 1}
    assert diff.outcomes_before == {"MATCH": 2, "NEW_PERSON": 2}
    same = shadow_diff(before, before)
    assert not same.decisions_changed and same.pairs_linked == same.pairs_unlinked == 0


def record(ref: str, family: str, given: str, birth: str, phone: str) -> ReplayRecord:
    identity = Identity(
        record_id=ref, family_name=family, given_name=given, birth_date=birth, sex="F", phone=phone
    )
    return ReplayRecord(ref, make_profile(identity, KEY), [ref, "H001", "", ""])


def test_a_higher_match_threshold_turns_a_match_into_a_review_and_the_shadow_counts_it() -> None:
    records = [
        record("r1", "김", "서연", "1997-10-13", "01012345678"),
        record("r2", "김", "서연", "1997-10-13", "01012345678"),  # the same person, elsewhere
        record("r3", "박", "민준", "1960-01-02", "01099998888"),
    ]
    active = default_params()
    before = replay(records, active)
    assert before.outcomes == ["NEW_PERSON", "MATCH", "NEW_PERSON"]
    proposed = dataclasses.replace(active, thresholds=Thresholds(match=1000.0, review=0.0))
    after = replay(records, proposed)
    diff = shadow_diff(before, after)
    assert diff.transitions == {"MATCH>POSSIBLE_MATCH": 1}
    assert (diff.persons_before, diff.persons_after) == (2, 3)
    assert (diff.pairs_linked, diff.pairs_unlinked, diff.patients_regrouped) == (0, 1, 2)
    assert (diff.records, diff.patients) == (3, 3)
