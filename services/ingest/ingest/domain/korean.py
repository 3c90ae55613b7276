"""Korean identifiers and places: resident registration numbers, phones, postal and province codes.

Facts from ../shared/notes/korea.md. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

# 시도 codes. Gangwon was 42 until 2023-06-11, Jeonbuk 45 until 2024-01-18: old feeds still carry them.
PROVINCES = {
    "11": "서울특별시", "26": "부산광역시", "27": "대구광역시", "28": "인천광역시",
    "29": "광주광역시", "30": "대전광역시", "31": "울산광역시", "36": "세종특별자치시",
    "41": "경기도", "43": "충청북도", "44": "충청남도", "46": "전라남도", "47": "경상북도",
    "48": "경상남도", "50": "제주특별자치도", "51": "강원특별자치도", "52": "전북특별자치도",
}  # fmt: skip
RENAMED_PROVINCES = {"42": "51", "45": "52"}

# First two digits of the 5-digit postal code (since 2015-08-01) -> 시도 code.
_POSTAL_RANGES: tuple[tuple[int, int, str], ...] = (
    (1, 9, "11"), (10, 20, "41"), (21, 23, "28"), (24, 26, "51"), (27, 29, "43"),
    (30, 30, "36"), (31, 33, "44"), (34, 35, "30"), (36, 40, "47"), (41, 43, "27"),
    (44, 45, "31"), (46, 49, "26"), (50, 53, "48"), (54, 56, "52"), (57, 60, "46"),
    (61, 62, "29"), (63, 63, "50"),
)  # fmt: skip

# Province names as they appear at the start of an address, old names included.
_PROVINCE_NAMES = {
    "서울": "11", "부산": "26", "대구": "27", "인천": "28", "광주": "29", "대전": "30",
    "울산": "31", "세종": "36", "경기": "41", "충청북도": "43", "충북": "43",
    "충청남도": "44", "충남": "44", "전라남도": "46", "전남": "46", "경상북도": "47",
    "경북": "47", "경상남도": "48", "경남": "48", "제주": "50", "강원": "51",
    "전라북도": "52", "전북": "52",
}  # fmt: skip

RRN_RANDOM_SINCE = dt.date(2020, 10, 5)
_CENTURY = {
    9: 1800,
    0: 1800,
    1: 1900,
    2: 1900,
    5: 1900,
    6: 1900,
    3: 2000,
    4: 2000,
    7: 2000,
    8: 2000,
}
_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_NON_DIGIT = re.compile(r"\D")
# Domestic numbers: mobile (010 with 8 digits; 011/016/017/018/019 with 7-8), Seoul (02), the other
# area codes (0[3-6][1-5]), and internet telephony (070).
_PHONE = re.compile(r"010\d{8}|01[16789]\d{7,8}|02[1-9]\d{6,7}|0[3-6][1-5][1-9]\d{6,7}|070\d{8}")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


@dataclass(frozen=True, slots=True)
class RrnFacts:
    """What a registration number says about its holder. ``checksum_ok`` is evidence only:
    numbers issued since 2020-10-05 end in random digits."""

    digits: str
    birth_date: dt.date
    sex: str
    foreign: bool
    checksum_ok: bool


class RrnInvalid(ValueError):
    def __init__(self, reason_code: str) -> None:
        super().__init__(reason_code)
        self.reason_code = reason_code


def parse_rrn(raw: str) -> RrnFacts:
    """D7: a registration number's facts (digits, birth date, sex, foreign or not, checksum); a
    bad length or date is ``RrnInvalid`` (the number is dropped and flagged, the record kept)."""
    digits = _NON_DIGIT.sub("", raw)
    if len(digits) != 13:
        raise RrnInvalid("RRN_LENGTH")
    s_digit = int(digits[6])
    century = _CENTURY[s_digit]
    try:
        birth = dt.date(century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        raise RrnInvalid("RRN_DATE_INVALID") from None
    foreign = s_digit in (5, 6, 7, 8)
    total = sum(int(d) * w for d, w in zip(digits[:12], _WEIGHTS, strict=True))
    expected = (13 - total % 11) % 10 if foreign else (11 - total % 11) % 10
    return RrnFacts(
        digits=digits,
        birth_date=birth,
        sex="M" if s_digit % 2 == 1 else "F",
        foreign=foreign,
        checksum_ok=expected == int(digits[12]),
    )


def canonical_phone(raw: str) -> str | None:
    """Digits only, domestic form (``01012345678``); None when it cannot be a Korean number."""
    digits = _NON_DIGIT.sub("", raw)
    if raw.strip().startswith("+82") or (digits.startswith("82") and len(digits) >= 11):
        # International form; people often keep the trunk zero: +82 010-..., +82 (0)10-...
        digits = "0" + digits[2:].removeprefix("0")
    if digits.startswith("00"):
        return None
    return digits if _PHONE.fullmatch(digits) else None


def normalise_postal_code(raw: str) -> tuple[str | None, str | None]:
    """(postal code, flag). Old six-digit codes (``NNN-NNN``) are kept but flagged."""
    digits = _NON_DIGIT.sub("", raw)
    if len(digits) == 5:
        return digits, None
    if len(digits) == 6:
        return digits, "POSTAL_CODE_LEGACY"
    return None, "POSTAL_CODE_INVALID"


def province_from_postal(postal_code: str) -> str | None:
    if len(postal_code) != 5:
        return None
    head = int(postal_code[:2])
    for low, high, code in _POSTAL_RANGES:
        if low <= head <= high:
            return code
    return None


def province_from_address(address: str) -> str | None:
    for name, code in _PROVINCE_NAMES.items():
        if address.startswith(name):
            return code
    return None


def current_province_code(code: str) -> str | None:
    code = RENAMED_PROVINCES.get(code, code)
    return code if code in PROVINCES else None
