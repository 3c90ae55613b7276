"""Write a population's records, truth, pattern tags, rates and summary (decision D40).

Households are drawn one at a time and their records written at once into one temporary file per
registration year; the files are then joined oldest first, so ``records.jsonl`` is in the order a
registry would have received the records and memory stays flat (no person is kept after its
household is written).
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .people import Household, PopulationBuilder
from .rates import Rates
from .records import RecordMaker

FIELD_ORDER = ("family_name", "given_name", "name_latin", "birth_date", "sex", "identifiers",
               "phone", "postal_code", "address")  # fmt: skip


@dataclass(frozen=True)
class Written:
    out: Path
    persons: int
    records: int
    summary: dict[str, Any]


def hospital_codes(count: int) -> list[str]:
    return [f"H{n:03d}" for n in range(1, count + 1)]


def generate(out: Path, persons: int, seed: int, rates: Rates | None = None,
             hospitals: int | None = None) -> Written:  # fmt: skip
    """Generate ``persons`` persons with ``seed``; same arguments, byte-identical files."""
    rates = rates or Rates()
    if hospitals is not None:
        rates = Rates.from_json({**rates.to_json(), "hospitals": hospitals})
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    builder = PopulationBuilder(rng, rates)
    maker = RecordMaker(rng, rates, hospital_codes(rates.hospitals))
    buckets_dir = out / ".by-year"
    shutil.rmtree(buckets_dir, ignore_errors=True)
    buckets_dir.mkdir()
    buckets: dict[int, IO[str]] = {}
    households: Counter[str] = Counter()
    names_seen: Counter[tuple[str, str]] = Counter()
    names_dates_seen: Counter[tuple[str, str, str]] = Counter()
    records = 0
    with (
        (out / "truth.jsonl").open("w", encoding="utf-8") as truth,
        (out / "patterns.jsonl").open("w", encoding="utf-8") as patterns,
    ):
        while builder.persons < persons:
            home = builder.household(persons - builder.persons)
            _count_household(home, households)
            for person in home.members:
                names_seen[(person.family, person.given)] += 1
                names_dates_seen[(person.family, person.given, person.birth.isoformat())] += 1
                for draft in maker.records_for(person, home):
                    records += 1
                    record_id = f"{draft.hospital}-{records * 104729 % 10**9:09d}"
                    role = person.role
                    tags = list(draft.tags)
                    if person.twin_of:
                        tags.append("twin")
                    line = {"record_id": record_id, "source": draft.hospital}
                    line.update({k: draft.fields[k] for k in FIELD_ORDER if k in draft.fields})
                    bucket = buckets.get(draft.year)
                    if bucket is None:
                        bucket = (buckets_dir / f"{draft.year}.jsonl").open("w", encoding="utf-8")
                        buckets[draft.year] = bucket
                    bucket.write(json.dumps(line, ensure_ascii=False) + "\n")
                    truth.write(
                        json.dumps({"record_id": record_id, "entity_id": person.entity_id}) + "\n"
                    )
                    patterns.write(json.dumps({
                        "record_id": record_id, "tags": tags, "household": person.household,
                        "role": role, "twin_of": person.twin_of,
                        "mother": person.mother.entity_id if person.mother else None,
                        "year": draft.year,
                    }) + "\n")  # fmt: skip
    for bucket in buckets.values():
        bucket.close()
    with (out / "records.jsonl").open("w", encoding="utf-8") as joined:
        for year in sorted(buckets):
            with (buckets_dir / f"{year}.jsonl").open(encoding="utf-8") as part:
                shutil.copyfileobj(part, joined)
    shutil.rmtree(buckets_dir)
    summary = _summary(builder, maker, households, names_seen, names_dates_seen, records, seed)
    (out / "rates.json").write_text(
        json.dumps(rates.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return Written(out, builder.persons, records, summary)


def _count_household(home: Household, households: Counter[str]) -> None:
    roles = Counter(p.role for p in home.members)
    kind = (
        "single" if roles["single"] else "couple" if not roles["child"] else
        "single_parent" if roles["parent"] == 1 else "two_parents"
    )  # fmt: skip
    households[f"households:{kind}"] += 1
    households["households"] += 1
    if roles["child"]:
        households[f"children_per_family:{roles['child']}"] += 1
        households["children"] += roles["child"]
    twins = [p for p in home.members if p.twin_of and p.entity_id < p.twin_of]
    for one in twins:
        other = next(p for p in home.members if p.entity_id == one.twin_of)
        households["twin_pairs"] += 1
        households["twin_pairs:boy_girl" if one.sex != other.sex else "twin_pairs:same_sex"] += 1
        shared = set(one.given) & set(other.given)
        if shared:
            households["twin_pairs:shared_syllable"] += 1


def _pairs(counter: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in counter.values())


def _summary(builder: PopulationBuilder, maker: RecordMaker, households: Counter[str],
             names_seen: Counter[tuple[str, str]], names_dates_seen: Counter[tuple[str, str, str]],
             records: int, seed: int) -> dict[str, Any]:  # fmt: skip
    tally = maker.tally.counts
    summary: dict[str, Any] = {
        "seed": seed,
        "persons": builder.persons,
        "records": records,
        "records_per_person": round(records / max(builder.persons, 1), 3),
        "namesake_pairs": _pairs(names_seen),
        "namesake_pairs_same_birth_date": _pairs(names_dates_seen),
        "distinct_full_names": len(names_seen),
    }
    summary.update(households)
    summary.update(tally)
    return summary
