"""The rates of every pattern the population generator writes (decision D40).

Each field's docstring gives the default and where the figure comes from. Figures are rounded
public statistics where one exists (Statistics Korea, the Supreme Court's family registers) and
otherwise a stated estimate of hospital registration practice; ``unseen-rates.json`` next to this
file shifts them for evaluation on data the linkage was never tuned on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNSEEN_RATES_PATH = Path(__file__).with_name("unseen-rates.json")


@dataclass(frozen=True)
class Rates:
    # ---------------------------------------------------------------- households
    single_person_households: float = 0.33
    """0.33 of households are one person (Statistics Korea, 2022 census: 34.5 %)."""
    couple_only_households: float = 0.22
    """0.22 of households are a couple without children living with them (2022: ~23 % couple-only
    households, mostly older couples whose children left)."""
    single_parent_share: float = 0.10
    """0.10 of households with children have one parent (2022: ~7 % of all households are
    single-parent, ~10-11 % of those with children)."""
    children_weights: tuple[float, float, float] = (0.45, 0.45, 0.10)
    """Households with children: 1, 2 or 3 children (total fertility 0.72 in 2023, completed
    fertility of 1980s cohorts ~1.6-1.9: one and two children dominate, three are rare)."""
    twin_share_of_children: float = 0.035
    """0.035 of children are born as one of a twin pair (2023 births: 5.5 % of babies were
    multiples; ~3-4 % across the cohorts born since 2000, lower before; used for every cohort)."""
    twin_name_shared_syllable: float = 0.6
    """0.6 of twin pairs get names sharing a syllable (민준/민재, 서연/서윤): a parents' habit, an
    estimate from name registers' examples; the rest are independent names."""
    child_own_phone_age: int = 13
    """Children under 13 are registered with a parent's mobile or the home landline (most Korean
    children get a phone around age 10-13)."""
    adult_child_moved_out: float = 0.6
    """0.6 of children aged 25 or more no longer live at the family address (mean age at first
    marriage ~33-34; many leave for work or study earlier)."""
    landline_share: float = 0.15
    """0.15 of household-registered contacts use the home landline instead of a mobile (landline
    subscriptions fell below a quarter of households by 2020; hospitals still record them)."""
    # ---------------------------------------------------------------- names and dates
    popular_name_share: float = 0.25
    """0.25 of a cohort carry one of its decade's top 20-30 names (x1.2 before 1970, x0.6 from
    2000: the top name of a recent year is ~1 % of boys or girls, names were more concentrated
    before); the rest come from a long tail of syllable pairs of the era (estimate)."""
    # ---------------------------------------------------------------- records
    records_per_person_mean: float = 3.25
    """Mean own-name records per person; with newborn aliases the mean is ~3.4, as in the
    issue's external set (682,000 records for 200,000 persons)."""
    records_dispersion: float = 0.9
    """Shape of the gamma mixing the Poisson count of extra records: small = heavy tail (many
    persons with 1-2 records, some with 10+)."""
    same_hospital_same_mrn: float = 0.5
    """0.5 of a person's further records at a hospital reuse that hospital's patient number (a
    demographic update); the others are duplicate registrations under a new number (estimate)."""
    rrn_present: float = 0.35
    """0.35 of records carry the resident registration number (RRN): hospitals hold it but most
    research extracts and many systems do not (estimate)."""
    rrn_invalid: float = 0.02
    """0.02 of RRNs present are invalid (wrong checksum, truncated, a placeholder)."""
    rrn_slip: float = 0.02
    """0.02 of RRNs present have a one-digit slip that keeps a plausible form."""
    insurance_id_present: float = 0.25
    """0.25 of records carry the national health insurance card number (건강보험증 번호), the
    same for a person everywhere (estimate)."""
    # ---------------------------------------------------------------- newborns
    born_in_hospital_alias: float = 0.5
    """0.5 of children born in the last 20 years have a first record under a newborn alias at
    their birth hospital (99 % of Korean births are in hospitals; the alias is the default
    until the name is registered, within a month; older children's alias records are purged)."""
    alias_mother_rrn: float = 0.15
    """0.15 of newborn alias records carry the mother's RRN (no RRN exists for the baby yet)."""
    alias_later_same_hospital: float = 0.5
    """0.5 of newborns' later records are at the birth hospital (the others elsewhere)."""
    # ---------------------------------------------------------------- romanised-only
    romanised_only: float = 0.03
    """0.03 of records are from international or insurance systems with only a romanised name
    and no Hangul (estimate: international clinics, travel insurers, foreign-language forms)."""
    romanised_in_name_latin_only: float = 0.4
    """0.4 of romanised-only records put the name in name_latin only (the rest split it into
    family_name/given_name in Latin letters)."""
    name_latin_on_hangul: float = 0.1
    """0.1 of ordinary records also carry a romanised name (passport name) in name_latin."""
    # ---------------------------------------------------------------- old registrations
    old_registration: float = 0.08
    """0.08 of persons with two or more records have one from 8-25 years ago at one hospital
    with an old address and phone (Koreans move often: ~12-15 % of people a year in the 2010s)."""
    old_registration_shared_id: float = 0.85
    """0.85 of old registrations share an RRN, insurance number or patient number with a later
    record of the same person."""
    moved_since: float = 0.25
    """0.25 of adults' recent records show a new address and phone against their earlier ones
    (beyond the old registrations; yearly mobility ~12 %)."""
    # ---------------------------------------------------------------- typos and gaps
    jamo_typo: float = 0.02
    """0.02 of Hangul records have a one-jamo slip in the given name (서연/서영, 민준/민중)."""
    surname_variant: float = 0.05
    """0.05 of records of persons whose surname has an initial-sound variant (이/리, 유/류, 임/림,
    노/로) write the other form (두음법칙 spellings; 류 and 림 registrable from 2007; estimate)."""
    date_swap: float = 0.006
    """0.006 of birth dates have day and month swapped (where both are <= 12)."""
    date_digit_slip: float = 0.01
    """0.01 of birth dates have one digit changed (still a valid date)."""
    missing_birth_date: float = 0.01
    """0.01 of records lack a birth date."""
    missing_sex: float = 0.03
    """0.03 of records have sex unknown (U)."""
    missing_phone: float = 0.06
    """0.06 of records lack a phone number."""
    missing_address: float = 0.05
    """0.05 of records lack an address (and postal code)."""
    address_variant: float = 0.3
    """0.3 of addresses are written differently from the canonical road form: 서울/서울시 for
    서울특별시, the old lot-number (지번) form, no 시도, no apartment unit."""
    phone_formats: tuple[tuple[str, float], ...] = (
        ("dash", 0.5), ("plain", 0.2), ("intl_space", 0.05), ("intl_dash", 0.05),
        ("paren", 0.05), ("dot", 0.05), ("space", 0.05), ("intl_noplus", 0.05),
    )  # fmt: skip
    """How phone numbers are written: 010-1234-5678 half the time, digits only a fifth, the rest
    spread over +82, (010), dots, spaces (estimate; each system has its own habit)."""
    # ---------------------------------------------------------------- hospitals
    hospitals: int = 8
    """Number of hospitals (5-10 as in a regional network); ``--hospitals`` overrides it."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Rates:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"unknown rates: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "phone_formats":
                values[key] = tuple((str(k), float(v)) for k, v in value)
            elif key == "children_weights":
                values[key] = tuple(float(v) for v in value)
            else:
                values[key] = value
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> Rates:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
