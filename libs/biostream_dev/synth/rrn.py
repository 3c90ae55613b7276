"""Resident registration numbers (주민등록번호): generation and the checks tests rely on.

Layout ``YYMMDD-SRRRRQC``: S encodes sex and century (1/2 1900s, 3/4 2000s, 9/0 1800s; 5-8 the same
for foreign residents), RRRR the registration office, Q a sequence digit and C a check digit with
weights 2,3,4,5,6,7,8,9,2,3,4,5 and ``C = (11 - (sum mod 11)) mod 10``. Numbers issued from
2020-10-05 on have six random digits after S, so their check digit holds only by chance.

Foreign registration numbers use the same check-digit formula here: the different formula some tools
apply to them is unverified (korea.md), and a generator should not invent one.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Final

from biostream_dev.synth.reference import Sex

RRN_WEIGHTS: Final[tuple[int, ...]] = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
RANDOM_SERIAL_SINCE: Final = date(2020, 10, 5)

_SEX_DIGITS: Final[dict[tuple[int, bool], tuple[int, int]]] = {
    # (century, foreign) -> (male digit, female digit)
    (1800, False): (9, 0),
    (1900, False): (1, 2),
    (2000, False): (3, 4),
    (1900, True): (5, 6),
    (2000, True): (7, 8),
}
_SEXES: Final[tuple[Sex, Sex]] = ("M", "F")
_DIGIT_MEANING: Final[dict[int, tuple[int, Sex, bool]]] = {
    digit: (century, sex, foreign)
    for (century, foreign), pair in _SEX_DIGITS.items()
    for digit, sex in zip(pair, _SEXES, strict=True)
}


def check_digit(first12: str) -> int:
    """Check digit over the first twelve digits (hyphen removed)."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError("need exactly 12 digits")
    total = sum(int(d) * w for d, w in zip(first12, RRN_WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def checksum_ok(rrn: str) -> bool:
    digits = rrn.replace("-", "")
    if len(digits) != 13 or not digits.isdigit():
        return False
    return check_digit(digits[:12]) == int(digits[12])


def sex_digit(birth: date, sex: Sex, *, foreign: bool) -> int:
    century = birth.year // 100 * 100
    try:
        male, female = _SEX_DIGITS[(century, foreign)]
    except KeyError:
        raise ValueError(f"no RRN sex digit for {birth.year} (foreign={foreign})") from None
    return male if sex == "M" else female


def parse(rrn: str) -> tuple[date, Sex, bool] | None:
    """(birth date, sex, foreign) encoded in the first seven digits, or None if they are invalid."""
    digits = rrn.replace("-", "")
    if len(digits) != 13 or not digits.isdigit():
        return None
    meaning = _DIGIT_MEANING.get(int(digits[6]))
    if meaning is None:
        return None
    century, sex, foreign = meaning
    try:
        born = date(century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None
    return born, sex, foreign


def make(
    rng: random.Random,
    *,
    birth: date,
    sex: Sex,
    foreign: bool,
    issued: date,
    region_range: tuple[int, int],
    sequence: int | None = None,
) -> str:
    """A number consistent with birth date and sex; checksummed if issued before 2020-10-05."""
    head = f"{birth:%y%m%d}{sex_digit(birth, sex, foreign=foreign)}"
    if issued >= RANDOM_SERIAL_SINCE:
        tail = f"{rng.randrange(1_000_000):06d}"
    else:
        region = rng.randint(*region_range)
        office = rng.randrange(100)
        seq = rng.randint(1, 9) if sequence is None else sequence
        first12 = f"{head}{region:02d}{office:02d}{seq}"
        tail = first12[7:] + str(check_digit(first12))
    return f"{head[:6]}-{head[6]}{tail}"


def sibling(rrn: str, rng: random.Random, *, sex: Sex, foreign: bool, issued: date) -> str:
    """A twin's number: same date and office, next sequence digit, own check digit.

    Numbers issued from 2020-10-05 on get fresh random digits instead.
    """
    digits = rrn.replace("-", "")
    head = digits[:6] + str(sex_digit(_birth_of(digits), sex, foreign=foreign))
    if issued >= RANDOM_SERIAL_SINCE:
        return f"{head[:6]}-{head[6]}{rng.randrange(1_000_000):06d}"
    seq = int(digits[11]) % 9 + 1
    first12 = f"{head}{digits[7:11]}{seq}"
    return f"{first12[:6]}-{first12[6:]}{check_digit(first12)}"


def _birth_of(digits: str) -> date:
    parsed = parse(digits)
    if parsed is None:
        raise ValueError("invalid RRN")
    return parsed[0]
