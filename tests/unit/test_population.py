"""The second, independent Korean population generator (D40): determinism, rates, households,
twins, newborn aliases, romanised-only records, phone formats, and records `linkage evaluate`
reads."""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from biostream_dev.population import UNSEEN_RATES_PATH, Rates, generate
from biostream_dev.population.__main__ import main
from biostream_dev.population.names import jamo_slip, latin_name
from biostream_dev.population.people import TODAY, Household, PopulationBuilder
from biostream_dev.population.places import format_phone
from biostream_dev.population.records import RecordMaker
from linkage.adapters.jsonl import identity_from_json

HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
PERSONS = 3000


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("population")
    written = generate(out, PERSONS, seed=11)
    return {
        "out": out,
        "summary": written.summary,
        "records": _lines(out / "records.jsonl"),
        "truth": {r["record_id"]: r["entity_id"] for r in _lines(out / "truth.jsonl")},
        "patterns": {r["record_id"]: r for r in _lines(out / "patterns.jsonl")},
    }


def _households(seed: int, count: int) -> list[Household]:
    builder = PopulationBuilder(random.Random(seed), Rates())
    return [builder.household(10) for _ in range(count)]


def _digits(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return "0" + digits[2:] if digits.startswith("82") else digits


# ------------------------------------------------------------------------------ files


def test_the_same_seed_gives_the_same_files_and_another_seed_others(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(tmp_path / name, 300, seed)
    for file in ("records.jsonl", "truth.jsonl", "patterns.jsonl", "summary.json", "rates.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a" / "records.jsonl").read_bytes() != (
        tmp_path / "c" / "records.jsonl"
    ).read_bytes()


def test_the_truth_and_the_tags_cover_every_record_once(population: dict[str, Any]) -> None:
    ids = [r["record_id"] for r in population["records"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(population["truth"]) == set(population["patterns"])
    assert len(set(population["truth"].values())) == PERSONS
    assert population["summary"]["records"] == len(ids)


def test_every_record_is_input_linkage_evaluate_reads(population: dict[str, Any]) -> None:
    keys = {"record_id", "source", "family_name", "given_name", "name_latin", "birth_date", "sex",
            "identifiers", "phone", "postal_code", "address"}  # fmt: skip
    for raw in population["records"]:
        assert set(raw) <= keys
        identity, source = identity_from_json(raw)
        assert source == raw["source"] and identity.record_id == raw["record_id"]
        assert raw["sex"] in ("M", "F", "U")
        assert f"{raw['source']}-mrn" in raw["identifiers"]
        if raw.get("birth_date"):
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw["birth_date"])


def test_the_command_writes_the_files_and_the_rates_it_used(tmp_path: Path) -> None:
    main(["--persons", "200", "--seed", "3", "--out", str(tmp_path), "--rates",
          str(UNSEEN_RATES_PATH), "--hospitals", "5"])  # fmt: skip
    for name in ("records.jsonl", "truth.jsonl", "patterns.jsonl", "rates.json", "summary.json"):
        assert (tmp_path / name).is_file()
    used = Rates.load(tmp_path / "rates.json")
    assert used == Rates.from_json({**Rates.load(UNSEEN_RATES_PATH).to_json(), "hospitals": 5})
    assert used.romanised_only > Rates().romanised_only
    assert used.born_in_hospital_alias > Rates().born_in_hospital_alias
    assert {r["source"] for r in _lines(tmp_path / "records.jsonl")} <= {
        f"H00{n}" for n in range(1, 6)
    }


def test_unknown_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown rates"):
        Rates.from_json({"romanized_only": 0.1})


# ------------------------------------------------------------------------------ rates


def test_the_rates_hold_at_a_few_thousand_persons(population: dict[str, Any]) -> None:
    rates, summary = Rates(), population["summary"]
    records = population["records"]
    tags = Counter(t for p in population["patterns"].values() for t in p["tags"])
    households = summary["households"]
    assert summary["households:single"] / households == pytest.approx(
        rates.single_person_households, abs=0.04
    )
    twins = 2 * summary["twin_pairs"] / summary["children"]
    assert twins == pytest.approx(rates.twin_share_of_children, abs=0.015)
    assert summary["twin_pairs:boy_girl"] > 0 and summary["twin_pairs:same_sex"] > 0
    assert len(records) / PERSONS == pytest.approx(3.4, abs=0.3)
    assert tags["romanised_only"] / len(records) == pytest.approx(rates.romanised_only, abs=0.01)
    with_rrn = sum(1 for r in records if "rrn" in r["identifiers"])
    assert with_rrn / len(records) == pytest.approx(rates.rrn_present, abs=0.04)
    assert tags["jamo_typo"] / len(records) == pytest.approx(rates.jamo_typo, abs=0.01)
    assert tags["newborn_alias"] == summary["newborn_alias"] > 0
    assert tags["old_registration"] == summary["old_registration"] > 0
    per_person = Counter(population["truth"].values())
    counts = Counter(per_person.values())
    assert counts[1] + counts[2] > PERSONS * 0.4  # many with 1-2 records
    assert sum(n for k, n in counts.items() if k >= 10) > PERSONS * 0.02  # a heavy tail


def test_every_phone_format_occurs(population: dict[str, Any]) -> None:
    phones = [r["phone"] for r in population["records"] if r.get("phone")]
    patterns = {
        "dash": r"0\d{1,2}-\d{3,4}-\d{4}", "plain": r"0\d{8,10}",
        "intl_space": r"\+82 \d{1,2} \d{3,4} \d{4}", "intl_dash": r"\+82-\d{1,2}-\d{3,4}-\d{4}",
        "paren": r"\(0\d{1,2}\)\d{3,4}-\d{4}", "dot": r"0\d{1,2}\.\d{3,4}\.\d{4}",
        "space": r"0\d{1,2} \d{3,4} \d{4}", "intl_noplus": r"82-\d{1,2}-\d{3,4}-\d{4}",
    }  # fmt: skip
    for name, pattern in patterns.items():
        assert any(re.fullmatch(pattern, p) for p in phones), name
    assert any(re.fullmatch(r"02-\d{3,4}-\d{4}", p) for p in phones)  # a Seoul landline
    assert any(re.fullmatch(r"0[3-6]\d-\d{3,4}-\d{4}", p) for p in phones)
    assert format_phone("01012345678", "intl_space") == "+82 10 1234 5678"
    assert format_phone("0212345678", "paren") == "(02)1234-5678"


# ------------------------------------------------------------------------------ households


def test_siblings_share_surname_and_differ_in_given_name_and_birth_date() -> None:
    families = [h for h in _households(21, 600) if sum(p.role == "child" for p in h.members) > 1]
    assert families
    for home in families:
        children = [p for p in home.members if p.role == "child"]
        assert len({c.family for c in children}) == 1
        assert len({c.given for c in children}) == len(children)
        for i, a in enumerate(children):
            for b in children[i + 1 :]:
                if a.twin_of == b.entity_id:
                    assert a.birth == b.birth
                else:
                    assert abs(a.birth.year - b.birth.year) >= 1


def test_children_are_registered_with_the_family_address_and_a_parents_phone() -> None:
    rng = random.Random(4)
    maker = RecordMaker(rng, Rates(), ["H001", "H002", "H003"])
    builder = PopulationBuilder(rng, Rates())
    checked = 0
    for _ in range(800):
        home = builder.household(10)
        parents = [p for p in home.members if p.role == "parent"]
        contacts = {p.mobile for p in parents} | {home.landline}
        for child in (p for p in home.members if p.role == "child"):
            for draft in maker.records_for(child, home):
                young = child.age_in(draft.year) < Rates().child_own_phone_age
                if not young or "old_registration" in draft.tags or "romanised_only" in draft.tags:
                    continue
                if draft.fields.get("postal_code"):
                    assert draft.fields["postal_code"] == home.address.postal_code
                if draft.fields.get("phone"):
                    assert _digits(draft.fields["phone"]) in contacts
                    checked += 1
    assert checked > 100


def test_a_newborn_alias_carries_the_mothers_name_the_babys_birth_and_the_mothers_phone() -> None:
    rng = random.Random(9)
    rates = Rates(born_in_hospital_alias=1.0, missing_phone=0.0)
    maker, builder = RecordMaker(rng, rates, ["H001", "H002"]), PopulationBuilder(rng, rates)
    forms: Counter[str] = Counter()
    for _ in range(1500):
        home = builder.household(10)
        for child in (p for p in home.members if p.role == "child"):
            if child.birth.year < TODAY.year - 20 or child.mother is None:
                continue
            drafts = maker.records_for(child, home)
            alias = drafts[0]
            assert "newborn_alias" in alias.tags
            assert all("newborn_alias" not in d.tags for d in drafts[1:])
            f, mother = alias.fields, child.mother
            assert re.search(r"아기|여아|남아", f["given_name"])
            if f["given_name"].startswith("아기"):
                forms["아기"] += 1
            else:
                assert mother.given in f["given_name"]
                assert f.get("family_name", mother.family) == mother.family
                forms["mother"] += 1
            if "여아" in f["given_name"] or "남아" in f["given_name"]:
                assert ("여아" in f["given_name"]) == (child.sex == "F")
            assert f["birth_date"] == child.birth.isoformat() != mother.birth.isoformat()
            assert f["sex"] == child.sex
            assert _digits(f["phone"]) in {mother.mobile, home.landline}
    assert forms["아기"] > 0 and forms["mother"] > forms["아기"]


def test_romanised_only_records_hold_no_hangul(population: dict[str, Any]) -> None:
    tagged = [
        r for r in population["records"]
        if "romanised_only" in population["patterns"][r["record_id"]]["tags"]
    ]  # fmt: skip
    assert tagged
    layouts = Counter()
    for record in tagged:
        assert not HANGUL.search(json.dumps(record, ensure_ascii=False)), record["record_id"]
        assert record.get("name_latin") or record.get("family_name")
        layouts["name_latin only" if "family_name" not in record else "split"] += 1
    assert layouts["name_latin only"] and layouts["split"]


def test_latin_names_come_in_the_forms_foreign_systems_write() -> None:
    rng = random.Random(1)
    written = {latin_name(rng, "홍", "길동")[3] for _ in range(400)}
    assert {"HONG, GIL DONG", "Gil-dong Hong", "Hong Gildong", "HONG GILDONG"} <= written
    surnames = {latin_name(rng, "이", "민준")[1].title() for _ in range(400)}
    assert {"Lee", "Yi", "Rhee"} <= surnames
    assert any(
        name.startswith("Kil") for name in {latin_name(rng, "홍", "길동")[2] for _ in range(400)}
    )


def test_a_jamo_slip_changes_one_jamo_of_the_given_name() -> None:
    rng = random.Random(2)
    slips = {jamo_slip(rng, "서연") for _ in range(200)}
    assert "서영" in slips and "서연" not in slips
    assert "민중" in {jamo_slip(rng, "민준") for _ in range(200)}


def test_old_registrations_are_years_old_and_mostly_share_an_identifier(
    population: dict[str, Any],
) -> None:
    records = {r["record_id"]: r for r in population["records"]}
    by_entity: defaultdict[str, list[str]] = defaultdict(list)
    for record_id, entity in population["truth"].items():
        by_entity[entity].append(record_id)
    old = [rid for rid, p in population["patterns"].items() if "old_registration" in p["tags"]]
    shared = 0
    for rid in old:
        assert population["patterns"][rid]["year"] <= TODAY.year - 8
        ids = set(records[rid]["identifiers"].items())
        others = [records[o] for o in by_entity[population["truth"][rid]] if o != rid]
        norm = {(k, v.replace("-", "")) for k, v in ids}
        if any(
            norm & {(k, v.replace("-", "")) for k, v in o["identifiers"].items()} for o in others
        ):
            shared += 1
    assert shared / len(old) == pytest.approx(Rates().old_registration_shared_id, abs=0.12)


def test_the_benchmark_names_the_pattern_of_every_wrong_and_missed_pair() -> None:
    from biostream_harness.bench.linkage import error_classes

    def tag(household: str, role: str, *tags: str, twin: str | None = None,
            mother: str | None = None) -> dict[str, Any]:  # fmt: skip
        return {"tags": list(tags), "household": household, "role": role, "twin_of": twin,
                "mother": mother}  # fmt: skip

    patterns = {
        "mum": tag("F1", "parent"), "alias": tag("F1", "child", "newborn_alias", mother="P1"),
        "kid": tag("F1", "child", mother="P1"), "twin-a": tag("F2", "child", twin="P5"),
        "twin-b": tag("F2", "child", twin="P4"), "old": tag("F3", "single", "old_registration"),
        "new": tag("F3", "single"),
    }  # fmt: skip
    truth = {"mum": "P1", "alias": "P2", "kid": "P2", "twin-a": "P4", "twin-b": "P5",
             "old": "P6", "new": "P6"}  # fmt: skip
    assigned = {"mum": "c1", "alias": "c1", "kid": "c2", "twin-a": "c3", "twin-b": "c3",
                "old": "c4", "new": "c5"}  # fmt: skip
    classes = error_classes(assigned, truth, patterns)
    assert classes["wrong_pairs"] == {"newborn alias joined mother": 1, "twin": 1}
    assert classes["missed_pairs"] == {
        "newborn alias missed child": 1,
        "old registration missed": 1,
    }
    assert classes["twin_pairs_merged"] == {"pairs": 1}
