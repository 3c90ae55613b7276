"""The synthetic feed generator: determinism, Korean identifier rules, formats, ground truth."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from biostream_dev.synth import (
    CSV_COLUMNS,
    KCD_SYSTEMS,
    LOINC_SYSTEM,
    RRN_SYSTEM,
    FeedManifest,
    Person,
    TruthRecord,
    canary_values,
    generate_feed,
    generate_population,
    hangul,
    iter_canaries,
    mrn_system,
    read_truth,
    rrn,
)
from biostream_dev.synth.__main__ import main
from biostream_dev.synth.people import cohort_of, popular_names
from biostream_dev.synth.reference import PROVINCES, Province

SEED = 7
PERSONS = 1500
MALFORMED_RATE = 0.03


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FeedManifest]:
    out = tmp_path_factory.mktemp("feed")
    manifest = generate_feed(out, persons=PERSONS, seed=SEED, malformed_rate=MALFORMED_RATE)
    return out, manifest


@pytest.fixture(scope="module")
def truth(feed: tuple[Path, FeedManifest]) -> list[TruthRecord]:
    return read_truth(feed[0])


@pytest.fixture(scope="module")
def people(feed: tuple[Path, FeedManifest]) -> dict[str, Person]:
    return {p.entity_id: p for p in generate_population(PERSONS, seed=SEED)}


@pytest.fixture(scope="module")
def population() -> list[Person]:
    return generate_population(10_000, seed=11)


def _lines(out: Path, hospital: str, fmt: str) -> list[str]:
    name = "fhir.ndjson" if fmt == "fhir" else "visits.csv"
    return (out / hospital / name).read_text(encoding="utf-8").splitlines()


def _message(out: Path, record: TruthRecord, cache: dict[tuple[str, str], list[str]]) -> str:
    key = (record.hospital, record.format)
    if key not in cache:
        cache[key] = _lines(out, *key)
    return cache[key][record.line - 1]


def _csv_fields(line: str) -> list[str]:
    return next(csv.reader([line]))


def _patient(bundle: dict[str, Any]) -> dict[str, Any]:
    patients: list[dict[str, Any]] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert len(patients) == 1
    return patients[0]


def _province_by_state(name: str) -> Province:
    for prov in PROVINCES:
        if name in (prov.name, prov.short, prov.legacy_name):
            return prov
    raise AssertionError(f"unknown province name {name!r}")


def _postal_matches(prov: Province, postal: str) -> bool:
    lo, hi = prov.postal_range
    return len(postal) == 5 and postal.isdigit() and lo <= int(postal[:2]) <= hi


def _identity(record: TruthRecord, line: str) -> dict[str, Any]:
    """family, given, birth date, sex and RRN as written in a well-formed message."""
    if record.format == "csv":
        f = _csv_fields(line)
        return {
            "family": f[2],
            "given": f[3],
            "birth": f[4],
            "sex": f[5],
            "rrn": f[6] or None,
            "phone": f[7] or None,
        }
    patient = _patient(json.loads(line))
    rrns = [i["value"] for i in patient["identifier"] if i["system"] == RRN_SYSTEM]
    return {
        "family": patient["name"][0]["family"],
        "given": patient["name"][0]["given"][0],
        "birth": patient["birthDate"],
        "sex": "M" if patient["gender"] == "male" else "F",
        "rrn": rrns[0] if rrns else None,
        "phone": patient["telecom"][0]["value"] if "telecom" in patient else None,
    }


# --------------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    generate_feed(tmp_path / "a", persons=300, seed=3, malformed_rate=0.05)
    generate_feed(tmp_path / "b", persons=300, seed=3, malformed_rate=0.05)
    generate_feed(tmp_path / "c", persons=300, seed=4, malformed_rate=0.05)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) == 8  # 3 hospitals x 2 files + truth + manifest
    assert a == b
    assert a["truth.jsonl"] != c["truth.jsonl"]


def test_population_does_not_depend_on_feed_settings(tmp_path: Path) -> None:
    assert generate_population(200, seed=5) == generate_population(200, seed=5)
    generate_feed(tmp_path / "x", persons=200, seed=5, hospitals=2, malformed_rate=0.0)
    generate_feed(tmp_path / "y", persons=200, seed=5, hospitals=2, malformed_rate=0.2)
    x, y = read_truth(tmp_path / "x"), read_truth(tmp_path / "y")
    # Same messages in the same places; only which ones are broken differs.
    assert [(r.message_id, r.line) for r in x] == [(r.message_id, r.line) for r in y]
    assert not any(r.malformed for r in x)
    assert any(r.malformed for r in y)


# --------------------------------------------------------------------------------------------------
# Resident registration numbers
# --------------------------------------------------------------------------------------------------


def test_rrn_check_digit_matches_known_value() -> None:
    assert rrn.check_digit("971013901990") == 2
    assert rrn.checksum_ok("971013-9019902")
    assert not rrn.checksum_ok("971013-9019903")


def test_rrn_encodes_birth_date_and_sex_and_checksums_old_numbers(
    population: list[Person],
) -> None:
    random_serial = 0
    for person in population:
        assert rrn.parse(person.rrn) == (person.birth_date, person.sex, person.foreign), person
        if person.rrn_issued < rrn.RANDOM_SERIAL_SINCE:
            assert rrn.checksum_ok(person.rrn), person
        else:
            random_serial += 1
    assert random_serial > 0
    # Random serials are random: most of them do not satisfy the check digit.
    new = [p for p in population if p.rrn_issued >= rrn.RANDOM_SERIAL_SINCE]
    assert sum(rrn.checksum_ok(p.rrn) for p in new) < len(new) / 2
    foreign = [p for p in population if p.foreign]
    assert foreign and all(p.rrn[7] in "5678" for p in foreign)
    assert all(p.rrn[7] in "1234" for p in population if not p.foreign)


def test_rrns_in_feed_follow_truth_and_their_corruption_tags(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord], people: dict[str, Person]
) -> None:
    out, _ = feed
    cache: dict[tuple[str, str], list[str]] = {}
    seen = Counter[str]()
    for record in truth:
        if record.malformed or record.entity_id is None:
            continue
        person = people[record.entity_id]
        written = _identity(record, _message(out, record, cache))
        assert written["sex"] == person.sex
        if "rrn_missing" in record.corruptions:
            assert written["rrn"] is None
            seen["missing"] += 1
        elif "rrn_typo" in record.corruptions:
            assert written["rrn"] != person.rrn
            assert written["rrn"][:8] == person.rrn[:8]  # date part and S digit intact
            assert sum(a != b for a, b in zip(written["rrn"], person.rrn, strict=True)) == 1
            seen["typo"] += 1
        else:
            assert written["rrn"] == person.rrn
            seen["exact"] += 1
    assert seen["missing"] and seen["typo"] and seen["exact"]


# --------------------------------------------------------------------------------------------------
# Addresses, names
# --------------------------------------------------------------------------------------------------


def test_postal_codes_match_province_in_population(population: list[Person]) -> None:
    by_code = {p.code: p for p in PROVINCES}
    for person in population:
        for _, address in person.addresses:
            assert _postal_matches(by_code[address.province_code], address.postal_code), address
            assert address.text().startswith(address.state)


def test_postal_codes_match_province_in_feed(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, _ = feed
    cache: dict[tuple[str, str], list[str]] = {}
    checked = Counter[str]()
    for record in truth:
        if record.malformed:
            continue
        line = _message(out, record, cache)
        if record.format == "csv":
            fields = _csv_fields(line)
            if fields[8]:
                prov = _province_by_state(fields[8].split(" ")[0])
                assert _postal_matches(prov, fields[9]), fields
                checked[prov.name] += 1
        else:
            for address in _patient(json.loads(line)).get("address", []):
                prov = _province_by_state(address["state"])
                assert address["text"].startswith(address["state"])
                assert _postal_matches(prov, address["postalCode"]), address
                checked[prov.name] += 1
    assert len(checked) >= 10  # most provinces occur


def test_surnames_follow_census_shares(population: list[Person]) -> None:
    counts = Counter(p.family_name for p in population if p.korean_name)
    total = sum(counts.values())
    for surname, share in (("김", 0.215), ("이", 0.147), ("박", 0.084), ("최", 0.047)):
        assert abs(counts[surname] / total - share) < 0.02, (surname, counts[surname] / total)
    assert len(counts) > 60  # a long tail
    assert any(counts[s] for s in ("남궁", "황보", "제갈", "선우", "독고"))


def test_given_names_cluster_by_birth_cohort(population: list[Person]) -> None:
    recent = set(popular_names(2015, "M") + popular_names(2015, "F"))
    older = set(popular_names(1955, "M") + popular_names(1955, "F"))

    def share(names: set[str], cohort: int) -> float:
        group = [p for p in population if p.korean_name and cohort_of(p.birth_date.year) == cohort]
        return sum(p.given_name in names for p in group) / len(group)

    assert share(recent, 2010) > 0.2
    assert share(recent, 1950) < 0.05
    assert share(older, 1950) > 0.2
    assert share(older, 2010) < 0.05
    one_syllable = [p for p in population if p.korean_name and len(p.given_name) == 1]
    assert 0.01 < len(one_syllable) / len(population) < 0.1


def test_twins_share_birth_date_surname_and_address_but_not_given_name(
    population: list[Person],
) -> None:
    by_id = {p.entity_id: p for p in population}
    twins = [p for p in population if p.twin_of is not None]
    assert len(twins) >= 50
    for twin in twins:
        sibling = by_id[twin.twin_of or ""]
        assert twin.entity_id != sibling.entity_id
        assert twin.birth_date == sibling.birth_date
        assert twin.family_name == sibling.family_name
        assert twin.addresses == sibling.addresses
        assert twin.given_name != sibling.given_name
        assert twin.rrn != sibling.rrn
        assert twin.rrn[:6] == sibling.rrn[:6]


def test_namesakes_share_name_and_birth_year_only(population: list[Person]) -> None:
    by_id = {p.entity_id: p for p in population}
    namesakes = [p for p in population if p.namesake_of is not None]
    assert len(namesakes) >= 30
    for person in namesakes:
        original = by_id[person.namesake_of or ""]
        assert person.full_name == original.full_name
        assert person.birth_date.year == original.birth_date.year
        assert person.rrn != original.rrn
        assert person.given_name in popular_names(person.birth_date.year, person.sex)


def test_hangul_typos_change_one_jamo() -> None:
    kinds = dict((kind, syl) for kind, syl in hangul.syllable_typos("연"))
    assert kinds["final_n_ng"] == "영"
    assert kinds["dropped_final"] == "여"
    assert ("eu_yu", "윤") in hangul.syllable_typos("은")
    assert ("vowel_swap", "게") in hangul.syllable_typos("개")
    for ch in "김이박최정민서":
        base = hangul.decompose(ch)
        for _, other in hangul.syllable_typos(ch):
            assert sum(a != b for a, b in zip(base, hangul.decompose(other), strict=True)) == 1
    assert hangul.initial_sound_variant("이") == "리"
    assert hangul.initial_sound_variant("류") == "유"
    assert hangul.initial_sound_variant("김") is None


# --------------------------------------------------------------------------------------------------
# Formats and truth
# --------------------------------------------------------------------------------------------------


def test_csv_has_exactly_the_documented_columns(feed: tuple[Path, FeedManifest]) -> None:
    out, manifest = feed
    expected = (
        "message_id,patient_no,family_name,given_name,birth_date,sex,rrn,phone,address,"
        "postal_code,visit_date,kcd_code,kcd_version,lab_loinc,lab_value,lab_unit"
    )
    assert ",".join(CSV_COLUMNS) == expected
    for code in manifest.hospitals:
        assert _lines(out, code, "csv")[0] == expected


def test_every_truth_line_matches_a_message(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, manifest = feed
    per_file = Counter((r.hospital, r.format) for r in truth)
    for code in manifest.hospitals:
        assert per_file[(code, "fhir")] == len(_lines(out, code, "fhir"))
        assert per_file[(code, "csv")] == len(_lines(out, code, "csv")) - 1  # header
    assert len({r.message_id for r in truth}) == len(truth)
    cache: dict[tuple[str, str], list[str]] = {}
    for record in truth:
        line = _message(out, record, cache)
        assert record.message_id.startswith(f"{record.hospital}-{record.format[0].upper()}-")
        if record.malformed:
            assert record.clinical_events == 0
            assert (record.entity_id is None) == (
                record.malformed_kind in ("invalid_json", "not_a_bundle")
            )
            continue
        assert record.entity_id is not None and record.malformed_kind is None
        if record.format == "fhir":
            bundle = json.loads(line)
            assert bundle["id"] == record.message_id
            mrns = [
                i["value"]
                for i in _patient(bundle)["identifier"]
                if i["type"]["coding"][0]["code"] == "MR"
            ]
            assert mrns == [record.patient_no]
            assert len(bundle["entry"]) - 1 == record.clinical_events
            assert (record.message_kind == "identity_update") == (record.clinical_events == 0)
        else:
            fields = _csv_fields(line)
            assert fields[0] == record.message_id
            assert fields[1] == record.patient_no
            assert record.clinical_events == 1 + bool(fields[13])


def test_same_person_has_one_mrn_per_hospital(truth: list[TruthRecord]) -> None:
    mrns: dict[tuple[str, str], set[str]] = defaultdict(set)
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in truth:
        if r.entity_id and r.patient_no:
            mrns[(r.hospital, r.entity_id)].add(r.patient_no)
            owners[(r.hospital, r.patient_no)].add(r.entity_id)
    assert all(len(v) == 1 for v in mrns.values())
    assert all(len(v) == 1 for v in owners.values())
    hospitals_per_person = Counter(Counter(e for _, e in mrns).values())
    assert hospitals_per_person[1] > hospitals_per_person[2] > hospitals_per_person[3] > 0


def test_well_formed_fhir_messages_are_valid_bundles(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, _ = feed
    cache: dict[tuple[str, str], list[str]] = {}
    kcd_versions = Counter[str]()
    for record in truth:
        if record.malformed or record.format != "fhir":
            continue
        bundle = json.loads(_message(out, record, cache))
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        patient = _patient(bundle)
        full_url = bundle["entry"][0]["fullUrl"]
        assert full_url == f"urn:uuid:{patient['id']}"
        date.fromisoformat(patient["birthDate"])
        assert patient["gender"] in ("male", "female")
        assert patient["name"][0]["text"]
        systems = {i["system"] for i in patient["identifier"]}
        assert mrn_system(record.hospital) in systems
        assert systems <= {mrn_system(record.hospital), RRN_SYSTEM}
        for entry in bundle["entry"][1:]:
            resource = entry["resource"]
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            assert resource["subject"]["reference"] == full_url
            if resource["resourceType"] == "Condition":
                coding = resource["code"]["coding"][0]
                version = "9" if resource["recordedDate"] >= "2026-01-01" else "8"
                assert coding["system"] == KCD_SYSTEMS[version]
                assert patient["birthDate"] <= resource["recordedDate"]
                kcd_versions[version] += 1
            elif resource["resourceType"] == "Observation":
                assert resource["code"]["coding"][0]["system"] == LOINC_SYSTEM
                assert resource["valueQuantity"]["value"] > 0
            else:
                assert resource["resourceType"] == "Encounter"
    assert kcd_versions["8"] and kcd_versions["9"]


def test_well_formed_csv_rows_parse(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, manifest = feed
    cache: dict[tuple[str, str], list[str]] = {}
    dotted = Counter[bool]()
    for record in truth:
        if record.malformed or record.format != "csv":
            continue
        fields = _csv_fields(_message(out, record, cache))
        assert len(fields) == len(CSV_COLUMNS)
        assert date.fromisoformat(fields[4]) <= date.fromisoformat(fields[10])
        assert fields[5] in ("M", "F")
        assert fields[12] == ("9" if fields[10] >= "2026-01-01" else "8")
        assert bool(fields[13]) == bool(fields[14]) == bool(fields[15])
        if manifest.hospital_profiles[record.hospital].kcd_dotless_csv:
            assert "." not in fields[11]
        else:
            dotted["." in fields[11]] += 1
    assert dotted[True] > 0


def test_malformed_messages_are_broken_as_labelled(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, _ = feed
    cache: dict[tuple[str, str], list[str]] = {}
    kinds = Counter[str]()
    for record in truth:
        if not record.malformed:
            continue
        kind = record.malformed_kind or ""
        kinds[kind] += 1
        line = _message(out, record, cache)
        if kind == "invalid_json":
            with pytest.raises(ValueError):
                json.loads(line)
        elif kind == "not_a_bundle":
            assert json.loads(line)["resourceType"] not in ("Bundle", "Patient")
        elif kind == "missing_birthdate_and_identifier":
            patient = _patient(json.loads(line))
            assert "birthDate" not in patient and "identifier" not in patient
        elif kind == "no_patient_number":
            assert "identifier" not in _patient(json.loads(line))
        elif kind == "wrong_column_count":
            assert len(_csv_fields(line)) != len(CSV_COLUMNS)
        elif kind == "missing_patient_number":
            fields = _csv_fields(line)
            assert len(fields) == len(CSV_COLUMNS)
            assert fields[1] == ""
        else:
            raise AssertionError(f"unknown kind {kind!r}")
    assert len(kinds) == 6


def test_malformed_share_matches_rate(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    _, manifest = feed
    broken = sum(r.malformed for r in truth)
    assert broken == manifest.malformed.total
    assert abs(broken / len(truth) - MALFORMED_RATE) < 0.002


def test_identity_corruption_tags_describe_the_message(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord], people: dict[str, Person]
) -> None:
    out, _ = feed
    cache: dict[tuple[str, str], list[str]] = {}
    name_tags = {"name_typo", "initial_sound_variant", "message_name_typo"}
    date_tags = {"birth_date_transposed", "birth_date_digit"}
    families: dict[str, set[str]] = defaultdict(set)
    for record in truth:
        if record.malformed or record.entity_id is None:
            continue
        person = people[record.entity_id]
        written = _identity(record, _message(out, record, cache))
        tags = set(record.corruptions)
        same_name = (written["family"], written["given"]) == (person.family_name, person.given_name)
        assert same_name == (not tags & name_tags), (record, written)
        assert (written["birth"] == person.birth_date.isoformat()) == (not tags & date_tags)
        if "phone_missing" in tags:
            assert written["phone"] is None
        families[record.entity_id].add(written["family"])
    # Hospitals disagree about some people's surname (typos, 이/리 ...).
    assert sum(len(v) > 1 for v in families.values()) > 0
    counts = Counter(tag for r in truth if not r.malformed for tag in r.corruptions)
    for tag in ("name_typo", "initial_sound_variant", "rrn_missing", "address_stale"):
        assert counts[tag] > 0, tag


def test_manifest_counts_agree_with_truth(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, manifest = feed
    assert FeedManifest.load(out) == manifest
    assert manifest.messages_total == len(truth)
    for code, counts in manifest.messages.items():
        assert counts.fhir == sum(r.hospital == code and r.format == "fhir" for r in truth)
        assert counts.csv == sum(r.hospital == code and r.format == "csv" for r in truth)
    assert manifest.clinical_events_total == sum(r.clinical_events for r in truth)
    assert manifest.hospitals == {
        "H001": "가나대학교병원",
        "H002": "다라대학교병원",
        "H003": "마바대학교병원",
    }
    assert manifest.population.twin_pairs > 0
    for name in manifest.hospitals.values():  # hospital names live in the manifest only
        assert name not in (out / "H001" / "fhir.ndjson").read_text(encoding="utf-8")


def test_canaries_are_identifiers_present_in_the_feed(
    feed: tuple[Path, FeedManifest], truth: list[TruthRecord]
) -> None:
    out, manifest = feed
    raw = "\n".join(
        (out / code / name).read_text(encoding="utf-8")
        for code in manifest.hospitals
        for name in ("fhir.ndjson", "visits.csv")
    )
    canaries = list(iter_canaries(out))
    assert canaries == list(iter_canaries(manifest))
    kinds = Counter(c.kind for c in canaries)
    for kind in ("full_name", "latin_name", "rrn", "rrn_digits", "phone", "address", "mrn"):
        assert kinds[kind] > 0, kind
    verbatim = [
        c for c in canaries if c.kind in ("rrn", "phone", "address", "street", "mrn", "latin_name")
    ]
    for canary in verbatim[::25]:  # a substring search per canary is slow; every 25th will do
        assert canary.value in raw, canary
    values = canary_values(out, kinds=["mrn"])
    assert {r.patient_no for r in truth if r.patient_no and not r.malformed} <= values
    with pytest.raises(ValueError):
        canary_values(out, kinds=["blood_type"])


# --------------------------------------------------------------------------------------------------
# API and CLI
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"persons": -1}, {"persons": 1, "hospitals": 0}, {"persons": 1, "malformed_rate": 1.5}],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_feed(tmp_path, **kwargs)


def test_cli_writes_feed_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--out", str(tmp_path), "--persons", "40", "--hospitals", "2", "--seed", "9"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    manifest = FeedManifest.load(tmp_path)
    assert f"{manifest.messages_total} messages" in lines[0]
    assert "40 persons" in lines[0]
    assert sorted(manifest.hospitals) == ["H001", "H002"]
