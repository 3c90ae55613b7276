"""validate_identity: which problems are flags and which reject the message."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from ingest.domain.identity import split_korean_name, validate_identity
from ingest.domain.model import PatientIdentity, RawIdentity, Rejected

RECEIVED = dt.date(2026, 3, 4)
# 1990-01-01, S=1 (man born in the 1900s), valid check digit.
RRN_1990_M = "900101-1234568"
FLAG = re.compile(r"^[A-Z][A-Z0-9_]*$")


def raw(**changes: str | None) -> RawIdentity:
    base = RawIdentity(
        local_patient_no="MRN-000123",
        family_name="김",
        given_name="민준",
        birth_date="1990-01-01",
        sex="M",
        rrn=RRN_1990_M,
        phone="010-1234-5678",
        address="서울특별시 종로구 세종대로 209",
        postal_code="03154",
    )
    return dataclasses.replace(base, **changes)


def validate(**changes: str | None) -> PatientIdentity:
    return validate_identity(raw(**changes), RECEIVED)


def rejection(**changes: str | None) -> str:
    with pytest.raises(Rejected) as caught:
        validate(**changes)
    return caught.value.reason_code


def test_clean_identity_has_no_flags_and_canonical_values() -> None:
    identity = validate()
    assert identity == PatientIdentity(
        local_patient_no="MRN-000123",
        family_name="김",
        given_name="민준",
        name_latin=None,
        birth_date=dt.date(1990, 1, 1),
        sex="M",
        rrn="9001011234568",
        phone="01012345678",
        address="서울특별시 종로구 세종대로 209",
        postal_code="03154",
        province_code="11",
        quality_flags=(),
    )


@pytest.mark.parametrize("mrn", [None, "", "   "])
def test_missing_patient_number_is_rejected(mrn: str | None) -> None:
    assert rejection(local_patient_no=mrn) == "PATIENT_NUMBER_MISSING"


def test_patient_number_is_trimmed() -> None:
    assert validate(local_patient_no="  MRN-7 ").local_patient_no == "MRN-7"


def test_rrn_birth_date_mismatch_is_flagged_not_rejected() -> None:
    identity = validate(birth_date="1990-01-02")
    assert "RRN_BIRTH_DATE_MISMATCH" in identity.quality_flags
    assert identity.birth_date == dt.date(1990, 1, 2)  # the stated date is kept
    assert identity.rrn == "9001011234568"


def test_rrn_sex_mismatch_is_flagged() -> None:
    identity = validate(sex="F")
    assert "RRN_SEX_MISMATCH" in identity.quality_flags
    assert identity.sex == "F"


def test_rrn_with_impossible_date_is_dropped_and_flagged() -> None:
    identity = validate(rrn="901301-1234567")
    assert identity.rrn is None
    assert "RRN_DATE_INVALID" in identity.quality_flags
    assert identity.birth_date == dt.date(1990, 1, 1)


def test_rrn_with_wrong_length_is_dropped_and_flagged() -> None:
    identity = validate(rrn="900101-12345")
    assert identity.rrn is None
    assert "RRN_LENGTH" in identity.quality_flags


def test_birth_date_and_sex_taken_from_rrn_when_missing() -> None:
    identity = validate(birth_date=None, sex=None, rrn="971013-9019902")
    assert identity.birth_date == dt.date(1897, 10, 13)
    assert identity.sex == "M"
    assert "BIRTH_DATE_FROM_RRN" in identity.quality_flags
    assert "RRN_CHECKSUM_MISMATCH" not in identity.quality_flags


def test_checksum_mismatch_for_old_birth_is_flagged() -> None:
    identity = validate(rrn="900101-1234567")
    assert identity.rrn == "9001011234567"
    assert "RRN_CHECKSUM_MISMATCH" in identity.quality_flags


def test_checksum_of_a_number_issued_after_2020_10_05_is_only_unverifiable() -> None:
    # Born 2021-03-01 (S=3): the six digits after S are random since 2020-10-05.
    identity = validate(birth_date="2021-03-01", rrn="210301-3999999")
    assert "RRN_CHECKSUM_UNVERIFIABLE" in identity.quality_flags
    assert "RRN_CHECKSUM_MISMATCH" not in identity.quality_flags


def test_foreign_registration_number_is_flagged() -> None:
    # 1990-01-01, S=5 (foreign man born in the 1900s), Presidio's foreign check digit.
    identity = validate(rrn="900101-5123452")
    assert "FOREIGN_REGISTRATION_NUMBER" in identity.quality_flags
    assert "RRN_CHECKSUM_MISMATCH" not in identity.quality_flags
    assert identity.sex == "M"


def test_rrn_derived_birth_date_in_the_future_is_not_accepted() -> None:
    # S=3 and YY=99 mean born 2099-12-31: impossible for a message received in 2026. A stated
    # birth date in the future is rejected (BIRTH_DATE_INVALID); the RRN path must not let one in.
    try:
        identity = validate(birth_date=None, rrn="991231-3123456")
    except Rejected as rejected:
        assert rejected.reason_code in {"BIRTH_DATE_INVALID", "IDENTITY_INSUFFICIENT"}
    else:
        assert identity.birth_date is None or identity.birth_date <= RECEIVED


@pytest.mark.parametrize("birth", ["1990-13-01", "1990-02-30", "19900101", "1990/01/01", "어제"])
def test_malformed_birth_date_becomes_unknown_with_a_flag(birth: str) -> None:
    # D36: the birth date from the registration number takes its place.
    identity = validate(birth_date=birth)
    assert "BIRTH_DATE_INVALID" in identity.quality_flags
    assert identity.birth_date == dt.date(1990, 1, 1)
    assert "BIRTH_DATE_FROM_RRN" in identity.quality_flags


@pytest.mark.parametrize("birth", ["1879-12-31", "2026-03-05", "2100-01-01"])
def test_birth_date_out_of_range_becomes_unknown_and_the_identity_thin(birth: str) -> None:
    identity = validate(birth_date=birth, rrn=None)
    assert identity.birth_date is None
    assert {"BIRTH_DATE_INVALID", "IDENTITY_INSUFFICIENT"} <= set(identity.quality_flags)


def test_birth_date_on_the_day_of_receipt_is_accepted() -> None:
    assert validate(birth_date="2026-03-04", rrn=None).birth_date == RECEIVED


def test_neither_name_nor_rrn_is_kept_as_a_thin_identity() -> None:
    # D36: only a missing patient number refuses; linkage gives a thin identity its own person.
    identity = validate(family_name=None, given_name=None, rrn=None)
    assert "IDENTITY_INSUFFICIENT" in identity.quality_flags


def test_neither_birth_date_nor_rrn_is_kept_as_a_thin_identity() -> None:
    identity = validate(birth_date=None, rrn=None)
    assert "IDENTITY_INSUFFICIENT" in identity.quality_flags


def test_a_full_identity_is_not_flagged_insufficient() -> None:
    assert "IDENTITY_INSUFFICIENT" not in validate().quality_flags
    assert "IDENTITY_INSUFFICIENT" not in validate(rrn=None).quality_flags


def test_name_is_split_from_full_text_with_two_syllable_surname() -> None:
    identity = validate(family_name=None, given_name=None, full_name="남궁민수")
    assert (identity.family_name, identity.given_name) == ("남궁", "민수")
    assert "NAME_SPLIT_FROM_TEXT" in identity.quality_flags


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("남궁민수", ("남궁", "민수")),
        ("황보 관", ("황보", "관")),
        ("김민준", ("김", "민준")),
        ("이 서연", ("이", "서연")),
        ("선우", ("선", "우")),  # two syllables only: a one-syllable surname and given name
        ("John Smith", None),
        ("김", None),
    ],
)
def test_split_korean_name(full: str, expected: tuple[str, str] | None) -> None:
    assert split_korean_name(full) == expected


def test_decomposed_hangul_is_normalised_before_splitting() -> None:
    import unicodedata

    assert split_korean_name(unicodedata.normalize("NFD", "남궁민수")) == ("남궁", "민수")


def test_name_that_cannot_be_split_is_kept_as_given_name_and_flagged() -> None:
    identity = validate(family_name=None, given_name=None, full_name="Hong Gildong")
    assert identity.family_name is None
    assert identity.given_name == "Hong Gildong"
    assert "NAME_NOT_SPLIT" in identity.quality_flags


def test_invalid_phone_is_dropped_and_flagged() -> None:
    identity = validate(phone="12-34")
    assert identity.phone is None
    assert "PHONE_INVALID" in identity.quality_flags


def test_missing_optional_fields_are_flagged() -> None:
    identity = validate(phone=None, address=None, postal_code=None)
    assert {"PHONE_MISSING", "ADDRESS_MISSING"} <= set(identity.quality_flags)
    assert identity.province_code is None


def test_province_from_postal_code() -> None:
    identity = validate(postal_code="24341", address=None)  # Chuncheon, Gangwon
    assert identity.province_code == "51"


@pytest.mark.parametrize(("stated", "expected"), [("42", "51"), ("45", "52"), ("11", "11")])
def test_stated_old_province_code_is_mapped(stated: str, expected: str) -> None:
    identity = validate(postal_code=None, address=None, province_code=stated)
    assert identity.province_code == expected


def test_unknown_stated_province_code_is_flagged() -> None:
    identity = validate(postal_code=None, address=None, province_code="99")
    assert identity.province_code is None
    assert "PROVINCE_CODE_INVALID" in identity.quality_flags


def test_province_from_address_when_no_postal_code() -> None:
    identity = validate(postal_code=None, address="전라북도 전주시 완산구 효자로 225")
    assert identity.province_code == "52"


def test_legacy_postal_code_is_kept_and_flagged() -> None:
    identity = validate(postal_code="110-070")
    assert identity.postal_code == "110070"
    assert "POSTAL_CODE_LEGACY" in identity.quality_flags


@pytest.mark.parametrize(("sex", "expected"), [("male", "M"), ("F", "F"), ("2", "F"), ("?", "M")])
def test_sex_codes(sex: str, expected: str) -> None:
    # "?" is unknown, so the RRN's sex digit (1: male) fills it in.
    assert validate(sex=sex).sex == expected


def test_flags_are_codes_never_values_and_unique() -> None:
    identity = validate(
        family_name=None,
        given_name=None,
        full_name="남궁민수",
        birth_date="1990-01-02",
        sex="F",
        rrn="900101-1234567",
        phone="99",
        postal_code="110-070",
        province_code="99",
    )
    assert identity.quality_flags
    assert len(set(identity.quality_flags)) == len(identity.quality_flags)
    for flag in identity.quality_flags:
        assert FLAG.match(flag), flag


def test_latin_only_name_counts_as_a_name_and_is_flagged() -> None:
    identity = validate_identity(
        RawIdentity(local_patient_no="X1", name_latin="John Smith", birth_date="1980-02-02"),
        RECEIVED,
    )
    assert identity.name_latin == "John Smith"
    assert identity.family_name is None and identity.given_name is None
    assert "NAME_LATIN_ONLY" in identity.quality_flags
    assert "NAME_MISSING" not in identity.quality_flags
