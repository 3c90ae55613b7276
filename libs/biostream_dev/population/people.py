"""Households and the persons in them (decision D40): who exists, before any record is written."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

from . import names
from .places import Address, draw_address, draw_landline, draw_mobile
from .rates import Rates

TODAY: Final = date(2026, 6, 30)  # the generator's "today": no clock, same files every run

# Korea's age pyramid: residents (millions, rounded, 2024) by 5-year birth cohort.
_COHORTS: Final = (
    (1925, 0.3), (1935, 0.6), (1940, 1.2), (1945, 1.7), (1950, 2.5), (1955, 3.6), (1960, 4.2),
    (1965, 4.4), (1970, 4.3), (1975, 4.1), (1980, 4.0), (1985, 3.5), (1990, 3.4), (1995, 3.2),
    (2000, 2.5), (2005, 2.3), (2010, 2.3), (2015, 1.9), (2020, 1.3),
)  # fmt: skip


@dataclass(slots=True)
class Person:
    entity_id: str
    household: str
    role: str  # "single", "parent", "child"
    family: str
    given: str
    sex: str
    birth: date
    rrn: str
    insurance: str
    mobile: str | None  # own mobile; None for a child who has none
    mother: Person | None = None
    father: Person | None = None
    twin_of: str | None = None
    own_address: Address | None = None  # a grown child who moved out
    old_address: Address | None = None
    old_mobile: str | None = None
    birth_hospital: str | None = None  # set when a newborn alias record is written

    def age_in(self, year: int) -> int:
        return year - self.birth.year


@dataclass(slots=True)
class Household:
    household_id: str
    address: Address
    landline: str | None
    members: list[Person] = field(default_factory=list)


def birth_year_in(
    rng: random.Random, low: int, high: int, reweigh: dict[int, float] | None = None
) -> int:
    """A birth year from the age pyramid, between low and high inclusive, a cohort's weight
    multiplied by ``reweigh[cohort start]`` where given."""
    factors = reweigh or {}
    rows = [
        (start, w * factors.get(start, 1.0))
        for start, w in _COHORTS
        if start + 4 >= low and start <= high
    ]
    start = rng.choices([s for s, _ in rows], weights=[w for _, w in rows])[0]
    return min(max(start + rng.randrange(5), low), high)


def random_date(rng: random.Random, year: int) -> date:
    day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
    return min(day, TODAY)


def rrn_for(rng: random.Random, birth: date, sex: str) -> str:
    """A resident registration number: YYMMDD, the century/sex digit, 5 more digits and the
    check digit (weights 2-9,2-5, 11 - sum mod 11, mod 10). Numbers issued since October 2020
    carry 6 random digits after the sex digit and no check digit rule (the public change of
    2020), so a share of the youngest children's valid numbers fail the old checksum."""
    century = 1 if birth.year < 2000 else 3
    digit = century + (0 if sex == "M" else 1)
    head = f"{birth:%y%m%d}{digit}"
    if birth >= date(2020, 10, 1):
        return head + f"{rng.randrange(10**6):06d}"
    body = head + f"{rng.randrange(10**5):05d}"
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    check = (11 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11) % 10
    return body + str(check)


# First children of recent cohorts weigh twice: their younger siblings fill later years, so recent
# cohorts must start more families to come out at their share of the pyramid.
_FIRST_CHILD_REWEIGH: Final = {2005: 2.0, 2010: 2.0, 2015: 2.0, 2020: 2.0}
# People born 1975-94 also appear as the parents and grown children of family households: fewer
# of them among one-person and couple households keeps their total at the pyramid's share.
_ADULT_REWEIGH: Final = {1975: 0.6, 1980: 0.5, 1985: 0.5, 1990: 0.7, 1960: 1.2, 1965: 1.2}


class PopulationBuilder:
    """Draws households one at a time; the caller writes each one's records and lets it go."""

    def __init__(self, rng: random.Random, rates: Rates) -> None:
        self.rng = rng
        self.rates = rates
        self.persons = 0
        self.households = 0

    def _person(
        self, household: str, role: str, family: str, sex: str, birth: date, given: str | None
    ) -> Person:
        rng = self.rng
        self.persons += 1
        return Person(
            entity_id=f"P{self.persons:07d}", household=household, role=role, family=family,
            given=given or names.given_name(rng, birth.year, sex, self.rates.popular_name_share),
            sex=sex, birth=birth, rrn=rrn_for(rng, birth, sex),
            insurance=f"{rng.randint(1, 9)}{rng.randrange(10**10):010d}",
            mobile=draw_mobile(rng) if TODAY.year - birth.year >= 10 else None,
        )  # fmt: skip

    def household(self, budget: int) -> Household:
        """The next household, with at most ``budget`` persons."""
        rng, rates = self.rng, self.rates
        self.households += 1
        hid = f"F{self.households:07d}"
        address = draw_address(rng)
        landline = draw_landline(rng, address.district) if rng.random() < 0.35 else None
        home = Household(hid, address, landline)
        kind = rng.random()
        if kind < rates.single_person_households or budget == 1:
            sex = rng.choice("MF")
            year = birth_year_in(rng, 1925, TODAY.year - 20, _ADULT_REWEIGH)
            home.members.append(
                self._person(hid, "single", names.surname(rng), sex, random_date(rng, year), None)
            )
            return home
        if kind < rates.single_person_households + rates.couple_only_households or budget == 2:
            year = birth_year_in(rng, 1925, TODAY.year - 25, _ADULT_REWEIGH)
            husband = self._person(
                hid, "parent", names.surname(rng), "M", random_date(rng, year), None
            )
            wife_year = min(year + rng.randint(0, 4) - (1 if rng.random() < 0.2 else 0), 2004)
            wife = self._person(
                hid, "parent", names.surname(rng), "F", random_date(rng, wife_year), None
            )
            home.members += [husband, wife]
            return home
        return self._family(home, budget)

    def _family(self, home: Household, budget: int) -> Household:
        rng, rates = self.rng, self.rates
        hid = home.household_id
        children_wanted = rng.choices((1, 2, 3), weights=rates.children_weights)[0]
        first_year = birth_year_in(rng, 1975, TODAY.year, _FIRST_CHILD_REWEIGH)
        # Mother's age at her first birth: ~26 for 1980s births, ~33 in the 2020s.
        mother_age = round(26 + max(0, first_year - 1985) * 0.18 + rng.gauss(0, 3))
        mother_year = first_year - min(max(mother_age, 20), 42)
        father_year = mother_year - max(0, round(rng.gauss(2.5, 2.5)))
        single = rng.random() < rates.single_parent_share
        has_mother = not single or rng.random() < 0.8  # most single parents are mothers
        has_father = not single or not has_mother
        father_surname = names.surname(rng)
        mother = (
            self._person(
                hid, "parent", names.surname(rng), "F", random_date(rng, mother_year), None
            )
            if has_mother
            else None
        )
        father = (
            self._person(hid, "parent", father_surname, "M", random_date(rng, father_year), None)
            if has_father
            else None
        )
        parents = [p for p in (father, mother) if p is not None]
        home.members += parents
        # Children take the father's surname (the mother's in a few single-mother households).
        surname = father_surname
        if father is None and mother is not None and rng.random() < 0.3:
            surname = mother.family
        room = budget - len(parents)
        year = first_year
        born: list[Person] = []
        while len(born) < min(children_wanted, room) and year <= TODAY.year:
            birth = random_date(rng, year)
            twins = rng.random() < rates.twin_share_of_children / 2 and len(born) + 2 <= room
            sex = rng.choice("MF")
            given = self._sibling_name(birth.year, sex, born)
            child = self._person(hid, "child", surname, sex, birth, given)
            self._link_parents(child, mother, father)
            born.append(child)
            if twins:
                co_sex = sex if rng.random() < 0.6 else ("F" if sex == "M" else "M")
                # same-sex pairs (60 %): identical twins are always, fraternal half the time
                co_name = names.twin_given_name(
                    rng, child.given, birth.year, co_sex, rates.twin_name_shared_syllable
                )
                co = self._person(hid, "child", surname, co_sex, birth, co_name)
                co.twin_of, child.twin_of = child.entity_id, co.entity_id
                self._link_parents(co, mother, father)
                born.append(co)
            year += max(1, round(rng.gauss(3, 1.5)))
        for child in born:
            if child.age_in(TODAY.year) >= 25 and rng.random() < rates.adult_child_moved_out:
                child.own_address = draw_address(rng)
        home.members += born
        return home

    def _sibling_name(self, year: int, sex: str, born: list[Person]) -> str:
        """Parents do not give two children the same name."""
        taken = {b.given for b in born}
        for _ in range(30):
            given = names.given_name(self.rng, year, sex, self.rates.popular_name_share)
            if given not in taken:
                return given
        return given + "희"

    @staticmethod
    def _link_parents(child: Person, mother: Person | None, father: Person | None) -> None:
        child.mother, child.father = mother, father
