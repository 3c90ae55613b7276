"""Validation and normalisation of identity fields: a problem is either a flag or a rejection."""

from __future__ import annotations

import datetime as dt
import re

from ingest.domain.korean import (
    RRN_RANDOM_SINCE,
    RrnFacts,
    RrnInvalid,
    canonical_phone,
    current_province_code,
    nfc,
    normalise_postal_code,
    parse_rrn,
    province_from_address,
    province_from_postal,
)
from ingest.domain.model import PatientIdentity, RawIdentity, Rejected

TWO_SYLLABLE_SURNAMES = frozenset({"남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방"})
_HANGUL = re.compile(r"^[\uac00-\ud7a3]+$")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EARLIEST_BIRTH = dt.date(1880, 1, 1)
_SEX = {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F", "2": "F"}


def split_korean_name(full_name: str) -> tuple[str, str] | None:
    """Surname first: two syllables for the known two-syllable surnames, else one."""
    name = nfc(full_name).replace(" ", "")
    if not _HANGUL.match(name) or len(name) < 2:
        return None
    surname_length = 2 if name[:2] in TWO_SYLLABLE_SURNAMES and len(name) > 2 else 1
    return name[:surname_length], name[surname_length:]


def parse_date(raw: str, field: str) -> dt.date:
    text = raw.strip()
    if not _ISO_DATE.fullmatch(text):
        raise Rejected(f"{field.upper()}_INVALID", f"{field} is not a YYYY-MM-DD date")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Rejected(f"{field.upper()}_INVALID", f"{field} is not a calendar date") from None


def _birth_date(raw: str | None, received: dt.date, flags: list[str]) -> dt.date | None:
    """D36: a birth date that is not a calendar date, or is before 1880 or after the day of
    receipt, becomes unknown with the flag BIRTH_DATE_INVALID; the record is kept."""
    if not raw or not raw.strip():
        return None
    try:
        birth_date = parse_date(raw, "birth_date")
    except Rejected:
        flags.append("BIRTH_DATE_INVALID")
        return None
    if not EARLIEST_BIRTH <= birth_date <= received:
        flags.append("BIRTH_DATE_INVALID")
        return None
    return birth_date


def validate_identity(raw: RawIdentity, received: dt.date) -> PatientIdentity:
    """D7, D36: rejected (``Rejected``) only without a patient number, the one thing without
    which nothing of the message can be joined. An invalid field becomes unknown with a flag
    (D36: a birth date that is no date, BIRTH_DATE_INVALID; everything about a registration
    number, phone or postal code, as before), and an identity too thin to link across hospitals
    (neither a name nor a registration number, or neither a birth date nor a registration
    number) is kept with IDENTITY_INSUFFICIENT: linkage gives it a person of its own until a
    fuller record of the same patient number arrives."""
    flags: list[str] = []
    if not raw.local_patient_no or not raw.local_patient_no.strip():
        raise Rejected("PATIENT_NUMBER_MISSING", "no hospital patient number (MRN) in the message")

    family, given = _names(raw, flags)
    birth_date = _birth_date(raw.birth_date, received, flags)
    sex = _SEX.get((raw.sex or "").strip().upper(), "U")

    rrn = None
    if raw.rrn and raw.rrn.strip():
        facts: RrnFacts | None = None
        try:
            facts = parse_rrn(raw.rrn)
        except RrnInvalid as invalid:
            flags.append(invalid.reason_code)
        else:
            if not EARLIEST_BIRTH <= facts.birth_date <= received:
                # A number whose date part is impossible for a living patient is a typo: keep
                # the rest of the record, drop the number.
                flags.append("RRN_DATE_INVALID")
                facts = None
        if facts is not None:
            rrn = facts.digits
            if birth_date is None:
                birth_date = facts.birth_date
                flags.append("BIRTH_DATE_FROM_RRN")
            elif facts.birth_date != birth_date:
                flags.append("RRN_BIRTH_DATE_MISMATCH")
            if sex == "U":
                sex = facts.sex
            elif facts.sex != sex:
                flags.append("RRN_SEX_MISMATCH")
            # Numbers issued since 2020-10-05 end in random digits: a failed checksum is only a
            # signal there, and for someone born before then it may still be a re-issued number.
            if not facts.checksum_ok:
                recent = facts.birth_date >= RRN_RANDOM_SINCE
                flags.append("RRN_CHECKSUM_UNVERIFIABLE" if recent else "RRN_CHECKSUM_MISMATCH")
            if facts.foreign:
                flags.append("FOREIGN_REGISTRATION_NUMBER")

    latin = raw.name_latin.strip() if raw.name_latin and raw.name_latin.strip() else None
    if family is None and given is None and latin is not None:
        # Foreign patients, and some interfaces, send only a Latin-script name: still a name.
        flags.append("NAME_LATIN_ONLY")
    if rrn is None and (birth_date is None or (family is None and given is None and latin is None)):
        flags.append("IDENTITY_INSUFFICIENT")

    phone = None
    if raw.phone and raw.phone.strip():
        phone = canonical_phone(raw.phone)
        if phone is None:
            flags.append("PHONE_INVALID")

    postal = None
    province = None
    if raw.postal_code and raw.postal_code.strip():
        postal, postal_flag = normalise_postal_code(raw.postal_code)
        if postal_flag:
            flags.append(postal_flag)
        if postal is not None:
            province = province_from_postal(postal)
    address = nfc(raw.address) if raw.address and raw.address.strip() else None
    if raw.province_code:
        stated = current_province_code(raw.province_code.strip())
        if stated is None:
            flags.append("PROVINCE_CODE_INVALID")
        elif province is None:
            province = stated
    if province is None and address is not None:
        province = province_from_address(address)
    for field_name, value in (
        ("NAME", family or given or latin),
        ("BIRTH_DATE", birth_date),
        ("PHONE", phone),
        ("ADDRESS", address),
    ):
        if value is None:
            flags.append(f"{field_name}_MISSING")

    return PatientIdentity(
        local_patient_no=raw.local_patient_no.strip(),
        family_name=family,
        given_name=given,
        name_latin=latin,
        birth_date=birth_date,
        sex=sex,
        rrn=rrn,
        phone=phone,
        address=address,
        postal_code=postal,
        province_code=province,
        quality_flags=tuple(dict.fromkeys(flags)),
        source=raw,
    )


def _names(raw: RawIdentity, flags: list[str]) -> tuple[str | None, str | None]:
    family = nfc(raw.family_name) if raw.family_name and raw.family_name.strip() else None
    given = nfc(raw.given_name) if raw.given_name and raw.given_name.strip() else None
    if family is None and given is None and raw.full_name and raw.full_name.strip():
        split = split_korean_name(raw.full_name)
        if split is None:
            flags.append("NAME_NOT_SPLIT")
            return None, nfc(raw.full_name)
        flags.append("NAME_SPLIT_FROM_TEXT")
        return split
    return family, given
