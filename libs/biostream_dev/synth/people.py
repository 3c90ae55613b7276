"""The true population behind a feed: people with names, RRNs, addresses and phones over time."""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, TypeVar

from biostream_dev.synth import hangul, rrn
from biostream_dev.synth.reference import (
    COHORT_STARTS,
    EXTRA_SYLLABLES,
    FOREIGN_NAMES,
    FOREIGN_ORIGIN_WEIGHTS,
    ONE_SYLLABLE_GIVEN_NAMES,
    POPULAR_GIVEN_NAMES,
    PROVINCES,
    ROAD_NAMES,
    SURNAMES,
    Province,
    Sex,
)

# The feed describes visits in [WINDOW_START, REFERENCE_DATE]; "today" is REFERENCE_DATE, never the
# clock, so that a run is repeatable.
REFERENCE_DATE: Final = date(2026, 6, 30)
WINDOW_START: Final = date(2021, 1, 1)
BIRTH_FIRST: Final = date(1930, 1, 1)
BIRTH_LAST: Final = date(2024, 12, 31)

# Birth decades weighted towards the ages that fill hospitals (approximate).
BIRTH_DECADE_WEIGHTS: Final[tuple[tuple[int, float], ...]] = (
    (1930, 0.5), (1940, 1.0), (1950, 1.5), (1960, 1.8), (1970, 1.6),
    (1980, 1.3), (1990, 1.1), (2000, 0.9), (2010, 0.8), (2020, 0.4),
)  # fmt: skip

TWIN_RATE: Final = 0.015  # share of persons created as the twin of an earlier person
NAMESAKE_RATE: Final = 0.01  # share created with the same popular full name and birth year
FOREIGN_RATE: Final = 0.03  # foreign residents (RRN sex digit 5-8)
FOREIGN_KOREAN_NAME_SHARE: Final = 0.4  # foreign residents who carry a Korean name
REISSUED_RRN_RATE: Final = 0.003  # citizens whose number was changed on or after 2020-10-05
ONE_SYLLABLE_GIVEN_RATE: Final = 0.04
POPULAR_GIVEN_RATE: Final = 0.36  # given name taken whole from the cohort's popular list
ADJACENT_COHORT_RATE: Final = 0.15  # name drawn from the neighbouring cohort's pools
# 0, 1, 2 moves in the 5.5-year window: about one Korean in eight moves each year.
MOVES_WEIGHTS: Final[tuple[float, ...]] = (0.55, 0.30, 0.15)
MOVE_SAME_PROVINCE: Final = 0.7
PHONE_CHANGE_RATE: Final = 0.15
SHARED_PHONE_MAX_AGE: Final = 18  # twins this young share a guardian's phone


POPULATION_RATES: Final[dict[str, float]] = {
    "twin": TWIN_RATE,
    "namesake": NAMESAKE_RATE,
    "foreign_resident": FOREIGN_RATE,
    "foreign_resident_korean_name": FOREIGN_KOREAN_NAME_SHARE,
    "rrn_reissued_after_2020_10_05": REISSUED_RRN_RATE,
    "one_syllable_given_name": ONE_SYLLABLE_GIVEN_RATE,
    "popular_given_name": POPULAR_GIVEN_RATE,
    "moved_at_least_once": round(1 - MOVES_WEIGHTS[0], 6),
    "phone_changed": PHONE_CHANGE_RATE,
}


@dataclass(frozen=True, slots=True)
class Address:
    province_code: str  # current 시도 code
    state: str  # current official 시도 name
    city: str | None  # 시/군 of a 도
    district: str | None  # 구/군
    road: str  # 도로명
    building_no: str  # 건물번호, e.g. "152" or "12-3"
    detail: str | None  # 상세주소, e.g. "101동 1203호"
    postal_code: str  # 5 digits

    @property
    def sigungu(self) -> str:
        return " ".join(part for part in (self.city, self.district) if part)

    @property
    def street(self) -> str:
        return f"{self.road} {self.building_no}"

    def text(self, state_name: str | None = None) -> str:
        """``시도 시군구 도로명 건물번호, 상세주소`` with an optional other spelling of the 시도."""
        head = " ".join(p for p in (state_name or self.state, self.sigungu, self.street) if p)
        return f"{head}, {self.detail}" if self.detail else head


@dataclass(frozen=True, slots=True)
class Person:
    entity_id: str
    family_name: str
    given_name: str
    sex: Sex
    birth_date: date
    foreign: bool
    korean_name: bool  # False for Hangul transcriptions of foreign names (written with spaces)
    rrn: str
    rrn_issued: date
    latin_family: str
    latin_given: str
    addresses: tuple[tuple[date, Address], ...]  # (valid from, address), oldest first
    phones: tuple[tuple[date, str], ...]  # (valid from, mobile number), oldest first
    twin_of: str | None = None
    namesake_of: str | None = None

    @property
    def full_name(self) -> str:
        if self.korean_name:
            return self.family_name + self.given_name
        return f"{self.family_name} {self.given_name}"

    @property
    def latin_full_name(self) -> str:
        return f"{self.latin_family} {self.latin_given}"

    def address_on(self, day: date) -> Address:
        return _value_on(self.addresses, day)

    def phone_on(self, day: date) -> str:
        return _value_on(self.phones, day)


_T = TypeVar("_T")


def _value_on(history: tuple[tuple[date, _T], ...], day: date) -> _T:
    index = bisect.bisect_right([since for since, _ in history], day) - 1
    return history[max(index, 0)][1]


# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pools:
    popular: tuple[str, ...]
    popular_cum: tuple[float, ...]
    first: tuple[str, ...]
    second: tuple[str, ...]


def _build_pools() -> dict[tuple[int, Sex], _Pools]:
    pools: dict[tuple[int, Sex], _Pools] = {}
    for key, popular in POPULAR_GIVEN_NAMES.items():
        extra_first, extra_second = EXTRA_SYLLABLES[key]
        first = tuple(dict.fromkeys([n[0] for n in popular] + list(extra_first)))
        second = tuple(dict.fromkeys([n[-1] for n in popular] + list(extra_second)))
        cum = tuple(itertools.accumulate(1.0 / (rank + 2) for rank in range(len(popular))))
        pools[key] = _Pools(popular, cum, first, second)
    return pools


_POOLS: Final = _build_pools()
_SURNAME_CUM: Final = tuple(itertools.accumulate(s.share for s in SURNAMES))
_PROVINCE_CUM: Final = tuple(itertools.accumulate(p.weight for p in PROVINCES))
_ORIGINS: Final = tuple(FOREIGN_ORIGIN_WEIGHTS)
_ORIGIN_CUM: Final = tuple(itertools.accumulate(FOREIGN_ORIGIN_WEIGHTS.values()))
_DECADE_CUM: Final = tuple(itertools.accumulate(w for _, w in BIRTH_DECADE_WEIGHTS))


def cohort_of(year: int) -> int:
    return COHORT_STARTS[max(bisect.bisect_right(COHORT_STARTS, year) - 1, 0)]


def popular_names(year: int, sex: Sex) -> tuple[str, ...]:
    return _POOLS[(cohort_of(year), sex)].popular


def _weighted(rng: random.Random, items: tuple[_T, ...], cum: tuple[float, ...]) -> _T:
    return rng.choices(items, cum_weights=cum, k=1)[0]


def _latin_choice(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    names = tuple(name for name, _ in options)
    return rng.choices(names, weights=[w for _, w in options], k=1)[0]


def random_korean_given(rng: random.Random, year: int, sex: Sex) -> str:
    cohort = cohort_of(year)
    if rng.random() < ADJACENT_COHORT_RATE:
        i = COHORT_STARTS.index(cohort) + rng.choice((-1, 1))
        cohort = COHORT_STARTS[min(max(i, 0), len(COHORT_STARTS) - 1)]
    pools = _POOLS[(cohort, sex)]
    r = rng.random()
    if r < ONE_SYLLABLE_GIVEN_RATE:
        return rng.choice(ONE_SYLLABLE_GIVEN_NAMES[sex])
    if r < ONE_SYLLABLE_GIVEN_RATE + POPULAR_GIVEN_RATE:
        return _weighted(rng, pools.popular, pools.popular_cum)
    while True:
        first, second = rng.choice(pools.first), rng.choice(pools.second)
        if first != second:
            return first + second


def random_surname(rng: random.Random) -> str:
    """A Hangul surname drawn by its share of the population (김 21.5 % ...)."""
    return _weighted(rng, SURNAMES, _SURNAME_CUM).hangul


def random_birth_date(rng: random.Random) -> date:
    decade = _weighted(rng, tuple(d for d, _ in BIRTH_DECADE_WEIGHTS), _DECADE_CUM)
    start = date(decade, 1, 1)
    end = min(date(decade + 9, 12, 31), BIRTH_LAST)
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def random_address(rng: random.Random, province: Province | None = None) -> Address:
    prov = province or _weighted(rng, PROVINCES, _PROVINCE_CUM)
    sg = rng.choice(prov.sigungu)
    road = rng.choice(ROAD_NAMES)
    if rng.random() < 0.3:
        road = f"{road}{rng.randint(1, 60)}번길"
    building = str(min(int(rng.expovariate(1 / 40)) + 1, 999))
    if rng.random() < 0.15:
        building += f"-{rng.randint(1, 30)}"
    r = rng.random()
    detail: str | None
    if r < 0.5:
        detail = f"{rng.randint(101, 120)}동 {rng.randint(1, 25)}{rng.randint(1, 8):02d}호"
    elif r < 0.6:
        detail = f"{rng.randint(1, 5)}층"
    elif r < 0.75:
        detail = f"{rng.randint(1, 5)}0{rng.randint(1, 9)}호"
    else:
        detail = None
    postal = f"{sg.postal_prefix}{rng.randrange(1000):03d}"
    return Address(prov.code, prov.name, sg.city, sg.district, road, building, detail, postal)


def province_by_code(code: str) -> Province:
    for prov in PROVINCES:
        if code in (prov.code, prov.legacy_code):
            return prov
    raise KeyError(code)


def random_phone(rng: random.Random) -> str:
    return f"010-{rng.randint(2000, 9999)}-{rng.randrange(10000):04d}"


def _random_day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange(max((end - start).days, 0) + 1))


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


class _Builder:
    """Creates persons one by one; keeps what twins and namesakes need to refer back to."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.persons: list[Person] = []
        self.twin_candidates: list[int] = []  # indices of persons that may still get a twin
        self.namesake_candidates: list[int] = []  # indices of persons with a popular name
        self.phones_used: dict[str, None] = {}

    def phone(self) -> str:
        while True:
            candidate = random_phone(self.rng)
            if candidate not in self.phones_used:
                self.phones_used[candidate] = None
                return candidate

    def address_history(self, first: Address) -> tuple[tuple[date, Address], ...]:
        rng = self.rng
        history = [(BIRTH_FIRST, first)]
        moves = rng.choices((0, 1, 2), weights=MOVES_WEIGHTS, k=1)[0]
        days = sorted({_random_day(rng, WINDOW_START, REFERENCE_DATE) for _ in range(moves)})
        for day in days:
            current = history[-1][1]
            same = rng.random() < MOVE_SAME_PROVINCE
            history.append(
                (
                    day,
                    random_address(rng, province_by_code(current.province_code) if same else None),
                )
            )
        return tuple(history)

    def phone_history(self) -> tuple[tuple[date, str], ...]:
        history = [(BIRTH_FIRST, self.phone())]
        if self.rng.random() < PHONE_CHANGE_RATE:
            history.append((_random_day(self.rng, WINDOW_START, REFERENCE_DATE), self.phone()))
        return tuple(history)

    def entity_id(self) -> str:
        return f"E{len(self.persons) + 1:06d}"

    def add(self, person: Person, *, may_twin: bool) -> None:
        index = len(self.persons)
        self.persons.append(person)
        if may_twin:
            self.twin_candidates.append(index)
        if person.korean_name and person.given_name in popular_names(
            person.birth_date.year, person.sex
        ):
            self.namesake_candidates.append(index)

    # ----------------------------------------------------------------------------------------------

    def new_person(self) -> Person:
        rng = self.rng
        sex: Sex = "M" if rng.random() < 0.5 else "F"
        foreign = rng.random() < FOREIGN_RATE
        birth = random_birth_date(rng)
        if foreign and birth.year < 1955:
            birth = random_birth_date(rng)
        korean_name = not foreign or rng.random() < FOREIGN_KOREAN_NAME_SHARE
        if korean_name:
            surname = _weighted(rng, SURNAMES, _SURNAME_CUM)
            family, latin_family = surname.hangul, _latin_choice(rng, surname.latin)
            given = random_korean_given(rng, birth.year, sex)
            latin_given = self.latin_given(given)
        else:
            origin = rng.choices(_ORIGINS, cum_weights=_ORIGIN_CUM, k=1)[0]
            families, givens = FOREIGN_NAMES[origin]
            family, latin_family = rng.choice(families)
            given, latin_given, _ = rng.choice([g for g in givens if g[2] == sex])
        first_address = random_address(rng)
        issued = self.issued(birth, foreign)
        birth_province = province_by_code(first_address.province_code)
        if rng.random() < 0.3:
            birth_province = _weighted(rng, PROVINCES, _PROVINCE_CUM)
        number = rrn.make(
            rng,
            birth=birth,
            sex=sex,
            foreign=foreign,
            issued=issued,
            region_range=birth_province.rrn_regions,
        )
        return Person(
            entity_id=self.entity_id(),
            family_name=family,
            given_name=given,
            sex=sex,
            birth_date=birth,
            foreign=foreign,
            korean_name=korean_name,
            rrn=number,
            rrn_issued=issued,
            latin_family=latin_family,
            latin_given=latin_given,
            addresses=self.address_history(first_address),
            phones=self.phone_history(),
        )

    def latin_given(self, given: str) -> str:
        style = self.rng.choices(hangul.GIVEN_STYLES, weights=hangul.GIVEN_STYLE_WEIGHTS, k=1)[0]
        return hangul.join_given(hangul.romanize_given(self.rng, given), style)

    def issued(self, birth: date, foreign: bool) -> date:
        rng = self.rng
        if foreign:
            return _random_day(rng, max(birth, date(1995, 1, 1)), REFERENCE_DATE)
        registered = birth + timedelta(days=rng.randint(3, 30))
        if registered < rrn.RANDOM_SERIAL_SINCE and rng.random() < REISSUED_RRN_RATE:
            return _random_day(rng, rrn.RANDOM_SERIAL_SINCE, REFERENCE_DATE)
        return registered

    def twin(self, sibling: Person) -> Person:
        rng = self.rng
        sex: Sex = sibling.sex if rng.random() < 0.5 else ("F" if sibling.sex == "M" else "M")
        given = self.twin_given(sibling, sex)
        young = _age_on(sibling.birth_date, REFERENCE_DATE) <= SHARED_PHONE_MAX_AGE
        return Person(
            entity_id=self.entity_id(),
            family_name=sibling.family_name,
            given_name=given,
            sex=sex,
            birth_date=sibling.birth_date,
            foreign=sibling.foreign,
            korean_name=sibling.korean_name,
            rrn=rrn.sibling(
                sibling.rrn, rng, sex=sex, foreign=sibling.foreign, issued=sibling.rrn_issued
            ),
            rrn_issued=sibling.rrn_issued,
            latin_family=sibling.latin_family,
            latin_given=self.latin_given(given) if sibling.korean_name else _foreign_latin(given),
            addresses=sibling.addresses,
            phones=sibling.phones if young else self.phone_history(),
            twin_of=sibling.entity_id,
        )

    def twin_given(self, sibling: Person, sex: Sex) -> str:
        rng = self.rng
        if not sibling.korean_name:
            givens = _foreign_givens(sibling.given_name)
            return rng.choice([g[0] for g in givens if g[2] == sex and g[0] != sibling.given_name])
        pools = _POOLS[(cohort_of(sibling.birth_date.year), sex)]
        if len(sibling.given_name) == 2 and rng.random() < 0.6:
            # Twins often share the first syllable (서준/서진).
            seconds = [
                s for s in pools.second if s not in (sibling.given_name[1], sibling.given_name[0])
            ]
            return sibling.given_name[0] + rng.choice(seconds)
        while True:
            given = random_korean_given(rng, sibling.birth_date.year, sex)
            if given != sibling.given_name:
                return given

    def namesake(self, original: Person) -> Person:
        rng = self.rng
        person = self.new_person()
        year = original.birth_date.year
        birth = _random_day(rng, date(year, 1, 1), min(date(year, 12, 31), BIRTH_LAST))
        issued = self.issued(birth, person.foreign)
        number = rrn.make(
            rng,
            birth=birth,
            sex=original.sex,
            foreign=person.foreign,
            issued=issued,
            region_range=province_by_code(person.addresses[0][1].province_code).rrn_regions,
        )
        surname = next(s for s in SURNAMES if s.hangul == original.family_name)
        return Person(
            entity_id=person.entity_id,
            family_name=original.family_name,
            given_name=original.given_name,
            sex=original.sex,
            birth_date=birth,
            foreign=person.foreign,
            korean_name=True,
            rrn=number,
            rrn_issued=issued,
            latin_family=_latin_choice(rng, surname.latin),
            latin_given=self.latin_given(original.given_name),
            addresses=person.addresses,
            phones=person.phones,
            namesake_of=original.entity_id,
        )


def _foreign_latin(given: str) -> str:
    return next(latin for name, latin, _ in _foreign_givens(given) if name == given)


def _foreign_givens(given: str) -> tuple[tuple[str, str, Sex], ...]:
    return next(g for _, g in FOREIGN_NAMES.values() if any(x[0] == given for x in g))


def generate_population(count: int, *, seed: int = 42) -> list[Person]:
    """``count`` people; the same seed gives the same people regardless of any feed settings."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(f"biostream-synth:{seed}:population")
    builder = _Builder(rng)
    while len(builder.persons) < count:
        r = rng.random()
        if r < TWIN_RATE and builder.twin_candidates:
            candidates = builder.twin_candidates
            pick = rng.randrange(len(candidates))
            candidates[pick], candidates[-1] = candidates[-1], candidates[pick]
            sibling_index = candidates.pop()
            builder.add(builder.twin(builder.persons[sibling_index]), may_twin=False)
        elif r < TWIN_RATE + NAMESAKE_RATE and builder.namesake_candidates:
            original = builder.persons[rng.choice(builder.namesake_candidates)]
            builder.add(builder.namesake(original), may_twin=True)
        else:
            builder.add(builder.new_person(), may_twin=True)
    return builder.persons
