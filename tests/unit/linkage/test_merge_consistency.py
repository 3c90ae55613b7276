"""D39: one record that matches two established persons does not merge them when their records
say they are different people (birth dates, sex, registration numbers)."""

from __future__ import annotations

from linkage.domain.index import MATCH, NEW_PERSON, PersonIndex
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
    assert bridge.outcome == MATCH
    assert index.refs["h1"].person != index.refs["h2"].person, "the sisters were merged"
    assert bridge.person in (index.refs["h1"].person, index.refs["h2"].person)
