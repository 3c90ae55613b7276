"""Korean identifier rules (services/ingest/ingest/domain/korean.py) against /work/shared/notes/korea.md."""

from __future__ import annotations

import datetime as dt

import pytest
from ingest.domain.korean import (
    PROVINCES,
    RrnInvalid,
    canonical_phone,
    current_province_code,
    normalise_postal_code,
    parse_rrn,
    province_from_address,
    province_from_postal,
)

WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def with_check_digit(first12: str, *, foreign: bool = False) -> str:
    """Independent implementation of the check digit from the notes (foreign: Presidio's rule)."""
    total = sum(int(d) * w for d, w in zip(first12, WEIGHTS, strict=True))
    base = 13 if foreign else 11
    return first12 + str((base - total % 11) % 10)


def wrong_check_digit(first12: str, *, foreign: bool = False) -> str:
    right = with_check_digit(first12, foreign=foreign)
    return right[:12] + str((int(right[12]) + 1) % 10)


# --- resident registration numbers -------------------------------------------------------------


def test_python_stdnum_test_value_is_valid() -> None:
    facts = parse_rrn("971013-9019902")
    assert facts.digits == "9710139019902"
    # S = 9: a man born in the 1800s.
    assert facts.birth_date == dt.date(1897, 10, 13)
    assert facts.sex == "M"
    assert facts.foreign is False
    assert facts.checksum_ok is True


def test_hyphen_and_spaces_are_ignored() -> None:
    assert parse_rrn("9710139019902") == parse_rrn("971013-9019902")
    assert parse_rrn(" 971013 - 9019902 ").digits == "9710139019902"


def test_independent_check_digit_helper_agrees_with_the_reference_value() -> None:
    assert with_check_digit("971013901990") == "9710139019902"


def test_wrong_check_digit_is_a_flag_not_an_error() -> None:
    facts = parse_rrn("971013-9019903")
    assert facts.checksum_ok is False
    assert facts.birth_date == dt.date(1897, 10, 13)


@pytest.mark.parametrize("last", "0123456789")
def test_checksum_ok_only_for_the_one_right_digit(last: str) -> None:
    first12 = "900101123456"
    assert parse_rrn(first12 + last).checksum_ok is (with_check_digit(first12) == first12 + last)


@pytest.mark.parametrize(
    ("s_digit", "year", "sex", "foreign"),
    [
        ("9", 1890, "M", False),
        ("0", 1890, "F", False),
        ("1", 1990, "M", False),
        ("2", 1990, "F", False),
        ("3", 2090, "M", False),
        ("4", 2090, "F", False),
        ("5", 1990, "M", True),
        ("6", 1990, "F", True),
        ("7", 2090, "M", True),
        ("8", 2090, "F", True),
    ],
)
def test_sex_and_century_digit(s_digit: str, year: int, sex: str, foreign: bool) -> None:
    number = with_check_digit(f"900515{s_digit}12345", foreign=foreign)
    facts = parse_rrn(number)
    assert facts.birth_date == dt.date(year, 5, 15)
    assert facts.sex == sex
    assert facts.foreign is foreign
    assert facts.checksum_ok is True


@pytest.mark.parametrize("s_digit", "5678")
def test_foreign_numbers_use_the_foreign_check_digit(s_digit: str) -> None:
    first12 = f"850303{s_digit}23456"
    assert parse_rrn(with_check_digit(first12, foreign=True)).checksum_ok is True
    assert parse_rrn(wrong_check_digit(first12, foreign=True)).checksum_ok is False


@pytest.mark.parametrize(
    "raw",
    [
        "971313-9019902",  # month 13
        "970013-1019902",  # month 00
        "970230-1019902",  # 30 February
        "970100-1019902",  # day 00
        "000229-1234567",  # 1900 was not a leap year
    ],
)
def test_impossible_birth_date_is_rejected(raw: str) -> None:
    with pytest.raises(RrnInvalid) as caught:
        parse_rrn(raw)
    assert caught.value.reason_code == "RRN_DATE_INVALID"


def test_leap_day_in_2000_is_valid() -> None:
    assert parse_rrn(with_check_digit("000229312345")).birth_date == dt.date(2000, 2, 29)


@pytest.mark.parametrize("raw", ["", "971013-901990", "971013-90199021", "abc", "97-10-13"])
def test_wrong_length_is_rejected(raw: str) -> None:
    with pytest.raises(RrnInvalid) as caught:
        parse_rrn(raw)
    assert caught.value.reason_code == "RRN_LENGTH"


# --- phones ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-1234-5678", "01012345678"),
        ("01012345678", "01012345678"),
        ("010 1234 5678", "01012345678"),
        ("+82 10-1234-5678", "01012345678"),
        ("+82-10-1234-5678", "01012345678"),
        ("+821012345678", "01012345678"),
        ("011-234-5678", "0112345678"),  # retired legacy prefix, still a valid number
        ("019-1234-5678", "01912345678"),
        ("02-123-4567", "021234567"),  # Seoul
        ("(02) 1234-5678", "0212345678"),
        ("+82 2 1234 5678", "0212345678"),
        ("031-123-4567", "0311234567"),  # Gyeonggi
        ("032-123-4567", "0321234567"),  # Incheon
        ("051-234-5678", "0512345678"),  # Busan
        ("053-234-5678", "0532345678"),  # Daegu
        ("064-712-3456", "0647123456"),  # Jeju
        ("070-1234-5678", "07012345678"),
    ],
)
def test_canonical_phone(raw: str, expected: str) -> None:
    assert canonical_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "없음",
        "12345",
        "010-1234",  # too short
        "010-1234-56789",  # too long
        "012-1234-5678",  # no such mobile prefix
        "+1 415 555 0100",  # not Korean
        "00-82-10-1234-5678",
    ],
)
def test_invalid_phone_is_none(raw: str) -> None:
    assert canonical_phone(raw) is None


# --- postal codes and provinces ----------------------------------------------------------------

# Notes: Seoul 01-09, Gyeonggi 10-20, Incheon 21-23, Gangwon 24-26, Chungbuk 27-29, Sejong 30,
# Chungnam 31-33, Daejeon 34-35, Gyeongbuk 36-40, Daegu 41-43, Ulsan 44-45, Busan 46-49,
# Gyeongnam 50-53, Jeonbuk 54-56, Jeonnam 57-60, Gwangju 61-62, Jeju 63.
POSTAL_RANGES = [
    (1, 9, "11"),
    (10, 20, "41"),
    (21, 23, "28"),
    (24, 26, "51"),
    (27, 29, "43"),
    (30, 30, "36"),
    (31, 33, "44"),
    (34, 35, "30"),
    (36, 40, "47"),
    (41, 43, "27"),
    (44, 45, "31"),
    (46, 49, "26"),
    (50, 53, "48"),
    (54, 56, "52"),
    (57, 60, "46"),
    (61, 62, "29"),
    (63, 63, "50"),
]


@pytest.mark.parametrize(("low", "high", "province"), POSTAL_RANGES)
def test_postal_code_range_boundaries(low: int, high: int, province: str) -> None:
    assert province_from_postal(f"{low:02d}000") == province
    assert province_from_postal(f"{high:02d}999") == province


@pytest.mark.parametrize("head", range(100))
def test_every_postal_prefix_maps_as_in_the_notes(head: int) -> None:
    expected = next((p for low, high, p in POSTAL_RANGES if low <= head <= high), None)
    assert province_from_postal(f"{head:02d}123") == expected


@pytest.mark.parametrize("postal", ["00123", "64000", "99999", "0315", "031540", ""])
def test_postal_code_outside_the_ranges_has_no_province(postal: str) -> None:
    assert province_from_postal(postal) is None


def test_postal_province_codes_are_current_codes() -> None:
    assert {p for _, _, p in POSTAL_RANGES} <= set(PROVINCES)
    assert "42" not in PROVINCES and "45" not in PROVINCES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("03154", ("03154", None)),
        (" 03154 ", ("03154", None)),
        ("110-070", ("110070", "POSTAL_CODE_LEGACY")),
        ("1234", (None, "POSTAL_CODE_INVALID")),
        ("우편번호", (None, "POSTAL_CODE_INVALID")),
    ],
)
def test_normalise_postal_code(raw: str, expected: tuple[str | None, str | None]) -> None:
    assert normalise_postal_code(raw) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("42", "51"), ("45", "52"), ("51", "51"), ("52", "52"), ("11", "11"), ("50", "50")],
)
def test_old_province_codes_map_to_current(code: str, expected: str) -> None:
    assert current_province_code(code) == expected


@pytest.mark.parametrize("code", ["00", "12", "99", "4", "", "강원"])
def test_unknown_province_code_is_none(code: str) -> None:
    assert current_province_code(code) is None


def test_every_current_province_code_maps_to_itself() -> None:
    for code in PROVINCES:
        assert current_province_code(code) == code


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("서울특별시 종로구 세종대로 209", "11"),
        ("강원도 춘천시 중앙로 1", "51"),  # old name
        ("강원특별자치도 춘천시 중앙로 1", "51"),
        ("전라북도 전주시 완산구 효자로 225", "52"),  # old name
        ("전북특별자치도 전주시 완산구 효자로 225", "52"),
        ("전라남도 무안군 삼향읍 오룡길 1", "46"),
        ("경기도 수원시 팔달구 효원로 1", "41"),
        ("제주특별자치도 제주시 문연로 6", "50"),
        ("123 Main Street", None),
    ],
)
def test_province_from_address(address: str, expected: str | None) -> None:
    assert province_from_address(address) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+82 010-1234-5678", "01012345678"),
        ("+82 (0)10-1234-5678", "01012345678"),
        ("+82-10-1234-5678", "01012345678"),
        ("010-1234-567", None),  # one digit short for a 010 number
        ("020-123-4567", None),  # 02 is followed by the exchange, never by 0
    ],
)
def test_international_and_near_miss_phone_forms(raw: str, expected: str | None) -> None:
    assert canonical_phone(raw) == expected
