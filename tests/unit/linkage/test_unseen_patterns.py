"""Issue 20: rules for the patterns of data the linkage was never tuned on (D-linkage-8, D42)."""

from __future__ import annotations

import random

from linkage.domain.comparison import compare
from linkage.domain.index import MATCH, PersonIndex
from linkage.domain.profile import Identity, Profile, blocking_keys, make_profile, street_key
from linkage.domain.rules import TWIN_EVIDENCE_MIN, apply_rules, twins_expected
from linkage.domain.training import estimate, twin_evidence
from linkage.domain.weights import Params, default_params

KEY = b"test-key"


def profile(record_id: str, **fields: object) -> Profile:
    return make_profile(Identity(record_id=record_id, **fields), KEY)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- street key (D-linkage-8)


def test_street_key_is_the_house_number_and_its_street_in_either_convention() -> None:
    assert street_key("강남구 테헤란로 152 101동") is None  # a building, often thousands of homes
    assert street_key("355 mokryeon gil gwanak gu") == "mokryeon|355"
    assert street_key("7 erldunda circuit bellbird") == "erldunda|7"
    assert street_key("coane street mountview") is None
    assert street_key(None) is None


def test_damaged_given_name_birth_date_and_postal_code_still_meet_at_the_street() -> None:
    a = profile("a", family_name="matthews", given_name="jeremy", birth_date="1970-05-26",
                postal_code="3030", address="70 spensley place pandora orchard")  # fmt: skip
    b = profile("b", family_name="matthews", given_name="jeremi", postal_code="3035",
                address="70 spensley place pandoraoorchard")  # fmt: skip
    assert set(blocking_keys(a)) & set(blocking_keys(b)) == {"sspensley|70|m"}


def test_a_misspelt_surname_with_a_damaged_birth_date_and_postal_code_meets_at_the_street() -> None:
    # FEBRL4 (rec-2562): surname, birth month and postal code all damaged, given name and street kept.
    a = profile("a", family_name="hingston", given_name="emiily", birth_date="1971-12-19",
                postal_code="2565", address="15 paul coe crescent hawkesbury road")  # fmt: skip
    b = profile("b", family_name="hingstxon", given_name="emiily", birth_date="1971-13-19",
                postal_code="2556", address="15 paul coe crescent hawkesbury road")  # fmt: skip
    assert set(blocking_keys(a)) & set(blocking_keys(b)) == {"spaul|15|h"}


def test_names_entered_in_each_others_field_meet_at_the_postal_code() -> None:
    # FEBRL4: the surname typed as the given name, a new surname, no birth date, the id mistyped.
    a = profile("a", family_name="capurso", given_name="harrison", postal_code="6233",
                address="7 erldunda circuit bellbird", identifiers=[("ssn", "4086030")])  # fmt: skip
    b = profile("b", family_name="ruby", given_name="capurso", postal_code="6233",
                address="7 erldunda circuit bellbirdctge", identifiers=[("ssn", "4086300")])  # fmt: skip
    assert "a6233|capurso" in set(blocking_keys(a)) & set(blocking_keys(b))
    # A record whose names are one and the same string gets one key there, not two.
    same = profile("c", family_name="ruby", given_name="ruby", postal_code="6233")
    assert [k for k in blocking_keys(same) if k.startswith("a")] == ["a6233|ruby"]


# ------------------------------------------------------------------ one name in the other field


def test_one_name_moved_into_the_other_field_is_credited_symmetrically() -> None:
    org = profile("a", family_name="heron", given_name="alicia")
    moved = profile("b", family_name="brooke", given_name="heron")
    assert compare(org, moved)[0] == 2
    assert compare(moved, org)[0] == 2
    unrelated = profile("c", family_name="brooke", given_name="zara")
    assert compare(org, unrelated)[0] == 0


# ------------------------------------------------------------------------ twin evidence (D42)


def _household_sample(twins: bool, seed: int = 3) -> list[Profile]:
    """Persons with two or three records each (a slip in some); with ``twins`` a share of them
    has a twin: same surname, birth date, address and phone, another given name, own records."""
    rng = random.Random(seed)
    families = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오"]
    given = ["서연", "민준", "지우", "하준", "서윤", "도윤", "지민", "예준", "수아", "시우",
             "하은", "주원", "지호", "유나", "건우", "채원"]  # fmt: skip
    out: list[Profile] = []
    for n in range(600):
        household = {
            "family_name": rng.choice(families),
            "birth_date": f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "sex": "F",
            "phone": f"010-{rng.randint(1000, 9999)}-{n:04d}",
            "postal_code": f"{rng.randint(10000, 63000)}",
            "address": f"강남구 테헤란로 {n}",
        }  # fmt: skip
        names = rng.sample(given, 2 if twins and n % 10 == 0 else 1)
        for number, name in enumerate(names):
            for copy in range(rng.randint(2, 3)):
                out.append(profile(f"{n}-{number}-{copy}", given_name=name, **household))
    return out


def test_twin_evidence_is_high_where_the_data_hold_twins_and_low_where_not() -> None:
    with_twins = _household_sample(twins=True)
    without = _household_sample(twins=False)
    params_twins = estimate(with_twins, default_params(), random_pairs=20_000)
    params_none = estimate(without, default_params(), random_pairs=20_000)
    assert params_twins.twin_evidence is not None
    assert params_twins.twin_evidence >= TWIN_EVIDENCE_MIN
    assert twins_expected(params_twins)
    assert params_none.twin_evidence is not None
    assert params_none.twin_evidence < TWIN_EVIDENCE_MIN
    assert not twins_expected(params_none)


def test_twin_evidence_counts_replaced_given_names_against_the_slips_em_learnt() -> None:
    same_household = {"family_name": "김", "birth_date": "1990-03-07", "address": "강남구 테헤란로 1",
                      "postal_code": "06236", "phone": "01012345678"}  # fmt: skip
    records = [
        profile(f"{name}{copy}", given_name=name, **same_household)
        for name in ("서연", "민준")
        for copy in (1, 2)
    ]  # two same-name pairs, four different-name pairs
    # Given names replaced in nine matches of ten: four different-name pairs are fewer than
    # the eighteen slips alone would give.
    assert twin_evidence(records, [0.9, 0.0, 0.0, 0.1]) < TWIN_EVIDENCE_MIN
    # Slips almost never seen: the same four pairs are evidence of twins.
    assert twin_evidence(records, [0.001, 0.0, 0.0, 0.999]) == 4.0


def test_untrained_parameters_assume_twins_and_the_cap_applies() -> None:
    params = default_params()
    assert params.twin_evidence is None and twins_expected(params)
    household = {"family_name": "신", "birth_date": "1951-05-19", "sex": "M",
                 "phone": "01012345678", "address": "강남구 테헤란로 9", "postal_code": "06236"}  # fmt: skip
    a, b = (
        profile("a", given_name="병식", **household),
        profile("b", given_name="철수", **household),
    )
    levels = compare(a, b)
    raw = params.score(a, b, levels)
    assert apply_rules(params, a, b, levels, raw) < params.thresholds.match <= raw
    no_twins = Params.from_json(params.to_json())
    no_twins.twin_evidence = 0.0
    assert apply_rules(no_twins, a, b, levels, raw) == raw


def test_twin_evidence_survives_the_parameter_file() -> None:
    params = default_params()
    params.twin_evidence = 3.5
    assert Params.from_json(params.to_json()).twin_evidence == 3.5
    assert Params.from_json("{}").twin_evidence is None


def test_a_file_without_twins_links_a_replaced_given_name() -> None:
    params = default_params()
    params.twin_evidence = 0.0
    index = PersonIndex(params, KEY)
    fields = {"family_name": "boothroyd", "birth_date": "1960-09-04", "postal_code": "6058",
              "address": "101 elkington street witsend", "phone": "0412345678"}  # fmt: skip
    first = index.link("a", profile("a", given_name="daniella", **fields), [])
    second = index.link("b", profile("b", given_name="lachlan", **fields), [])
    assert (second.outcome, second.person) == (MATCH, first.person)


# ----------------------------------------------------------------- households and newborns (D43)

MOTHER = {"family_name": "서", "given_name": "유리", "birth_date": "1979-03-26", "sex": "F",
          "phone": "010-4133-9371", "postal_code": "07486", "address": "서울 영등포구 번영로 233"}  # fmt: skip
MOTHER_RRN = "790326-2390619"


def test_newborn_aliases_are_recognised_and_names_are_not() -> None:
    from linkage.domain.names import is_newborn_alias

    for alias in (
        "유리아기",
        "유리 아기",
        "유리(아기)",
        "서유리아기",
        "아기",
        "여아",
        "남아",
        "유리여아2",
    ):
        assert is_newborn_alias(alias), alias
    for name in ("서연", "아기영", "남아영", None, ""):
        assert not is_newborn_alias(name), name


def test_a_newborn_alias_holds_neither_the_mothers_name_nor_her_number() -> None:
    alias = profile("b", **{**MOTHER, "given_name": "유리(아기)", "birth_date": "2014-09-03"},
                    rrn=MOTHER_RRN)  # fmt: skip
    assert (alias.family, alias.given, alias.latin, alias.rrn) == (None, None, (), None)
    # Her own number on her own record is kept.
    assert profile("m", **MOTHER, rrn=MOTHER_RRN).rrn is not None


def test_a_newborn_alias_joins_the_child_and_never_the_mother() -> None:
    index = PersonIndex(default_params(), KEY)
    mother = index.link("m1", profile("m1", **MOTHER, rrn=MOTHER_RRN), [])
    # The mother's record without a birth date: the one that used to let her baby in.
    index.link("m2", profile("m2", **{**MOTHER, "birth_date": None}), [])
    alias = index.link("b1", profile("b1", **{**MOTHER, "given_name": "유리아기",
                                              "birth_date": "2014-09-03"}, rrn=MOTHER_RRN), [])  # fmt: skip
    assert alias.person != mother.person
    child = index.link("b2", profile("b2", **{**MOTHER, "family_name": "김", "given_name": "세영",
                                              "birth_date": "2014-09-03"}), [])  # fmt: skip
    assert (child.outcome, child.person) == (MATCH, alias.person)
    assert index.refs["m1"].person == index.refs["m2"].person == mother.person


def test_a_newborn_alias_matching_twins_joins_neither() -> None:
    from linkage.domain.index import POSSIBLE_MATCH

    index = PersonIndex(default_params(), KEY)
    twin = {**MOTHER, "family_name": "안", "birth_date": "2017-03-05"}
    a = index.link("t1", profile("t1", **{**twin, "given_name": "유나"}), [])
    b = index.link("t2", profile("t2", **{**twin, "given_name": "가나"}), [])
    assert a.person != b.person
    alias = index.link("t3", profile("t3", **{**twin, "given_name": "혜원여아2"}), [])
    assert alias.outcome == POSSIBLE_MATCH
    assert {c.person for c in alias.candidates} == {a.person, b.person}
    # Later records of each twin stay with their own twin.
    again = index.link("t4", profile("t4", **{**twin, "given_name": "가나"}), [])
    assert again.person == b.person and index.refs["t1"].person == a.person


def test_a_household_member_is_at_most_a_review() -> None:
    params = default_params()
    father = profile(
        "f", **{**MOTHER, "given_name": "철수", "birth_date": "1975-01-02", "sex": "M"}
    )
    son = profile("s", **{**MOTHER, "given_name": "민준", "birth_date": "2005-06-07", "sex": "M"})
    levels = compare(father, son)
    assert apply_rules(params, father, son, levels, 40.0) < params.thresholds.match
    # An identifier both records carry says otherwise.
    shared = profile("s2", **{**MOTHER, "given_name": "민준", "birth_date": "2005-06-07",
                              "sex": "M"}, identifiers=(("nhis", "123"),))  # fmt: skip
    father_id = profile("f2", **{**MOTHER, "given_name": "철수", "birth_date": "1975-01-02",
                                 "sex": "M"}, identifiers=(("nhis", "123"),))  # fmt: skip
    levels = compare(father_id, shared)
    assert apply_rules(params, father_id, shared, levels, 40.0) == 40.0


# ------------------------------------------------------------------- romanised-only records (D44)


def test_a_romanised_only_record_is_compared_with_the_hangul_name_romanised() -> None:
    from linkage.domain.comparison import cross_script

    hangul = profile("h", family_name="최", given_name="정희", birth_date="1964-03-18")
    for latin in ({"name_latin": "CHOI JEONGHUI"}, {"family_name": "Choi", "given_name": "Jeong-hui"},
                  {"name_latin": "Jeonghui Choe"}):  # fmt: skip
        roman = profile("r", birth_date="1964-03-18", **latin)
        assert cross_script(hangul, roman) and cross_script(roman, hangul)
        levels = compare(hangul, roman)
        assert levels[:3] == (None, None, 2), latin  # names unknown, romanised name the same
    assert compare(hangul, profile("o", name_latin="Kim Minsu"))[2] == 0
    # Two Latin records (FEBRL) are compared as before.
    assert not cross_script(profile("a", family_name="smith"), profile("b", family_name="smyth"))


def test_a_romanised_only_record_does_not_glue_relatives_together() -> None:
    index = PersonIndex(default_params(), KEY)
    household = {"family_name": "이", "birth_date": "1990-03-07", "sex": "F",
                 "phone": "010-2222-3333", "address": "강남구 테헤란로 7", "postal_code": "06236"}  # fmt: skip
    a = index.link("a", profile("a", given_name="지은", **household), [])
    b = index.link("b", profile("b", given_name="지운", **household), [])
    assert a.person != b.person
    address = {k: v for k, v in household.items() if k != "family_name"}
    roman = index.link("r", profile("r", name_latin="LEE JIEUN", **address), [])
    assert index.refs["a"].person != index.refs["b"].person
    assert {c.person for c in roman.candidates} <= {a.person, b.person}
    # The rule itself: a romanised-only record never bridges a person named in Hangul; a Hangul
    # record, or a romanised one among romanised persons (FEBRL), may.
    from linkage.domain.rules import may_bridge

    hangul_person = [profile("a", given_name="지은", **household)]
    roman_only = profile("r", name_latin="LEE JIEUN", **address)
    assert not may_bridge(roman_only, hangul_person)
    assert may_bridge(roman_only, [profile("x", name_latin="Lee Jieun")])
    assert may_bridge(hangul_person[0], hangul_person)


def test_twin_markers_of_newborn_aliases() -> None:
    from linkage.domain.names import newborn_marker

    assert [newborn_marker(g) for g in ("영희아기", "아기1", "영희(아기)A", "민선 아기B", "서연")] == [
        "", "1", "1", "2", None,
    ]  # fmt: skip


def test_two_babies_of_one_birth_are_different_people_and_a_twin_alias_only_a_review() -> None:
    params = default_params()
    baby = {**MOTHER, "birth_date": "2014-05-20"}
    first, second = (
        profile("a", **{**baby, "given_name": "민선아기1"}),
        profile("b", **{**baby, "given_name": "민선 아기B"}),
    )
    levels = compare(first, second)
    assert apply_rules(params, first, second, levels, 40.0) < params.thresholds.review
    named = profile("c", **{**baby, "family_name": "고", "given_name": "승혁"})
    levels = compare(first, named)
    assert apply_rules(params, first, named, levels, 40.0) < params.thresholds.match
    # Unmarked, the alias is simply the baby.
    plain = profile("d", **{**baby, "given_name": "민선아기"})
    levels = compare(plain, named)
    assert apply_rules(params, plain, named, levels, 40.0) == 40.0


def test_profiles_stored_before_newborn_markers_still_load() -> None:
    alias = profile("a", **{**MOTHER, "given_name": "아기2"})
    assert Profile.from_list(alias.to_list()) == alias
    old = profile("m", **MOTHER).to_list()
    assert len(old) == 11 and Profile.from_list(old).newborn is None


# --------------------------------------------------------------------- phones (D-linkage-9)


def test_every_format_of_one_korean_number_is_one_key() -> None:
    from linkage.domain.profile import phone_key

    mobile = {"010-1234-5678", "01012345678", "+82 10 1234 5678", "+82-10-1234-5678",
              "(010)1234-5678", "010.1234.5678", "010 1234 5678", "82-10-1234-5678",
              "0082 10 1234 5678"}  # fmt: skip
    assert {phone_key(p) for p in mobile} == {"12345678"}
    assert phone_key("02-946-2883") == phone_key("+82 2 946 2883") == phone_key("(02)9462883")
    assert phone_key("010-9999-0000") != phone_key("010-1234-5678")
    assert phone_key("내선 12") is None and phone_key(None) is None


def test_a_romanised_only_record_needs_the_same_romanised_name_to_match() -> None:
    params = default_params()
    twin = {"birth_date": "2013-12-24", "sex": "M", "phone": "010-5527-5005",
            "address": "강남구 테헤란로 3", "postal_code": "06236"}  # fmt: skip
    hangul = profile("h", family_name="오", given_name="은우", **twin)
    for other in ("Eun Soo", "Jeong U"):  # similar, different
        roman = profile("r", family_name="O", given_name=other, **twin)
        levels = compare(hangul, roman)
        assert apply_rules(params, hangul, roman, levels, 40.0) < params.thresholds.match
    same = profile("s", family_name="Oh", given_name="Eun-u", **twin)
    levels = compare(hangul, same)
    assert levels[2] == 2 and apply_rules(params, hangul, same, levels, 40.0) == 40.0
    # A name that yields no letters at all is no name, not an error.
    assert compare(hangul, profile("x", family_name="123", **twin))[2] is None


def test_two_romanised_only_records_need_the_same_romanised_name() -> None:
    params = default_params()
    twin = {"birth_date": "1995-10-20", "sex": "M", "phone": "010-4345-7720",
            "address": "강남구 테헤란로 3", "postal_code": "06236"}  # fmt: skip
    a, b = (
        profile("a", name_latin="OH Do-hyun", **twin),
        profile("b", name_latin="Hyon-u Oh", **twin),
    )
    levels = compare(a, b)
    assert levels[:2] == (None, None) and levels[2] != 2
    assert apply_rules(params, a, b, levels, 40.0) < params.thresholds.match
    same = profile("c", name_latin="Do Hyun Oh", **twin)
    assert apply_rules(params, a, same, compare(a, same), 40.0) == 40.0


def test_a_romanised_only_record_without_a_birth_date_is_only_a_review() -> None:
    params = default_params()
    sister = profile("a", family_name="강", given_name="예현", birth_date="2011-07-16", sex="F",
                     phone="010-9078-2448")  # fmt: skip
    roman = profile("b", family_name="Kang", given_name="Ye-yun", sex="F", phone="01090782448")
    levels = compare(sister, roman)
    assert levels[2] == 2 and levels[3] is None  # 예현 and 예윤 fold alike
    assert apply_rules(params, sister, roman, levels, 40.0) < params.thresholds.match


def test_a_merely_similar_given_name_is_the_twin_pattern() -> None:
    params = default_params()
    params.tf["given"] = {"katherine": 0.01}  # kathryn rare: it would pass as a slip if close
    household = {"family_name": "kim", "birth_date": "2011-07-16", "sex": "F",
                 "phone": "010-5308-1166", "address": "3 elm street", "postal_code": "06236"}  # fmt: skip
    a, b = (
        profile("a", given_name="katherine", **household),
        profile("b", given_name="kathryn", **household),
    )
    levels = compare(a, b)
    assert levels[1] == 1  # weak: more than one edit apart
    assert apply_rules(params, a, b, levels, 40.0) < params.thresholds.match


def test_another_romanisation_system_is_the_same_romanised_name() -> None:
    hangul = profile("h", family_name="오", given_name="성철", birth_date="1957-11-06")
    for spelling in ("Oh Sungchul", "OH Seong-cheol", "Myungran Kim"):
        roman = profile("r", name_latin=spelling, birth_date="1957-11-06")
        expected = 0 if spelling.startswith("Myungran") else 2
        assert compare(hangul, roman)[2] == expected, spelling
