"""D39: one record that matches two established persons does not merge them when their records
say they are different people (birth dates, sex, registration numbers)."""

from __future__ import annotations

from linkage.domain.index import MATCH, NEW_PERSON, POSSIBLE_MATCH, PersonIndex
from linkage.domain.profile import Identity, make_profile
from linkage.domain.rules import persons_may_merge
from linkage.domain.weights import default_params

KEY = b"k" * 32
HOUSEHOLD = {"family_name": "김", "phone": "010-1234-5678", "postal_code": "06236",
             "address": "서울특별시 강남구 테헤란로 152"}  # fmt: skip


def profile(**fields: object):  # type: ignore[no-untyped-def]
    return make_profile(Identity(record_id="r", **{**HOUSEHOLD, **fields}), KEY)  # type: ignore[arg-type]


def test_persons_with_no_birth_date_in_common_may_not_merge() -> None:
    older = [profile(given_name="서연", birth_date="1990-03-07", sex="F")]
    younger = [profile(given_name="서윤", birth_date="1994-11-20", sex="F")]
    assert not persons_may_merge(older, younger)
    # A day/month slip or one mistyped digit is the same birth date for this rule.
    assert persons_may_merge(older, [profile(given_name="서연", birth_date="1990-07-03", sex="F")])
    assert persons_may_merge(older, [profile(given_name="서연", birth_date="1990-03-08", sex="F")])


def test_persons_of_different_sex_may_not_merge_and_unknown_is_no_objection() -> None:
    her = [profile(given_name="지안", birth_date="2001-05-05", sex="F")]
    assert not persons_may_merge(
        her, [profile(given_name="지안", birth_date="2001-05-05", sex="M")]
    )
    assert persons_may_merge(her, [profile(given_name="지안", birth_date="2001-05-05", sex=None)])


def test_different_strong_registration_numbers_may_not_merge() -> None:
    a = [profile(given_name="민준", birth_date="1897-10-13", sex="M", rrn="971013-9019902")]
    b = [profile(given_name="민준", birth_date="1897-10-13", sex="M", rrn="971013-9019918")]
    assert a[0].rrn_strong and b[0].rrn_strong
    assert not persons_may_merge(a, b)
    assert persons_may_merge(a, a)


def test_a_bridging_record_joins_one_sibling_and_does_not_glue_the_household() -> None:
    index = PersonIndex(default_params(), KEY)
    first = index.link("h1", profile(given_name="서연", birth_date="1990-03-07", sex="F"), [])
    second = index.link("h2", profile(given_name="서윤", birth_date="1994-11-20", sex="F"), [])
    assert first.outcome == NEW_PERSON and second.outcome != MATCH
    assert first.person != second.person
    # A record of the household's surname, phone and address and no given name or birth date
    # (a registration desk's stub) scores above the match threshold against both sisters.
    stub = profile(given_name=None, birth_date=None, sex="F")
    scores = {c.person: c.score for c in index.candidates(stub, exclude=None)}
    assert min(scores[first.person], scores[second.person]) >= index.params.thresholds.match
    bridge = index.link("h3", stub, [])
    assert index.refs["h1"].person != index.refs["h2"].person, "the sisters were merged"
    # D43: it matches both about equally and they may not be merged: which sister it is, a
    # reviewer decides; it joins neither.
    assert bridge.outcome == POSSIBLE_MATCH
    assert bridge.person not in (first.person, second.person)
    assert {c.person for c in bridge.candidates} == {first.person, second.person}


def test_a_refused_bridge_is_put_to_a_reviewer() -> None:
    index = PersonIndex(default_params(), KEY)
    namesake = {"given_name": "민준", "birth_date": "1897-10-13", "sex": "M"}
    first = index.link("h1", profile(rrn="971013-9019902", **namesake), [])
    other = profile(rrn="971013-9019918", **{**namesake, "phone": "010-5555-0000"})
    second = index.link("h2", other, [])
    assert first.person != second.person  # different strong numbers
    # A record without the number matches both above the threshold, the first far better.
    record = profile(**namesake)
    scores = {c.person: c.score for c in index.candidates(record, exclude=None)}
    assert scores[second.person] >= index.params.thresholds.match
    assert scores[first.person] > scores[second.person] + 2.0
    joined = index.link("h3", record, [])
    assert (joined.outcome, joined.person) == (MATCH, first.person)
    assert index.refs["h2"].person == second.person
    # The merge it would have made is a reviewer's task: the other person is listed.
    assert [c.person for c in joined.candidates] == [second.person]
