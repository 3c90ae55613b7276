"""Identity records of one person at the hospitals (decision D40): contacts by age and household,
newborn aliases, romanised-only records, old registrations, and the slips clerks make."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from . import names
from .people import TODAY, Household, Person
from .places import PROVINCES, Address, draw_address, draw_mobile, format_phone
from .rates import Rates

Record = dict[str, Any]

NEWBORN_ALIAS_FORMS = ("given+아기", "full+아기", "아기", "given+여아/남아", "given+(아기)",
                       "given+ 아기")  # fmt: skip


@dataclass(slots=True)
class Draft:
    """One record before it is written: the fields, its year, its pattern tags."""

    year: int
    hospital: str
    fields: Record
    tags: list[str] = field(default_factory=list)


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class RecordMaker:
    def __init__(self, rng: random.Random, rates: Rates, hospitals: list[str]) -> None:
        self.rng = rng
        self.rates = rates
        self.hospitals = hospitals
        # Bigger hospitals see more patients: weights fall with the hospital's rank.
        self.hospital_weights = [1.0 / (i + 1) ** 0.6 for i in range(len(hospitals))]
        self.mrn_counter: Counter[str] = Counter()
        self.phone_styles = [s for s, _ in rates.phone_formats]
        self.phone_weights = [w for _, w in rates.phone_formats]
        self.tally = Tally()

    # ------------------------------------------------------------------ per person

    def records_for(self, person: Person, home: Household) -> list[Draft]:
        rng, rates = self.rng, self.rates
        extra_mean = max(rates.records_per_person_mean - 1.0, 0.0)
        k = rates.records_dispersion
        count = 1 + _poisson(rng, rng.gammavariate(k, extra_mean / k) if extra_mean else 0.0)
        first_year = max(person.birth.year, TODAY.year - 20)
        years = sorted(rng.randint(first_year, TODAY.year) for _ in range(count))
        moved_year = None
        if person.role != "child" and rng.random() < rates.moved_since and years[-1] > years[0]:
            moved_year = rng.randint(years[0] + 1, years[-1])
        old_index = None
        if count >= 2 and rng.random() < rates.old_registration:
            old_year = TODAY.year - rng.randint(8, 25)
            if person.age_in(old_year) >= 13:
                years[0] = old_year
                old_index = 0
        used: dict[str, str] = {}  # hospital -> patient number last used there
        drafts: list[Draft] = []
        alias = self._newborn_alias(person, home, used)
        if alias:
            drafts.append(alias)
        for i, year in enumerate(years):
            hospital = self._hospital(used, alias.hospital if alias else None, i == 0)
            draft = Draft(year, hospital, {})
            old = i == old_index
            self._contact(draft, person, home, year, moved_year, old)
            self._identity(draft, person, hospital, used, old)
            drafts.append(draft)
        if old_index is not None:
            self._old_registration_ids(drafts[len(drafts) - count + old_index], drafts, person)
        for draft in drafts:
            self.tally.add(f"records_at_{draft.hospital}")
        self.tally.add(f"records_per_person:{min(len(drafts), 10)}")
        return drafts

    def _hospital(self, used: dict[str, str], birth_hospital: str | None, first: bool) -> str:
        """A newborn's first own-name record is often at the birth hospital; later records go
        back to a hospital already used half the time, else anywhere by hospital size."""
        rng = self.rng
        if first and birth_hospital and rng.random() < self.rates.alias_later_same_hospital:
            return birth_hospital
        if used and rng.random() < 0.5:
            return rng.choice(sorted(used))
        return rng.choices(self.hospitals, weights=self.hospital_weights)[0]

    def _mrn(self, hospital: str, used: dict[str, str]) -> str:
        if hospital in used and self.rng.random() < self.rates.same_hospital_same_mrn:
            return used[hospital]
        self.mrn_counter[hospital] += 1
        number = (
            f"{(self.mrn_counter[hospital] * 7919 + int(hospital[1:]) * 1_234_567) % 10**8:08d}"
        )
        used[hospital] = number
        return number

    # ------------------------------------------------------------------ contacts

    def _contact(
        self, draft: Draft, person: Person, home: Household, year: int, moved: int | None, old: bool
    ) -> None:
        rng, rates = self.rng, self.rates
        address: Address = home.address
        phone = person.mobile
        if person.role == "child" and person.age_in(year) < rates.child_own_phone_age:
            phone = self._parent_phone(person, home)
            draft.tags.append("household_phone")
        elif person.role == "child" and person.own_address and person.age_in(year) >= 25:
            address = person.own_address
        elif person.role == "child" and person.mobile is None:
            phone = self._parent_phone(person, home)
            draft.tags.append("household_phone")
        elif home.landline and rng.random() < rates.landline_share:
            phone = home.landline
            draft.tags.append("household_phone")
        if old or (moved is not None and year < moved):
            if person.old_address is None:
                person.old_address = draw_address(
                    rng, address.district if rng.random() < 0.4 else None
                )
                person.old_mobile = draw_mobile(rng)
            address, phone = person.old_address, person.old_mobile
            draft.tags.append("old_registration" if old else "moved")
        draft.fields["_address"] = address
        draft.fields["_phone"] = phone

    def _parent_phone(self, person: Person, home: Household) -> str | None:
        rng = self.rng
        if home.landline and rng.random() < self.rates.landline_share:
            return home.landline
        parents = [p for p in (person.mother, person.father) if p is not None and p.mobile]
        if not parents:
            return home.landline
        # Mothers are the contact of most children's registrations.
        if person.mother in parents and (len(parents) == 1 or rng.random() < 0.7):
            return person.mother.mobile if person.mother else None
        return rng.choice(parents).mobile

    # ------------------------------------------------------------------ identity fields

    def _identity(
        self, draft: Draft, person: Person, hospital: str, used: dict[str, str], old: bool
    ) -> None:
        rng, rates = self.rng, self.rates
        f = draft.fields
        f["identifiers"] = {f"{hospital}-mrn": self._mrn(hospital, used)}
        romanised = not old and rng.random() < rates.romanised_only
        family, given = person.family, person.given
        if not romanised:
            if family in names.SURNAME_INITIAL_SOUND and rng.random() < rates.surname_variant:
                family = names.SURNAME_INITIAL_SOUND[family]
                draft.tags.append("surname_variant")
                self.tally.add("typo:surname_variant")
            if rng.random() < rates.jamo_typo:
                slipped = names.jamo_slip(rng, given)
                if slipped != given:
                    given = slipped
                    draft.tags.append("jamo_typo")
                    self.tally.add("typo:jamo")
            f["family_name"], f["given_name"] = family, given
            if rng.random() < rates.name_latin_on_hangul:
                f["name_latin"] = names.latin_name(rng, person.family, person.given)[3]
        else:
            layout, lat_family, lat_given, whole = names.latin_name(
                rng, person.family, person.given
            )
            draft.tags.append("romanised_only")
            self.tally.add("romanised_only")
            self.tally.add(f"romanised_layout:{layout}")
            if rng.random() < rates.romanised_in_name_latin_only:
                f["name_latin"] = whole
                self.tally.add("romanised_only:name_latin_only")
            else:
                f["family_name"], f["given_name"] = lat_family, lat_given
                if rng.random() < 0.5:
                    f["name_latin"] = whole
        f["birth_date"] = self._birth_date(draft, person.birth)
        f["sex"] = person.sex if rng.random() >= rates.missing_sex else "U"
        if f["sex"] == "U":
            self.tally.add("missing:sex")
        if rng.random() < rates.rrn_present:
            f["identifiers"]["rrn"] = self._rrn(draft, person.rrn)
        if rng.random() < rates.insurance_id_present:
            f["identifiers"]["nhis"] = person.insurance
        self._finish_contact(draft, romanised)

    def _birth_date(self, draft: Draft, birth: date) -> str | None:
        rng, rates = self.rng, self.rates
        roll = rng.random()
        if roll < rates.missing_birth_date:
            draft.tags.append("missing:birth_date")
            self.tally.add("missing:birth_date")
            return None
        roll -= rates.missing_birth_date
        if roll < rates.date_swap and birth.day <= 12 and birth.day != birth.month:
            draft.tags.append("date_swap")
            self.tally.add("typo:date_swap")
            return f"{birth.year:04d}-{birth.day:02d}-{birth.month:02d}"
        roll -= rates.date_swap
        if roll < rates.date_digit_slip:
            text = f"{birth:%Y%m%d}"
            for _ in range(20):
                i = rng.choice((2, 3, 5, 6, 7))  # decade, year, month's units, day
                candidate = text[:i] + str(rng.randrange(10)) + text[i + 1 :]
                try:
                    slipped = date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
                except ValueError:
                    continue
                if slipped != birth and slipped <= TODAY:
                    draft.tags.append("date_slip")
                    self.tally.add("typo:date_slip")
                    return slipped.isoformat()
        return birth.isoformat()

    def _rrn(self, draft: Draft, rrn: str) -> str:
        rng, rates = self.rng, self.rates
        roll = rng.random()
        if roll < rates.rrn_invalid:
            draft.tags.append("rrn_invalid")
            self.tally.add("rrn:invalid")
            choice = rng.randrange(3)
            if choice == 0:
                rrn = rrn[:12] + str((int(rrn[12]) + rng.randint(1, 9)) % 10)
            elif choice == 1:
                rrn = rrn[:6] + "0000000"  # placeholder with the birth date only
            else:
                rrn = rrn[: rng.randint(7, 11)]
        elif roll < rates.rrn_invalid + rates.rrn_slip:
            draft.tags.append("rrn_slip")
            self.tally.add("rrn:slip")
            i = rng.choice((7, 8, 9, 10, 11, 12))
            rrn = rrn[:i] + str((int(rrn[i]) + rng.randint(1, 9)) % 10) + rrn[i + 1 :]
        self.tally.add("rrn:present")
        return f"{rrn[:6]}-{rrn[6:]}" if rng.random() < 0.7 and len(rrn) == 13 else rrn

    def _finish_contact(self, draft: Draft, romanised: bool) -> None:
        rng, rates = self.rng, self.rates
        f = draft.fields
        address: Address = f.pop("_address")
        phone: str | None = f.pop("_phone")
        if phone and rng.random() >= rates.missing_phone:
            style = rng.choices(self.phone_styles, weights=self.phone_weights)[0]
            if romanised and rng.random() < 0.5:
                style = rng.choice(("intl_space", "intl_dash", "intl_noplus"))
            f["phone"] = format_phone(phone, style)
            draft.tags.append(f"phone:{style}")
            self.tally.add(f"phone_format:{style}")
            self.tally.add("phone:landline" if not phone.startswith("010") else "phone:mobile")
        else:
            draft.tags.append("missing:phone")
            self.tally.add("missing:phone")
        if rng.random() < rates.missing_address:
            draft.tags.append("missing:address")
            self.tally.add("missing:address")
            return
        f["postal_code"] = address.postal_code
        if romanised:
            f["address"] = romanised_address(address)
            return
        f["address"] = self._address_text(draft, address)

    def _address_text(self, draft: Draft, address: Address) -> str:
        rng = self.rng
        province = address.district.province
        if rng.random() >= self.rates.address_variant:
            return address.road_form(province)
        variant = rng.choice(
            ("short_province", "informal_province", "lot", "no_province", "no_unit")
        )
        draft.tags.append(f"address:{variant}")
        self.tally.add(f"address_variant:{variant}")
        short, informal, _ = PROVINCES[province]
        if variant == "short_province":
            return address.road_form(short)
        if variant == "informal_province":
            return address.road_form(informal)
        if variant == "lot":
            return address.lot_form(rng.choice((province, short)))
        if variant == "no_province":
            return address.road_form(None)
        return address.road_form(province, with_unit=False)

    # ------------------------------------------------------------------ patterns

    def _newborn_alias(self, person: Person, home: Household, used: dict[str, str]) -> Draft | None:
        """The baby's first record: the mother's name + 아기 (or 여아/남아), the baby's own birth
        date and sex, the mother's phone, the family address."""
        rng, rates = self.rng, self.rates
        mother = person.mother
        if (
            person.role != "child"
            or mother is None
            or person.birth.year < TODAY.year - 20
            or rng.random() >= rates.born_in_hospital_alias
        ):
            return None
        twin = next((p for p in home.members if p.entity_id == person.twin_of), None)
        hospital = (
            twin.birth_hospital
            if twin and twin.birth_hospital
            else rng.choices(self.hospitals, weights=self.hospital_weights)[0]
        )
        person.birth_hospital = hospital  # twins are born at one hospital
        draft = Draft(person.birth.year, hospital, {}, ["newborn_alias"])
        form = rng.choice(NEWBORN_ALIAS_FORMS)
        suffix = ""
        if twin:
            # Twins' charts are told apart from the start: 아기1/아기2 or 아기A/아기B.
            suffix = "1" if person.entity_id < twin.entity_id else "2"
            if rng.random() < 0.4:
                suffix = "A" if suffix == "1" else "B"
            draft.tags.append("twin_alias")
        f = draft.fields
        if form == "given+아기":
            f["family_name"], f["given_name"] = mother.family, f"{mother.given}아기{suffix}"
        elif form == "full+아기":
            f["given_name"] = f"{mother.family}{mother.given}아기{suffix}"
        elif form == "아기":
            f["family_name"] = mother.family if rng.random() < 0.7 else person.family
            f["given_name"] = f"아기{suffix}"
        elif form == "given+여아/남아":
            word = "여아" if person.sex == "F" else "남아"
            f["family_name"], f["given_name"] = mother.family, f"{mother.given}{word}{suffix}"
        elif form == "given+(아기)":
            f["family_name"], f["given_name"] = mother.family, f"{mother.given}(아기){suffix}"
        else:
            f["family_name"], f["given_name"] = mother.family, f"{mother.given} 아기{suffix}"
        self.tally.add("newborn_alias")
        self.tally.add(f"newborn_alias_form:{form}")
        f["identifiers"] = {f"{hospital}-mrn": self._mrn(hospital, used)}
        f["birth_date"] = person.birth.isoformat()
        f["sex"] = person.sex
        if rng.random() < rates.alias_mother_rrn:
            f["identifiers"]["rrn"] = f"{mother.rrn[:6]}-{mother.rrn[6:]}"
            draft.tags.append("alias_mother_rrn")
            self.tally.add("newborn_alias:mother_rrn")
        f["_address"] = home.address
        f["_phone"] = mother.mobile or home.landline
        self._finish_contact(draft, False)
        return draft

    def _old_registration_ids(self, old: Draft, drafts: list[Draft], person: Person) -> None:
        """An old registration keeps one identifier a later record also has, in most cases."""
        rng, rates = self.rng, self.rates
        ids = old.fields["identifiers"]
        self.tally.add("old_registration")
        if rng.random() >= rates.old_registration_shared_id:
            ids.pop("rrn", None)
            ids.pop("nhis", None)
            self.tally.add("old_registration:no_shared_id")
            return
        later = [d for d in drafts if d is not old and "newborn_alias" not in d.tags]
        same_hospital = [d for d in later if d.hospital == old.hospital]
        choice = rng.random()
        if same_hospital and choice < 0.4:
            key = f"{old.hospital}-mrn"
            same_hospital[0].fields["identifiers"][key] = ids[key]
            self.tally.add("old_registration:shared_mrn")
        elif choice < 0.7:
            ids["rrn"] = f"{person.rrn[:6]}-{person.rrn[6:]}"
            if not any("rrn" in d.fields["identifiers"] for d in later) and later:
                rng.choice(later).fields["identifiers"]["rrn"] = person.rrn
            self.tally.add("old_registration:shared_rrn")
        else:
            ids["nhis"] = person.insurance
            if not any("nhis" in d.fields["identifiers"] for d in later) and later:
                rng.choice(later).fields["identifiers"]["nhis"] = person.insurance
            self.tally.add("old_registration:shared_insurance")


def _latin_place(word: str) -> str:
    for suffix, latin in (("대로", "daero"), ("로", "ro"), ("길", "gil"), ("구", "gu"), ("시", "si"),
                          ("군", "gun"), ("동", "dong")):  # fmt: skip
        if word.endswith(suffix) and len(word) > len(suffix):
            return f"{names.romanize_rr(word[: -len(suffix)]).capitalize()}-{latin}"
    return names.romanize_rr(word).capitalize()


def romanised_address(address: Address) -> str:
    """The address as an international system writes it: "152 Teheran-ro, Gangnam-gu, Seoul"."""
    short = PROVINCES[address.district.province][0]
    district = ", ".join(_latin_place(w) for w in reversed(address.district.name.split()))
    return f"{address.building} {_latin_place(address.road)}, {district}, {names.romanize_rr(short).capitalize()}"
