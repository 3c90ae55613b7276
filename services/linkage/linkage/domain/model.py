"""Fellegi-Sunter model: what a record is reduced to, how two are compared, what a match weighs.

An incoming record becomes a :class:`Profile` (normalised comparison values; the registration
number only as a keyed hash). Two profiles are compared field by field into graded *levels*
(:func:`compare`); each level has an m probability (how often a true match shows it) and a u
probability (how often a non-match does), and the match weight is the sum of ``log2(m/u)`` over the
fields both records have, plus the prior log-odds. Exact name agreement is term-frequency adjusted:
agreeing on 김 (21.5% of Koreans) is worth far less than agreeing on a rare surname.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein
from rapidfuzz.fuzz import token_set_ratio

from linkage.domain import names

FIELDS: Final = ("family", "given", "latin", "birth", "sex", "rrn", "ids", "phone", "address")
LEVELS: Final[dict[str, int]] = {
    "family": 3,  # different / similar (one jamo or letter off) / same (canonical)
    "given": 4,  # different / weak (Jaro-Winkler >= .85) / close (one edit) / same
    "latin": 3,  # different / similar / same (folded, either order)
    "birth": 3,  # different / near (day-month swapped or one digit) / same
    "sex": 2,  # different / same
    "rrn": 2,  # different / same keyed hash
    "ids": 3,  # different / one character off / same value in a shared system
    "phone": 2,  # different / same (last 8 digits)
    "address": 4,  # different / weak / postal or street / both
}
# Two close given names both at least this frequent relative to each other are two names (twins),
# not one name and its slip (Params.cap).
DISTINCT_NAME_RATIO: Final = 0.1
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
    rrn: str | None  # keyed hash, never the number
    rrn_strong: bool  # number consistent with birth date and sex, and its check digit holds
    ids: tuple[str, ...]  # "system\x1fvalue"
    phone: str | None
    postal: str | None
    address: str | None

    def to_list(self) -> list[object]:
        return [
            self.family, self.given, list(self.latin), self.birth, self.sex, self.rrn,
            self.rrn_strong, list(self.ids), self.phone, self.postal, self.address,
        ]  # fmt: skip

    @classmethod
    def from_list(cls, raw: Sequence[object]) -> Profile:
        def s(v: object) -> str | None:
            return None if v is None else str(v)

        def t(v: object) -> tuple[str, ...]:
            return tuple(str(x) for x in v) if isinstance(v, list) else ()

        return cls(
            s(raw[0]), s(raw[1]), t(raw[2]), s(raw[3]), s(raw[4]), s(raw[5]), bool(raw[6]),
            t(raw[7]), s(raw[8]), s(raw[9]), s(raw[10]),
        )  # fmt: skip

    @property
    def birth_year(self) -> int | None:
        return int(self.birth[:4]) if self.birth else None


# --------------------------------------------------------------------------------------------------
# Building a profile


def rrn_hash(key: bytes, rrn: str) -> str:
    return hmac.new(key, b"rrn:" + rrn.encode(), hashlib.sha256).hexdigest()[:24]


def rrn_checks(rrn: str, birth: str | None, sex: str | None) -> tuple[bool, bool]:
    """(valid: date part and sex digit agree with the record, check digit holds)."""
    if len(rrn) != 13 or not rrn.isdigit():
        return False, False
    s = int(rrn[6])
    century = {9: 1800, 0: 1800, 1: 1900, 2: 1900, 5: 1900, 6: 1900}.get(s, 2000)
    try:
        born = dt.date(century + int(rrn[:2]), int(rrn[2:4]), int(rrn[4:6]))
    except ValueError:
        return False, False
    valid = (birth is None or born.strftime("%Y%m%d") == birth) and (
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


def make_profile(identity: Identity, rrn_key: bytes) -> Profile:
    family = names.clean(identity.family_name)
    given = names.clean(identity.given_name)
    birth = _digits(identity.birth_date)
    birth = birth if birth is not None and len(birth) == 8 else None
    sex = identity.sex if identity.sex in ("M", "F") else None
    rrn_digits = _digits(identity.rrn)
    rrn_value, strong = None, False
    if rrn_digits is not None and len(rrn_digits) == 13:
        valid, check = rrn_checks(rrn_digits, birth, sex)
        rrn_value, strong = rrn_hash(rrn_key, rrn_digits), valid and check
    latin = names.clean(identity.name_latin)
    phone = _digits(identity.phone)
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
        phone=phone[-8:] if phone else None,
        postal=postal[:5] if postal else None,
        address=_address(identity.address),
    )


def blocking_keys(p: Profile) -> list[str]:
    """Several independent keys, so that one wrong field cannot hide a true match."""
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
        keys.append(f"r{p.rrn}")
    keys.extend(f"i{i}" for i in p.ids)
    if p.postal and p.family:
        keys.append(f"a{p.postal}|{p.family}")
    if p.postal and p.given:
        # A record without a birth date and with a misspelt surname still meets its person here.
        keys.append(f"g{p.postal}|{p.given}")
    if p.latin:
        keys.append(f"l{p.latin[0]}|{year or ''}")
    return keys


# --------------------------------------------------------------------------------------------------
# Comparing two profiles


def _name_level(a: str, b: str, top: int) -> int:
    if a == b:
        return top
    ja, jb = names.jamo(a), names.jamo(b)
    if OSA.distance(ja, jb, score_cutoff=1) <= 1:  # one edit, or two letters swapped
        return top - 1
    if top >= 3 and JaroWinkler.similarity(ja, jb) >= 0.85:
        return top - 2
    return 0


def _birth_level(a: str, b: str) -> int:
    if a == b:
        return 2
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return 1
    if sum(x != y for x, y in zip(a, b, strict=True)) == 1:
        return 1
    return 0


def _ids_level(a: tuple[str, ...], b: tuple[str, ...]) -> int | None:
    level: int | None = None
    for x in a:
        system, _, value = x.partition("\x1f")
        for y in b:
            other_system, _, other = y.partition("\x1f")
            if system != other_system:
                continue
            if value == other:
                return 2
            near = OSA.distance(value, other, score_cutoff=1) <= 1
            level = max(level or 0, 1 if near else 0)
    return level


def _address_level(a: Profile, b: Profile) -> int | None:
    postal = None if a.postal is None or b.postal is None else a.postal == b.postal
    similar = None
    if a.address is not None and b.address is not None:
        similar = token_set_ratio(a.address, b.address)
    if postal is None and similar is None:
        return None
    if (postal and similar is not None and similar >= 90) or (postal is None and similar == 100):
        return 3
    if postal or (similar is not None and similar >= 90):
        return 2
    if (
        (similar is not None and similar >= 70)
        or (
            a.postal is not None
            and b.postal is not None
            # Same district, or one digit mistyped or two swapped.
            and (
                a.postal[:3] == b.postal[:3]
                or OSA.distance(a.postal, b.postal, score_cutoff=1) <= 1
            )
        )
    ):
        return 1
    return 0


Levels = tuple[int | None, ...]


def compare(a: Profile, b: Profile) -> Levels:
    family = given = None
    if a.family is not None and b.family is not None:
        family = _name_level(a.family, b.family, 2)
    if a.given is not None and b.given is not None:
        given = _name_level(a.given, b.given, 3)
    if (
        family is not None and given is not None and (family < 2 or given < 3)
        and a.family is not None and a.given is not None
        and b.family is not None and b.given is not None
    ):  # fmt: skip
        # Names entered in each other's field: credited as compared crosswise, the given name one
        # level lower (the swap itself is one deviation, as one edit would be).
        swapped_family = _name_level(a.family, b.given, 2)
        swapped_given = _name_level(a.given, b.family, 3)
        if swapped_family and swapped_given and swapped_family + swapped_given > family + given:
            family, given = swapped_family, max(swapped_given - 1, 1)
    latin = None
    # The Latin name is another writing of the same name: when both names already agree exactly it
    # adds nothing (namesakes share it too), and counting it again would double the evidence.
    if a.latin and b.latin and not (family == 2 and given == 3):
        if set(a.latin) & set(b.latin):
            latin = 2
        else:
            best = max(Levenshtein.normalized_similarity(x, y) for x in a.latin for y in b.latin)
            latin = 1 if best >= 0.85 else 0
    birth = None if a.birth is None or b.birth is None else _birth_level(a.birth, b.birth)
    sex = None if a.sex is None or b.sex is None else int(a.sex == b.sex)
    rrn = None if a.rrn is None or b.rrn is None else int(a.rrn == b.rrn)
    ids = _ids_level(a.ids, b.ids) if a.ids and b.ids else None
    phone = None if a.phone is None or b.phone is None else int(a.phone == b.phone)
    return (family, given, latin, birth, sex, rrn, ids, phone, _address_level(a, b))


# --------------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class Thresholds:
    """Match weight (log2 posterior odds) at or above which a candidate is a match / a review."""

    match: float = 6.0
    review: float = 0.0


@dataclass
class Params:
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    prior_log2: float  # log2 odds that two random records are the same person
    thresholds: Thresholds = field(default_factory=Thresholds)
    tf: dict[str, dict[str, float]] = field(default_factory=dict)  # field -> value -> share

    def __post_init__(self) -> None:
        self.weights: dict[str, list[float]] = {
            f: [
                math.log2(max(m, 1e-6) / max(u, 1e-9))
                for m, u in zip(self.m[f], self.u[f], strict=True)
            ]
            for f in FIELDS
        }
        # For upper_bound: the best weight of each field, and the best below its top level.
        self._best = {f: max(w) for f, w in self.weights.items()}
        self._best_below_top = {f: max(w[:-1]) for f, w in self.weights.items()}

    def to_json(self) -> str:
        return json.dumps(
            {
                "m": self.m, "u": self.u, "prior_log2": self.prior_log2,
                "thresholds": {"match": self.thresholds.match, "review": self.thresholds.review},
                "tf": self.tf,
            },
            ensure_ascii=False, indent=1, sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str, base: Params | None = None) -> Params:
        """Read parameters; anything the file leaves out comes from ``base`` (the defaults)."""
        raw = json.loads(text)
        base = base or default_params()
        m = {**base.m, **{k: [float(x) for x in v] for k, v in raw.get("m", {}).items()}}
        u = {**base.u, **{k: [float(x) for x in v] for k, v in raw.get("u", {}).items()}}
        for name in FIELDS:
            if len(m[name]) != LEVELS[name] or len(u[name]) != LEVELS[name]:
                raise ValueError(f"{name}: {LEVELS[name]} levels expected")
        th = raw.get("thresholds", {})
        return cls(
            m=m,
            u=u,
            prior_log2=float(raw.get("prior_log2", base.prior_log2)),
            thresholds=Thresholds(
                float(th.get("match", base.thresholds.match)),
                float(th.get("review", base.thresholds.review)),
            ),
            tf={
                k: {str(a): float(b) for a, b in v.items()}
                for k, v in raw.get("tf", base.tf).items()
            },
        )

    def score(self, a: Profile, b: Profile, levels: Levels) -> float:
        total = self.prior_log2
        for index, level in enumerate(levels):
            if level is None:
                continue
            name = FIELDS[index]
            if level == LEVELS[name] - 1 and name in ("family", "given"):
                value = a.family if name == "family" else a.given
                share = self.tf.get(name, {}).get(value or "")
                if share is not None:
                    total += math.log2(max(self.m[name][level], 1e-6) / max(share, 1e-6))
                    continue
            total += self.weights[name][level]
        return total

    def _top_weight(self, name: str, value: str) -> float:
        share = self.tf.get(name, {}).get(value)
        if share is None:
            return self.weights[name][-1]
        return math.log2(max(self.m[name][-1], 1e-6) / max(share, 1e-6))

    def upper_bound(self, a: Profile, b: Profile) -> float:
        """A weight ``cap(score(compare(a, b)))`` cannot exceed, from cheap equality tests only.

        Exact fields (birth date, sex, registration number, phone) count as they are; a name or
        address whose top level is ruled out by a plain inequality counts with the best weight
        below the top, everything else with its best weight. Candidates whose bound is below the
        review threshold are left out without the string distances (same outcome, less work).
        """
        total = self.prior_log2
        weights = self.weights
        if a.birth is not None and b.birth is not None:
            total += weights["birth"][_birth_level(a.birth, b.birth)]
        if a.sex is not None and b.sex is not None:
            total += weights["sex"][a.sex == b.sex]
        if a.rrn is not None and b.rrn is not None:
            total += weights["rrn"][a.rrn == b.rrn]
        if a.phone is not None and b.phone is not None:
            total += weights["phone"][a.phone == b.phone]
        if a.ids and b.ids:
            total += self._best["ids"]
        if a.latin and b.latin:  # not compared at all when both names agree exactly
            total += max(self._best["latin"], 0.0)
        if a.family is not None and b.family is not None:
            # Top level only when equal in place or crosswise (names in each other's field).
            if a.family == b.family or a.family == b.given:
                total += max(self._best["family"], self._top_weight("family", a.family))
            else:
                total += self._best_below_top["family"]
        if a.given is not None and b.given is not None:
            if a.given == b.given:  # crosswise the given name is one level lower
                total += max(self._best["given"], self._top_weight("given", a.given))
            else:
                total += self._best_below_top["given"]
        if a.postal is not None and b.postal is not None:
            total += (
                self._best["address"] if a.postal == b.postal else self._best_below_top["address"]
            )
        elif a.address is not None and b.address is not None:
            total += self._best["address"]
        return total

    def cap(self, a: Profile, b: Profile, levels: Levels, score: float) -> float:
        """Evidence no sum of agreements may override.

        * Different valid registration numbers are different people.
        * Sex known on both sides and different, with given names that are not the same: never a
          match (boy-girl twins 민지/민재 share everything else), at most a review.
        * A given name that is not the same is the twin and sibling pattern: twins share surname,
          birth date, address and often the household phone, so those agreements must not add up
          to a match. A completely different given name, or a close one (one jamo or letter off,
          병식/병석) with the surname agreeing when both are established names (``_two_names``),
          goes to review at most, unless a *personal* identifier agrees: the registration number,
          an identifier in a shared system (the same value, or one character off: a slip in a
          personal number, FEBRL's commonest error), or the Latin name (another writing of the
          given name, so the Hangul difference is a slip). A phone or an address does not count:
          twins share the household's. Names swapped between the fields (one of them exactly
          equal crosswise) are not a different given name.
        """
        family, given, latin, _birth, sex, rrn, ids, _phone, _address = levels
        if rrn == 0 and a.rrn_strong and b.rrn_strong:
            return min(score, self.thresholds.review - 1.0)
        if given is None or given == LEVELS["given"] - 1:
            return score
        if sex == 0:
            return min(score, self.thresholds.match - 0.5)
        if rrn == 1 or ids or latin == 2:
            return score  # a personal identifier (or a one-character slip in one) agrees
        if a.given == b.family or a.family == b.given:
            return score  # names entered in each other's fields, one of them exactly the same
        if given == 0 or (family and self._two_names(a.given, b.given)):
            return min(score, self.thresholds.match - 0.5)
        return score

    def _two_names(self, a: str | None, b: str | None) -> bool:
        """Whether two close given names are two people's names rather than one name and a slip.

        Label-free, from the given-name frequencies learnt on the data (``tf``): a slip of the
        keyboard is rare (seen fewer than a few times, or far rarer than the name it comes from),
        while twins are given two established names (병식/병석, Aidan/Aiden). Without any
        given-name frequencies (untrained defaults) every close pair is taken as two names.
        """
        shares = self.tf.get("given")
        if not shares:
            return True
        share_a, share_b = shares.get(a or ""), shares.get(b or "")
        if share_a is None or share_b is None:
            return False
        return min(share_a, share_b) >= DISTINCT_NAME_RATIO * max(share_a, share_b)


# Korean surname shares (2015 census, top ten; korea.md) as term frequencies before any training.
KOREAN_SURNAME_SHARES: Final[Mapping[str, float]] = {
    "김": 0.215, "이": 0.147, "박": 0.084, "최": 0.047, "정": 0.043,
    "강": 0.024, "조": 0.021, "윤": 0.021, "장": 0.020, "임": 0.017,
}  # fmt: skip


def default_params() -> Params:
    """Hand-set starting values for an index of about a million persons.

    EM (training.py) replaces them from unlabelled data; a parameter file overrides them.
    """
    return Params(
        m={
            "family": [0.03, 0.05, 0.92],
            "given": [0.02, 0.03, 0.08, 0.87],
            "latin": [0.10, 0.30, 0.60],
            "birth": [0.02, 0.03, 0.95],
            "sex": [0.01, 0.99],
            "rrn": [0.03, 0.97],
            "ids": [0.20, 0.10, 0.70],
            "phone": [0.30, 0.70],
            "address": [0.25, 0.10, 0.25, 0.40],
        },
        u={
            "family": [0.88, 0.04, 0.08],
            "given": [0.97, 0.02, 0.008, 0.002],
            "latin": [0.97, 0.025, 0.005],
            "birth": [0.9975, 0.002, 0.0005],
            "sex": [0.5, 0.5],
            "rrn": [0.999999, 0.000001],
            "ids": [0.999, 0.0009, 0.0001],
            "phone": [0.999999, 0.000001],
            "address": [0.90, 0.08, 0.01999, 0.00001],
        },
        prior_log2=-20.0,
        thresholds=Thresholds(),
        tf={"family": dict(KOREAN_SURNAME_SHARES)},
    )
