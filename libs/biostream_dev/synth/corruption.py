"""How a hospital's record of a person drifts from the truth.

Three layers, each with its documented rate in :class:`CorruptionRates`:

* registration: decided once per (person, hospital) and repeated in every message from there
  (a typo at the front desk, the other initial-sound spelling, a wrong birth date, no RRN ...);
* time: people really move and change phones; a hospital may never learn of it (stale values);
* message: a single message may lack a field or carry a one-off typo.

Every deviation is named; the names are listed per message in ``truth.jsonl`` (``corruptions``).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import date
from typing import Final

from biostream_dev.synth import hangul
from biostream_dev.synth.people import WINDOW_START, Person
from biostream_dev.synth.reference import SURNAMES


@dataclass(frozen=True, slots=True)
class CorruptionRates:
    # Registration level: per person and hospital.
    name_typo: float = 0.03  # jamo-level typo in the given name (or, 1 in 5, the surname)
    initial_sound_variant: float = 0.15  # of people whose surname has an initial-sound twin
    birth_date_transposed: float = 0.008  # day and month swapped (only where that is a date)
    birth_date_digit: float = 0.008  # one digit of the date wrong, still a valid date
    rrn_missing: float = 0.10  # no RRN sent
    rrn_typo: float = 0.01  # one digit of the six after S wrong (date part and S stay valid)
    phone_other: float = 0.04  # the hospital holds another number (a relative's, an old one)
    latin_variant: float = 0.30  # Latin name spelled unlike the person's own spelling
    # Time: after a real move or phone change.
    address_not_updated: float = 0.3  # the hospital keeps the old address
    phone_not_updated: float = 0.3  # the hospital keeps the old phone
    identity_update_message: float = 0.7  # a FHIR hospital that learns of it sends a Patient update
    # Message level.
    phone_missing: float = 0.03
    address_missing: float = 0.02
    message_name_typo: float = 0.005  # a typo in this message only

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_CORRUPTION_RATES: Final = CorruptionRates()

_SURNAME_LATIN: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    s.hangul: s.latin for s in SURNAMES
}


@dataclass(frozen=True, slots=True)
class LatinName:
    family: str
    given: str
    text: str


@dataclass(frozen=True, slots=True)
class Registration:
    """What one hospital recorded when it registered the person."""

    family: str
    given: str
    birth_date: date
    rrn: str | None
    phone_override: str | None  # a number the hospital holds instead of the person's own
    latin: LatinName | None
    corruptions: tuple[str, ...]


def _latest_wrong_birth_date(day: date) -> date:
    # A wrong birth date must still precede every visit (visits start at WINDOW_START and after
    # birth), or a plausibility check would reject a message the truth calls well-formed.
    return max(day, WINDOW_START)


def transpose_day_month(day: date) -> date | None:
    if day.day > 12 or day.day == day.month:
        return None
    swapped = date(day.year, day.day, day.month)
    return swapped if swapped <= _latest_wrong_birth_date(day) else None


def wrong_digit(rng: random.Random, day: date) -> date | None:
    """The date with one digit of YYYYMMDD changed, still a valid, plausible date, or None."""
    text = f"{day:%Y%m%d}"
    for _ in range(20):
        pos = rng.randrange(2, 8)  # the first two year digits are rarely mistyped
        digit = rng.choice([d for d in "0123456789" if d != text[pos]])
        candidate = text[:pos] + digit + text[pos + 1 :]
        try:
            result = date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
        except ValueError:
            continue
        if date(1900, 1, 1) <= result <= _latest_wrong_birth_date(day):
            return result
    return None


def rrn_typo(rng: random.Random, number: str) -> str:
    pos = rng.randrange(8, 14)  # the six digits after "YYMMDD-S"
    digit = rng.choice([d for d in "0123456789" if d != number[pos]])
    return number[:pos] + digit + number[pos + 1 :]


def latin_for_hospital(rng: random.Random, person: Person, variant: bool) -> LatinName:
    family, given = person.latin_family, person.latin_given
    if variant and person.korean_name:
        options = [name for name, _ in _SURNAME_LATIN.get(person.family_name, ()) if name != family]
        if options and rng.random() < 0.6:
            family = rng.choice(options)
        style = rng.choice(hangul.GIVEN_STYLES)
        given = hangul.join_given(hangul.romanize_given(rng, person.given_name), style)
    r = rng.random()
    if r < 0.25:
        text = f"{given} {family}"  # Western order
    elif r < 0.45:
        text = f"{family} {given}".upper()  # passport style
    else:
        text = f"{family} {given}"
    return LatinName(family, given, text)


def register(
    rng: random.Random,
    person: Person,
    rates: CorruptionRates,
    *,
    latin_rate: float,
    other_phone: str,
) -> Registration:
    tags: list[str] = []
    family, given = person.family_name, person.given_name
    variant = hangul.initial_sound_variant(family) if person.korean_name else None
    if variant and rng.random() < rates.initial_sound_variant:
        family = variant
        tags.append("initial_sound_variant")
    if person.korean_name and rng.random() < rates.name_typo:
        if rng.random() < 0.2 and (typed := hangul.typo(rng, family)):
            family = typed
            tags.append("name_typo")
        elif typed := hangul.typo(rng, given):
            given = typed
            tags.append("name_typo")
    birth = person.birth_date
    r = rng.random()
    if r < rates.birth_date_transposed and (swapped := transpose_day_month(birth)):
        birth = swapped
        tags.append("birth_date_transposed")
    elif (
        rates.birth_date_transposed <= r < rates.birth_date_transposed + rates.birth_date_digit
        and (changed := wrong_digit(rng, birth))
    ):
        birth = changed
        tags.append("birth_date_digit")
    number: str | None = person.rrn
    r = rng.random()
    if r < rates.rrn_missing:
        number = None
        tags.append("rrn_missing")
    elif r < rates.rrn_missing + rates.rrn_typo:
        number = rrn_typo(rng, person.rrn)
        tags.append("rrn_typo")
    phone_override = None
    if rng.random() < rates.phone_other:
        phone_override = other_phone
        tags.append("phone_other")
    latin = None
    if rng.random() < latin_rate or not person.korean_name:
        is_variant = person.korean_name and rng.random() < rates.latin_variant
        latin = latin_for_hospital(rng, person, is_variant)
        if is_variant and (latin.family, latin.given) != (person.latin_family, person.latin_given):
            tags.append("latin_variant")
    return Registration(family, given, birth, number, phone_override, latin, tuple(tags))
