"""Clinical content of the feed: visits with one KCD diagnosis and some LOINC lab results."""

from __future__ import annotations

import functools
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Final, Literal

from biostream_dev.synth.people import REFERENCE_DATE, WINDOW_START, Person
from biostream_dev.synth.reference import DIAGNOSES, LAB_TESTS, ROUTINE_LABS, Diagnosis, LabTest

KST: Final = timezone(timedelta(hours=9), "KST")
KCD9_SINCE: Final = date(2026, 1, 1)  # KCD-8 applied 2021-2025, KCD-9 since 2026-01-01

# Visits per (person, hospital): 1..8, most people come once or twice.
VISITS_WEIGHTS: Final[tuple[float, ...]] = (40, 22, 13, 9, 6, 4, 3, 3)
VISIT_GAP_DAYS: Final = (7, 200)
CHRONIC_VISIT_SHARE: Final = 0.6  # visits about one of the person's chronic conditions
LINKED_LAB_RATE: Final = 0.7  # each lab that goes with the diagnosis is ordered with this rate
ROUTINE_LAB_RATE: Final = 0.25  # a routine lab when the diagnosis brings none
ABNORMAL_RATE: Final = 0.7  # a lab linked to the diagnosis is out of range with this rate
ENCOUNTER_RATE: Final = 0.7  # FHIR visits that carry an Encounter resource

EncounterClass = Literal["AMB", "EMER", "IMP"]
_CLASSES: Final[tuple[EncounterClass, ...]] = ("AMB", "EMER", "IMP")
_CLASS_CUM: Final = tuple(itertools.accumulate((0.85, 0.08, 0.07)))
_VISITS_CUM: Final = tuple(itertools.accumulate(VISITS_WEIGHTS))
_VISIT_COUNTS: Final = tuple(range(1, len(VISITS_WEIGHTS) + 1))


@dataclass(frozen=True, slots=True)
class LabResult:
    resource_id: str
    test: LabTest
    value: float
    effective: datetime

    @property
    def value_text(self) -> str:
        return f"{self.value:.{self.test.decimals}f}"


@dataclass(frozen=True, slots=True)
class Visit:
    start: datetime
    end: datetime
    encounter_class: EncounterClass
    encounter_id: str | None  # None: the FHIR message carries no Encounter
    condition_id: str
    diagnosis: Diagnosis
    onset: datetime
    labs: tuple[LabResult, ...]

    @property
    def kcd_version(self) -> str:
        return "9" if self.start.date() >= KCD9_SINCE else "8"

    @property
    def fhir_events(self) -> int:
        """Clinical entries of the FHIR message: Condition, Observations, Encounter if present."""
        return 1 + len(self.labs) + (self.encounter_id is not None)

    @property
    def csv_events(self) -> int:
        """Clinical events of the CSV row: the diagnosis and at most one lab."""
        return 1 + min(len(self.labs), 1)


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _eligible(dx: Diagnosis, age: int, person: Person) -> bool:
    return dx.min_age <= age <= dx.max_age and dx.sex in (None, person.sex)


def chronic_conditions(rng: random.Random, person: Person) -> tuple[Diagnosis, ...]:
    """The person's long-term conditions, consistent across hospitals."""
    age = age_on(person.birth_date, REFERENCE_DATE)
    pool = [dx for dx in DIAGNOSES if dx.chronic and _eligible(dx, age, person)]
    if age < 30:
        count = 1 if rng.random() < 0.15 else 0
    elif age < 50:
        count = rng.choices((0, 1, 2), weights=(0.5, 0.35, 0.15), k=1)[0]
    elif age < 70:
        count = rng.choices((0, 1, 2, 3), weights=(0.2, 0.35, 0.3, 0.15), k=1)[0]
    else:
        count = rng.choices((1, 2, 3, 4), weights=(0.3, 0.35, 0.25, 0.1), k=1)[0]
    chosen: list[Diagnosis] = []
    while pool and len(chosen) < count:
        dx = rng.choices(pool, weights=[d.weight for d in pool], k=1)[0]
        chosen.append(dx)
        pool.remove(dx)
    return tuple(chosen)


def visit_dates(rng: random.Random, person: Person) -> list[date]:
    first_possible = max(WINDOW_START, person.birth_date + timedelta(days=1))
    span = (REFERENCE_DATE - first_possible).days
    count = rng.choices(_VISIT_COUNTS, cum_weights=_VISITS_CUM, k=1)[0]
    day = first_possible + timedelta(days=rng.randrange(span + 1))
    days = [day]
    for _ in range(count - 1):
        day += timedelta(days=rng.randint(*VISIT_GAP_DAYS))
        if day > REFERENCE_DATE:
            break
        days.append(day)
    return days


def _lab(rng: random.Random, loinc: str, abnormal: bool, when: datetime) -> LabResult:
    test = LAB_TESTS[loinc]
    mean, sd = (
        (test.abnormal_mean, test.abnormal_sd) if abnormal else (test.normal_mean, test.normal_sd)
    )
    value = max(rng.gauss(mean, sd), mean * 0.1)
    return LabResult(new_uuid(rng), test, round(value, test.decimals), when)


@functools.cache
def _acute_pool(age: int, sex: str) -> tuple[tuple[Diagnosis, ...], tuple[float, ...]]:
    pool = tuple(
        dx
        for dx in DIAGNOSES
        if not dx.chronic and dx.min_age <= age <= dx.max_age and dx.sex in (None, sex)
    )
    return pool, tuple(itertools.accumulate(dx.weight for dx in pool))


def make_visit(
    rng: random.Random,
    person: Person,
    day: date,
    chronic: tuple[Diagnosis, ...],
    *,
    max_labs: int,
    with_encounter: bool,
) -> Visit:
    age = age_on(person.birth_date, day)
    if chronic and rng.random() < CHRONIC_VISIT_SHARE:
        dx = rng.choice(chronic)
    else:
        pool, cum = _acute_pool(age, person.sex)
        dx = rng.choices(pool, cum_weights=cum, k=1)[0]
    start = datetime.combine(day, time(8, 30), KST) + timedelta(minutes=rng.randrange(9 * 60))
    klass = rng.choices(_CLASSES, cum_weights=_CLASS_CUM, k=1)[0]
    if klass == "IMP":
        end = start + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 6))
    else:
        end = start + timedelta(minutes=rng.randint(10, 90))
    if dx.chronic:
        onset_day = max(day - timedelta(days=rng.randint(30, 3000)), person.birth_date)
    else:
        onset_day = max(day - timedelta(days=rng.randint(0, 7)), person.birth_date)
    onset = datetime.combine(onset_day, time(9, 0), KST)
    labs: list[LabResult] = []
    drawn = start + timedelta(minutes=rng.randint(5, 60))
    for loinc in dx.labs:
        if len(labs) < max_labs and rng.random() < LINKED_LAB_RATE:
            labs.append(_lab(rng, loinc, rng.random() < ABNORMAL_RATE, drawn))
    if not labs and max_labs and rng.random() < ROUTINE_LAB_RATE:
        labs.append(_lab(rng, rng.choice(ROUTINE_LABS), False, drawn))
    return Visit(
        start=start,
        end=end,
        encounter_class=klass,
        encounter_id=new_uuid(rng) if with_encounter else None,
        condition_id=new_uuid(rng),
        diagnosis=dx,
        onset=onset,
        labs=tuple(labs),
    )
