"""What a record is reduced to for linkage: a :class:`Profile` of normalised comparison values
(the registration number only as a keyed hash), and the blocking keys that bring up candidates.

Fellegi-Sunter linkage (D-linkage-1) in four modules: ``profile`` (this), ``comparison`` (two
profiles into graded levels), ``weights`` (what a level weighs, the parameters EM learns) and
``rules`` (the evidence no sum of agreements may override: the twin rule and its kin).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from biostream.keyring import KeyRing, version_number
from rapidfuzz.distance import OSA

from linkage.domain import names

_DIGITS: Final = re.compile(r"\D+")
_ADDRESS_PUNCT: Final = re.compile(r"[,.#()\-]+")


@dataclass(frozen=True, slots=True)
class Identity:
    """One record's identifying fields as received; every field may be unknown."""

    record_id: str
    family_name: str | None = None
    given_name: str | None = None
    name_latin: str | None = None
    birth_date: str | None = None  # YYYY-MM-DD (not necessarily a valid date)
    sex: str | None = None  # M / F; anything else is unknown
    rrn: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    phone: str | None = None
    postal_code: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """Normalised comparison values of one record. What the index stores per hospital patient."""

    family: str | None  # canonical surname (initial-sound rule / romanised-spelling key)
    given: str | None
    latin: tuple[str, ...]  # folded romanised name in both orders
    birth: str | None  # YYYYMMDD
    sex: str | None
    # Keyed hashes, never the number: "<key version>:<hash>" under each person-key version held
    # when the profile was made, newest first, comma-separated (D33; ``same_rrn`` compares).
    rrn: str | None
    rrn_strong: bool  # number consistent with birth date and sex, and its check digit holds
    ids: tuple[str, ...]  # "system\x1fvalue"
    phone: str | None
    postal: str | None
    address: str | None
    # D43: a newborn alias (named after its mother): "" or the twin marker it carries (1, 2, a,
    # b); None for every other record.
    newborn: str | None = None
    # Derived, never stored: whether the name fields are written in Hangul (D44). Kept on the
    # profile because every candidate's upper bound asks.
    hangul_name: bool = False

    def __post_init__(self) -> None:
        hangul = names.starts_hangul(self.family) or names.starts_hangul(self.given)
        object.__setattr__(self, "hangul_name", hangul)

    def to_list(self) -> list[object]:
        stored: list[object] = [
            self.family, self.given, list(self.latin), self.birth, self.sex, self.rrn,
            self.rrn_strong, list(self.ids), self.phone, self.postal, self.address,
        ]  # fmt: skip
        if self.newborn is not None:
            stored.append(self.newborn)  # profiles stored before D43 have eleven entries
        return stored

    @classmethod
    def from_list(cls, raw: Sequence[object]) -> Profile:
        def s(v: object) -> str | None:
            return None if v is None else str(v)

        def t(v: object) -> tuple[str, ...]:
            return tuple(str(x) for x in v) if isinstance(v, list) else ()

        return cls(
            s(raw[0]), s(raw[1]), t(raw[2]), s(raw[3]), s(raw[4]), _versioned_rrn(s(raw[5])),
            bool(raw[6]), t(raw[7]), s(raw[8]), s(raw[9]), s(raw[10]),
            s(raw[11]) if len(raw) > 11 else None,
        )  # fmt: skip

    @property
    def birth_year(self) -> int | None:
        return int(self.birth[:4]) if self.birth else None


def _versioned_rrn(stored: str | None) -> str | None:
    """A profile stored before D33 holds one bare hash, made with the single person key of
    before, which is version k1."""
    if stored is None or ":" in stored:
        return stored
    return f"k1:{stored}"


def _rrn_hashes(value: str) -> dict[str, str]:
    return dict(entry.split(":", 1) for entry in value.split(","))


def same_rrn(a: str, b: str) -> bool | None:
    """D33: whether two profiles' registration-number hashes name the same number, compared
    under the newest person-key version both were hashed with; None (unknown, as if one were
    missing) when they share no version, which only happens once a version still needed was
    retired."""
    if a == b:
        return True
    if "," not in a and "," not in b:
        # One version each (the common case): same version and different hashes, or no common one.
        return None if a[: a.index(":")] != b[: b.index(":")] else False
    hashes_a, hashes_b = _rrn_hashes(a), _rrn_hashes(b)
    common = hashes_a.keys() & hashes_b.keys()
    if not common:
        return None
    newest = max(common, key=version_number)
    return hashes_a[newest] == hashes_b[newest]


def rrn_hash(key: bytes, rrn: str) -> str:
    """D-linkage-1: the registration number as a keyed hash (HMAC-SHA256, 96 bits): profiles and
    the durable state never hold the number itself."""
    return hmac.new(key, b"rrn:" + rrn.encode(), hashlib.sha256).hexdigest()[:24]


def rrn_birth_date(rrn: str) -> str | None:
    """The birth date (YYYYMMDD) a 13-digit registration number states (date part and century
    digit), None when it states no valid date."""
    if len(rrn) != 13 or not rrn.isdigit():
        return None
    century = {9: 1800, 0: 1800, 1: 1900, 2: 1900, 5: 1900, 6: 1900}.get(int(rrn[6]), 2000)
    try:
        return dt.date(century + int(rrn[:2]), int(rrn[2:4]), int(rrn[4:6])).strftime("%Y%m%d")
    except ValueError:
        return None


def one_slip_apart(a: str, b: str) -> bool:
    """D39: two birth dates (YYYYMMDD) that one typing slip makes of each other: equal, day and
    month swapped, one digit wrong, or two neighbouring digits swapped."""
    if a == b or (a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]):
        return True
    return len(a) == len(b) and OSA.distance(a, b, score_cutoff=1) <= 1


def someone_elses_number(rrn: str, birth: str | None) -> bool:
    """D43: a registration number whose date is not the record's birth date, not even by one
    slip, is someone else's: a guardian's (a newborn registered under the mother's number
    before it has its own) or a relative's. It says nothing of this patient, and comparing it
    would join the baby to its mother."""
    stated = rrn_birth_date(rrn)
    return stated is not None and birth is not None and not one_slip_apart(stated, birth)


def rrn_checks(rrn: str, birth: str | None, sex: str | None) -> tuple[bool, bool]:
    """D-linkage-1: (valid: date part and sex digit agree with the record, check digit holds);
    both make a registration number strong, and different strong numbers different people."""
    born = rrn_birth_date(rrn)
    if born is None:
        return False, False
    s = int(rrn[6])
    valid = (birth is None or born == birth) and (
        sex not in ("M", "F") or ("M" if s % 2 == 1 else "F") == sex
    )
    total = sum(
        int(d) * w for d, w in zip(rrn[:12], (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), strict=True)
    )
    check = (11 - total % 11) % 10 if s not in (5, 6, 7, 8) else (13 - total % 11) % 10
    return valid, check == int(rrn[12])


def _digits(value: str | None) -> str | None:
    if value is None:
        return None
    return _DIGITS.sub("", value) or None


def phone_key(raw: str | None) -> str | None:
    """D-linkage-9: one comparison key for every way a Korean number is written: +82 10 1234
    5678, +82-10-…, 82-10-…, (010)1234-5678, 010.1234.5678, 010 1234 5678, 01012345678 are one
    number. Digits only; the country code 82 replaced by the trunk 0 (+82 2 … is 02 …); then
    the subscriber part, the last eight digits (010-1234-5678 and 02-1234-5678 differ in their
    area code only in the ninth digit and beyond, and the key of before D-linkage-9 was the
    same last eight, so stored profiles compare unchanged). The raw form stays on the identity
    record as the hospital sent it; None without at least seven digits (an extension, a typo)."""
    digits = _digits(raw)
    if digits is None:
        return None
    if digits.startswith("82") and len(digits) >= 10:
        digits = "0" + digits[2:]
    if digits.startswith("00"):  # an international prefix typed before the 82
        digits = digits.lstrip("0")
        digits = "0" + digits[2:] if digits.startswith("82") else digits
    if len(digits) < 7:
        return None
    return digits[-8:]


def _address(value: str | None) -> str | None:
    text = names.clean(value)
    if text is None:
        return None
    tokens = _ADDRESS_PUNCT.sub(" ", text).split()
    # The province leads a Korean address and is spelt three ways (서울특별시 / 서울 / 강원도 vs
    # 강원특별자치도); the postal code carries it anyway.
    if len(tokens) >= 3 and names.is_hangul(tokens[0]) and tokens[0][-1:] in ("도", "시", "울"):
        tokens = tokens[1:]
    return " ".join(tokens) or None


def rrn_hash_keys(keys: KeyRing, timestamp_ms: int) -> list[tuple[str, bytes]]:
    """D33: the person-key versions a registration number is hashed under for an input of this
    time: the one in force and every older one held (so it meets profiles made before a
    rotation), newest first; versions not yet in force are not used."""
    return [(v.version, v.material) for v in keys.in_use_at(timestamp_ms)]


def make_profile(identity: Identity, rrn_keys: bytes | Sequence[tuple[str, bytes]]) -> Profile:
    """D-linkage-1: what the index compares of an identity, normalised (names cleaned, surnames
    and given names canonicalised, Latin spellings folded; phone, postal code and birth date as
    digits) and the registration number only as a keyed hash (``rrn_hash``), strong when its
    date, sex and check digit agree (``rrn_checks``). D33: hashed under each person-key version
    given, ``(version, key)`` newest first (the version in force and the older ones held), so
    that it still meets profiles made before a rotation; one key alone is version k1."""
    keys = [("k1", rrn_keys)] if isinstance(rrn_keys, bytes) else rrn_keys
    family = names.clean(identity.family_name)
    given = names.clean(identity.given_name)
    latin = names.clean(identity.name_latin)
    newborn = names.newborn_marker(given)
    if newborn is not None:
        # D43: the name is the mother's (영희아기): compared, it would join the mother.
        family = given = latin = None
    birth = _digits(identity.birth_date)
    birth = birth if birth is not None and len(birth) == 8 else None
    sex = identity.sex if identity.sex in ("M", "F") else None
    rrn_digits = _digits(identity.rrn)
    rrn_value, strong = None, False
    if (
        rrn_digits is not None
        and len(rrn_digits) == 13
        and not someone_elses_number(rrn_digits, birth)
    ):
        valid, check = rrn_checks(rrn_digits, birth, sex)
        rrn_value = ",".join(f"{version}:{rrn_hash(key, rrn_digits)}" for version, key in keys)
        strong = valid and check
    phone = phone_key(identity.phone)
    postal = _digits(identity.postal_code)
    return Profile(
        family=names.canonical_surname(family) if family else None,
        given=names.canonical_given(given) or None if given else None,
        latin=names.latin_forms(latin) if latin else (),
        birth=birth,
        sex=sex,
        rrn=rrn_value,
        rrn_strong=strong,
        ids=tuple(sorted(f"{s}\x1f{v}" for s, v in identity.identifiers if s and v)),
        phone=phone,
        postal=postal[:5] if postal else None,
        address=_address(identity.address),
        newborn=newborn,
    )


def blocking_keys(p: Profile) -> list[str]:
    """Several independent keys, so that one wrong field cannot hide a true match (D-linkage-1;
    postal code + given name since D-linkage-5 (2))."""
    keys: list[str] = []
    year = p.birth[:4] if p.birth else None
    if p.birth:
        mm, dd = p.birth[4:6], p.birth[6:8]
        keys.append(f"d{year}{min(mm, dd)}{max(mm, dd)}")  # exact or day/month swapped
    if p.family and p.given:
        pair = "|".join(sorted((p.family, p.given)))  # either order
        if p.birth:
            keys.append(f"n{pair}|{year}")
            keys.append(f"m{pair}|{p.birth[4:]}")
        else:
            keys.append(f"n{pair}")
    if p.phone:
        keys.append(f"p{p.phone}")
    if p.rrn:
        keys.extend(f"r{entry}" for entry in p.rrn.split(","))
    keys.extend(f"i{i}" for i in p.ids)
    # Postal code + either name, in one namespace: a record without a birth date and with a
    # misspelt surname still meets its person at the given name, and one whose names were entered
    # in each other's field (D-linkage-5 (3)) meets it crosswise.
    if p.postal and p.family:
        keys.append(f"a{p.postal}|{p.family}")
    if p.postal and p.given and p.given != p.family:
        keys.append(f"a{p.postal}|{p.given}")
    if p.latin:
        keys.append(f"l{p.latin[0]}|{year or ''}")
    street = street_key(p.address)
    if street and p.family:
        # A record whose given name, birth date and postal code are all damaged still meets its
        # person at the house number and street, with the surname's first letter: it keeps the
        # block to a household's size in an apartment building, and a misspelt surname
        # (hingston/hingstxon) still meets its person there (a Hangul surname is one syllable:
        # the whole surname).
        keys.append(f"s{street}|{p.family[0]}")
    return keys


def street_key(address: str | None) -> str | None:
    """D-linkage-8: the house number and its street in a Western-style address, where the number
    leads (7 erldunda circuit; 355 Mokryeon-gil, a Korean address romanised): the part of an
    address that identifies a dwelling and is least often mistyped. None for a Korean road-name
    address (테헤란로 152): there the number is a building, often an apartment complex of
    thousands, and the postal code already gives a block of that size."""
    if address is None:
        return None
    tokens = address.split()
    for position, token in enumerate(tokens):
        if not token.isdigit():
            continue
        if position > 0 and names.is_hangul(tokens[position - 1]):
            return None
        after = tokens[position + 1] if position + 1 < len(tokens) else None
        if after is not None and not after.isdigit() and not names.is_hangul(after):
            return f"{after}|{token}"
        return None
    return None
