"""The linkage engine: Korean name rules, Fellegi-Sunter decisions, clusters that change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from linkage.domain import names
from linkage.domain.comparison import compare
from linkage.domain.index import MATCH, MERGED, NEW_PERSON, POSSIBLE_MATCH, PersonIndex
from linkage.domain.profile import Identity, make_profile, rrn_checks
from linkage.domain.rules import apply_rules
from linkage.domain.training import estimate
from linkage.domain.weights import Params, default_params
from linkage.evaluate import evaluate_file, link_records

KEY = b"k" * 32
RRN = "971013-9019902"  # valid test value (python-stdnum); born 1897-10-13, male


def ident(record_id: str, **fields: object) -> Identity:
    base: dict[str, object] = {
        "family_name": "김", "given_name": "서연", "birth_date": "1990-03-07", "sex": "F",
        "phone": "010-1234-5678", "postal_code": "06236", "address": "서울특별시 강남구 테헤란로 152",
    }  # fmt: skip
    base.update(fields)
    return Identity(record_id=record_id, **base)  # type: ignore[arg-type]


def link(index: PersonIndex, identity: Identity) -> tuple[str, str]:
    result = index.link(identity.record_id, make_profile(identity, KEY), [])
    return result.outcome, result.person


@pytest.fixture
def index() -> PersonIndex:
    return PersonIndex(default_params(), KEY)


# ------------------------------------------------------------------------------- Korean names


def test_initial_sound_spellings_are_one_surname() -> None:
    for a, b in (("류", "유"), ("리", "이"), ("림", "임"), ("로", "노"), ("량", "양")):
        assert names.canonical_surname(a) == names.canonical_surname(b)
    assert names.canonical_surname("김") != names.canonical_surname("이")


def test_romanised_surname_spellings_fold_together() -> None:
    for group in (("Lee", "Yi", "Rhee"), ("Park", "Pak", "Bak"), ("Jung", "Jeong", "Chung")):
        assert len({names.canonical_surname(x) for x in group}) == 1
    assert names.canonical_surname("Park") != names.canonical_surname("Lee")


def test_latin_names_match_in_either_order_and_with_hyphens() -> None:
    a = names.latin_forms("Hong Gil-dong")
    for other in ("Gildong Hong", "HONG GIL DONG", "Hong Kildong"):
        assert set(a) & set(names.latin_forms(other.lower()))
    assert not set(a) & set(names.latin_forms("kim minjun"))


def test_one_jamo_typo_is_a_close_given_name() -> None:
    a = make_profile(ident("a"), KEY)
    b = make_profile(ident("b", given_name="서영"), KEY)  # 연/영: one final consonant
    c = make_profile(ident("c", given_name="민준"), KEY)
    assert compare(a, b)[1] == 2
    assert compare(a, c)[1] == 0


def test_birth_date_day_month_swap_and_one_digit_are_near() -> None:
    a = make_profile(ident("a"), KEY)
    swapped = make_profile(ident("b", birth_date="1990-07-03"), KEY)
    digit = make_profile(ident("c", birth_date="1990-03-08"), KEY)
    other = make_profile(ident("d", birth_date="1985-11-21"), KEY)
    assert compare(a, swapped)[3] == 1
    assert compare(a, digit)[3] == 1
    assert compare(a, other)[3] == 0


def test_registration_number_is_checked_against_birth_date_and_sex() -> None:
    assert rrn_checks("9710139019902", "18971013", "M") == (True, True)
    assert rrn_checks("9710139019902", "18971013", "F")[0] is False
    assert rrn_checks("9710139019902", "19971013", "M")[0] is False
    assert rrn_checks("9710139019903", "18971013", "M") == (True, False)


def test_profile_holds_no_registration_number() -> None:
    profile = make_profile(ident("a", rrn=RRN, birth_date="1897-10-13", sex="M"), KEY)
    assert "9710139019902" not in json.dumps(profile.to_list())
    assert profile.rrn is not None and profile.rrn_strong


# ------------------------------------------------------------------------------- decisions


def test_same_person_with_variants_is_matched(index: PersonIndex) -> None:
    mrn = (("mrn", "A1"),)
    outcome, first = link(index, ident("h1", identifiers=mrn))
    assert outcome == NEW_PERSON
    variants = [
        # Jamo typo: with an identifier that agrees (without one it is the twin pattern below).
        ident("h2", family_name="김", given_name="서영", identifiers=mrn),
        ident("h3", birth_date="1990-07-03", phone="010-9999-0000"),  # swap + new phone
        ident("h4", address="부산광역시 해운대구 센텀로 1", postal_code="48058"),  # moved
    ]
    for identity in variants:
        outcome, person = link(index, identity)
        assert (outcome, person) == (MATCH, first)


def test_initial_sound_variant_links(index: PersonIndex) -> None:
    _, first = link(index, ident("h1", family_name="류", given_name="지훈", sex="M"))
    outcome, person = link(index, ident("h2", family_name="유", given_name="지훈", sex="M"))
    assert (outcome, person) == (MATCH, first)


def test_twins_stay_separate(index: PersonIndex) -> None:
    _, first = link(index, ident("h1", given_name="서연"))
    outcome, second = link(index, ident("h2", given_name="하준", sex="M"))
    assert second != first
    outcome, third = link(index, ident("h3", given_name="지호"))
    assert third not in (first, second)
    assert outcome in (NEW_PERSON, POSSIBLE_MATCH)


def _with_given_names(shares: dict[str, float]) -> Params:
    params = default_params()
    params.tf["given"] = shares  # as training learns them from the data
    return params


# Same household: surname, birth date, address, phone; no registration number.
TWIN = {"family_name": "신", "birth_date": "1951-05-19", "sex": "M"}


@pytest.mark.parametrize(
    "params",
    [default_params(), _with_given_names({"병식": 0.002, "병석": 0.001, "서연": 0.01})],
    ids=["untrained", "both-names-established"],
)
def test_twins_one_jamo_apart_are_not_matched(params: Params) -> None:
    index = PersonIndex(params, KEY)
    _, first = link(index, ident("h1", given_name="병식", **TWIN))
    result = index.link("h2", make_profile(ident("h2", given_name="병석", **TWIN), KEY), [])
    assert result.outcome == POSSIBLE_MATCH  # a reviewer decides, never an automatic merge
    assert result.person != first
    assert result.reason.startswith("FAMILY_SAME,GIVEN_CLOSE,BIRTH_SAME")


@pytest.mark.parametrize(
    "params",
    [default_params(), _with_given_names({"민지": 0.01})],  # 민재 rare: would pass as a slip
    ids=["untrained", "one-name-rare"],
)
def test_boy_girl_twins_with_close_names_never_match(params: Params) -> None:
    index = PersonIndex(params, KEY)
    _, first = link(index, ident("h1", family_name="구", given_name="민지", sex="F"))
    outcome, second = link(index, ident("h2", family_name="구", given_name="민재", sex="M"))
    assert outcome != MATCH and second != first


def test_typo_with_an_agreeing_identifier_still_matches(index: PersonIndex) -> None:
    mrn = (("mrn", "H-001234"),)
    _, first = link(index, ident("h1", given_name="병식", identifiers=mrn, **TWIN))
    outcome, person = link(index, ident("h2", given_name="병석", identifiers=mrn, **TWIN))
    assert (outcome, person) == (MATCH, first)


def test_typo_that_is_a_rare_slip_still_matches_on_household_fields() -> None:
    # 서영 seen far less often than 서연 (or not at all): a slip, not a sister's name; the same
    # birth date, address and phone then carry the match.
    for shares in ({"서연": 0.01}, {"서연": 0.01, "서영": 0.0005}):
        index = PersonIndex(_with_given_names(shares), KEY)
        _, first = link(index, ident("h1"))
        outcome, person = link(index, ident("h2", given_name="서영"))
        assert (outcome, person) == (MATCH, first)


def test_namesakes_stay_separate(index: PersonIndex) -> None:
    _, first = link(index, ident("h1"))
    _, other = link(
        index,
        ident("h2", birth_date="1990-11-24", phone="010-5555-4444", postal_code="41931",
              address="대구광역시 중구 동덕로 10"),
    )  # fmt: skip
    assert other != first


def test_valid_registration_number_links_deterministically(index: PersonIndex) -> None:
    born = {"birth_date": "1897-10-13", "sex": "M", "rrn": RRN}
    _, first = link(index, ident("h1", **born))
    result = index.link(
        "h2",
        make_profile(ident("h2", **born, family_name="박", given_name="철수", phone=None), KEY),
        [],
    )
    assert (result.outcome, result.person, result.rule) == (MATCH, first, "rrn-exact")


def test_different_valid_registration_numbers_are_different_people(index: PersonIndex) -> None:
    born = {"birth_date": "1897-10-13", "sex": "M"}
    _, first = link(index, ident("h1", rrn=RRN, **born))
    # Another valid number with the same date part: the twin brother.
    _, second = link(index, ident("h2", rrn="971013-9019918", **born))
    assert rrn_checks("9710139019918", "18971013", "M") == (True, True)
    assert second != first


def test_bridging_record_merges_persons_older_id_survives(index: PersonIndex) -> None:
    _, a = link(index, ident("h1", phone="010-1111-1111", postal_code=None, address=None))
    _, b = link(
        index,
        ident("h2", given_name="서영", birth_date="1990-07-30", phone="010-2222-2222",
              postal_code=None, address=None),
    )  # fmt: skip
    assert a != b
    result = index.link(
        "h1", make_profile(ident("h1", given_name="서영", birth_date="1990-07-30",
                                 phone="010-2222-2222"), KEY), [],
    )  # fmt: skip
    assert result.person == a
    [moved] = result.changes
    assert (moved.ref, moved.person, moved.previous, moved.outcome) == ("h2", a, b, MERGED)
    assert moved.sequence == 1
    assert b not in index.persons


def test_split_and_hospital_merge(index: PersonIndex) -> None:
    _, a = link(index, ident("h1"))
    _, same = link(index, ident("h2", phone=None))
    assert same == a
    [split] = index.split_ref("h2", "review")
    assert split.previous == a and split.person != a and split.outcome == "SPLIT"
    [merged] = index.merge_refs("h1", "h2", "hospital-merge")
    assert merged.person == a and merged.previous == split.person
    assert index.refs["h2"].sequence == 2


def test_same_order_gives_same_ids_and_restore_continues_identically() -> None:
    records = [ident(f"r{i}", given_name=g) for i, g in enumerate(["서연", "민준", "서연", "지호"])]
    first = PersonIndex(default_params(), KEY)
    ids = [link(first, r)[1] for r in records]
    second = PersonIndex(default_params(), KEY)
    assert [link(second, r)[1] for r in records] == ids
    restored = PersonIndex(default_params(), KEY)
    restored.load(list(first.refs.items())[:2], list(first.persons.items()), first.counter)
    assert restored.blocks  # rebuilt from the refs


# ------------------------------------------------------------------------------- training, CLI


def test_em_learns_that_matches_agree_more_than_non_matches() -> None:
    records = []
    for i in range(300):
        records.append(ident(f"a{i}", given_name=f"이름{i}", birth_date=f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}",
                             phone=f"010-0000-{i:04d}", postal_code=f"{10000 + i}", address=f"길 {i}"))  # fmt: skip
        if i % 3 == 0:
            records.append(ident(f"b{i}", given_name=f"이름{i}", birth_date=f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}",
                                 phone=None, postal_code=f"{10000 + i}", address=f"길 {i}"))  # fmt: skip
    params = estimate([make_profile(r, KEY) for r in records], default_params(), random_pairs=20000)
    assert params.m["birth"][2] > 0.9 > params.u["birth"][2]
    assert params.m["given"][3] > params.u["given"][3]
    assert -20 < params.prior_log2 < 0
    reread = Params.from_json(params.to_json())
    assert reread.m == params.m and reread.tf == params.tf


def test_evaluate_writes_assignments_and_scores(tmp_path: Path) -> None:
    rows = [
        {"record_id": "1", "family_name": "Smith", "given_name": "John", "birth_date": "1970-01-02",
         "sex": "M", "postal_code": "2000", "identifiers": {"mrn": "A1"}},
        {"record_id": "2", "family_name": "Smyth", "given_name": "John", "birth_date": "1970-02-01",
         "sex": "M", "postal_code": "2000", "identifiers": {"mrn": "A1"}},
        {"record_id": "3", "family_name": "Jones", "given_name": "Mary", "birth_date": "1980-05-06"},
    ]  # fmt: skip
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    truth = tmp_path / "truth.jsonl"
    truth.write_text("".join(json.dumps({"record_id": r, "entity_id": e}) + "\n"
                             for r, e in (("1", "x"), ("2", "x"), ("3", "y"))))  # fmt: skip
    out = tmp_path / "out.jsonl"
    run = evaluate_file(source, out, KEY, truth, trained=False)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["record_id"] for line in lines] == ["1", "2", "3"]
    assert lines[0]["person_id"] == lines[1]["person_id"] != lines[2]["person_id"]
    assert run.scores is not None and run.scores.f1 == 1.0


def test_link_records_is_order_stable_for_ids() -> None:
    records = [(ident(f"r{i}"), None) for i in range(3)]
    a = link_records(records, KEY, trained=False)
    b = link_records(records, KEY, trained=False)
    assert a.assignments == b.assignments
    assert len(set(a.assignments.values())) == 1


# ------------------------------------------------------------------------------- comparisons


def test_swapped_names_are_credited_crosswise() -> None:
    a = make_profile(ident("a", family_name="White", given_name="Brandon"), KEY)
    b = make_profile(ident("b", family_name="Brandon", given_name="Whtie"), KEY)
    family, given = compare(a, b)[:2]
    assert family == 1  # white / whtie: two letters swapped
    assert given == 2  # brandon / brandon, one level lower for the swap


def test_postal_code_one_digit_off_is_a_weak_address_agreement() -> None:
    a = make_profile(ident("a", postal_code="52350", address="x"), KEY)
    b = make_profile(ident("b", postal_code="52530", address="y"), KEY)
    c = make_profile(ident("c", postal_code="71111", address="y"), KEY)
    assert compare(a, b)[8] == 1
    assert compare(a, c)[8] == 0


def test_record_without_birth_date_and_with_misspelt_surname_is_still_a_candidate(
    index: PersonIndex,
) -> None:
    link(index, ident("a", family_name="Belperio", given_name="Harriet", phone=None))
    profile = make_profile(
        ident("b", family_name="Belperi", given_name="Harriet", birth_date=None, phone=None), KEY
    )
    assert index.candidates(profile, exclude=None)


def test_upper_bound_is_never_below_the_score() -> None:
    variants: list[dict[str, object]] = [
        {}, {"given_name": "서영"}, {"given_name": "민준"}, {"family_name": "서연", "given_name": "김"},
        {"family_name": "서연", "given_name": "민수"}, {"family_name": "박", "given_name": "김"},
        {"family_name": "이"}, {"family_name": "리"}, {"birth_date": "1990-07-03"},
        {"birth_date": "1985-11-21", "sex": "M"}, {"phone": None}, {"phone": "010-9999-0000"},
        {"postal_code": "06237"}, {"postal_code": None}, {"address": None},
        {"address": "서울 강남구 테헤란로 150", "postal_code": "99999"}, {"name_latin": "Kim Seoyeon"},
        {"identifiers": (("mrn", "A1"),)}, {"identifiers": (("mrn", "A2"),)},
        {"rrn": RRN, "birth_date": "1897-10-13", "sex": "M"}, {"given_name": None},
    ]  # fmt: skip
    profiles = [make_profile(ident(str(i), **v), KEY) for i, v in enumerate(variants)]
    trained = estimate(profiles * 3, default_params(), random_pairs=2000)
    for params in (default_params(), trained):
        for a in profiles:
            for b in profiles:
                levels = compare(a, b)
                exact = apply_rules(params, a, b, levels, params.score(a, b, levels))
                assert params.upper_bound(a, b) >= exact - 1e-9


def test_pruned_candidates_do_not_change_any_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        (ident(f"r{i}", given_name=g, birth_date=d, phone=p), None)
        for i, (g, d, p) in enumerate(
            [("서연", "1990-03-07", None), ("서영", "1990-03-07", None), ("민준", "1990-03-07", None),
             ("서연", "1990-07-03", "010-1111-2222"), ("지우", "1991-01-01", None),
             ("서연", "1990-03-07", "010-1111-2222")]
        )
    ]  # fmt: skip
    pruned = link_records(records, KEY, trained=False)
    monkeypatch.setattr(Params, "upper_bound", lambda self, a, b: float("inf"))
    full = link_records(records, KEY, trained=False)
    assert pruned.assignments == full.assignments and pruned.outcomes == full.outcomes


def test_u_is_learnt_from_non_matches_in_a_file_full_of_duplicates() -> None:
    # Every person twice: among random pairs the true pairs are about the only ones agreeing on a
    # birth date, so u of "same birth date" must come out far below the share of true pairs.
    records = []
    for i in range(200):
        fields = {"given_name": f"이름{i}", "birth_date": f"19{10 + i % 80}-0{1 + i % 9}-1{i % 10}",
                  "phone": f"010-0000-{i:04d}", "postal_code": f"{10000 + i}", "address": f"길 {i}"}  # fmt: skip
        records += [ident(f"a{i}", **fields), ident(f"b{i}", **fields)]
    params = estimate([make_profile(r, KEY) for r in records], default_params(), random_pairs=40000)
    true_pair_share = 200 / (400 * 399 / 2)
    assert params.u["birth"][2] < true_pair_share / 5


def test_latin_name_adds_nothing_when_both_names_agree() -> None:
    a = make_profile(ident("a", name_latin="Kim Seoyeon"), KEY)
    b = make_profile(ident("b", name_latin="Seoyeon Kim", birth_date="1971-01-01"), KEY)
    c = make_profile(ident("c", given_name="서윤", name_latin="Kim Seoyeon"), KEY)
    assert compare(a, b)[2] is None  # a namesake shares the Latin name too
    assert compare(a, c)[2] == 2
