"""Two profiles compared field by field into graded agreement *levels* (D-linkage-1).

Korean names are compared on jamo with initial-sound and romanisation folding (``names``);
``rapidfuzz`` does the string distances (OSA, Jaro-Winkler, token-set ratio) in C.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein
from rapidfuzz.fuzz import token_set_ratio

from linkage.domain import names
from linkage.domain.profile import Profile, same_rrn

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
Levels = tuple[int | None, ...]


def _name_level(a: str, b: str, top: int) -> int:
    if a == b:
        return top
    ja, jb = names.jamo(a), names.jamo(b)
    if OSA.distance(ja, jb, score_cutoff=1) <= 1:  # one edit, or two letters swapped
        return top - 1
    if top >= 3 and JaroWinkler.similarity(ja, jb) >= 0.85:
        return top - 2
    return 0


def birth_level(a: str, b: str) -> int:
    if a == b:
        return 2
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return 1
    if sum(map(str.__ne__, a, b)) == 1:
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


def latin_name_is_evidence(family: int | None, given: int | None) -> bool:
    """The namesake rule (D-linkage-5 (5)): the Latin name is another writing of the Hangul name,
    so when both Hangul names already agree exactly it adds nothing (namesakes share it too) and
    is not compared; counting it again made namesakes with different birth dates match."""
    return not (family == LEVELS["family"] - 1 and given == LEVELS["given"] - 1)


def hangul_named(p: Profile) -> bool:
    """Whether the record's name fields are written in Hangul."""
    return p.hangul_name


def romanised_only(p: Profile) -> bool:
    """D44: a record with a name and no Hangul in it (HONG, GIL DONG from an international or
    insurance system): its name can only be compared with a Hangul one through romanisation."""
    return not p.hangul_name and bool(p.latin or p.family or p.given)


@lru_cache(maxsize=65536)
def _romanised_forms(
    family: str | None, given: str | None, latin: tuple[str, ...]
) -> frozenset[str]:
    text = " ".join(part for part in (family, given) if part)
    return frozenset(latin) | frozenset(names.latin_forms(text) if text else ())


def cross_script(a: Profile, b: Profile) -> bool:
    """D44: one record named in Hangul, the other only in Latin letters."""
    if a.hangul_name == b.hangul_name:
        return False
    return romanised_only(b) if a.hangul_name else romanised_only(a)


def _latin_level(x: frozenset[str] | tuple[str, ...], y: frozenset[str] | tuple[str, ...]) -> int:
    if set(x) & set(y):
        return 2
    best = max(Levenshtein.normalized_similarity(p, q) for p in x for q in y)
    return 1 if best >= 0.85 else 0


def compare(a: Profile, b: Profile) -> Levels:
    """D-linkage-1: field by field, the graded agreement levels of two profiles (``None``:
    unknown on a side), the comparison vector the match weight sums over.

    Names entered in each other's field are credited crosswise, the given name one level lower
    (D-linkage-5 (3)), and one name moved into the other field counts as a surname agreement
    (D-linkage-8); a postal code one digit off is a weak address agreement (D-linkage-5 (4)).
    """
    family = given = None
    if cross_script(a, b) and (a.family or a.given or a.latin) and (b.family or b.given or b.latin):
        return _compare_across_scripts(a, b)
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
        elif family < 2 and (a.family == b.given or a.given == b.family):
            # One name moved into the other field, the other field replaced (FEBRL's "heron
            # brooke" for "alicia heron"): the moved name still agrees, credited as the surname
            # whichever side it came from, so that the comparison stays symmetric.
            family = 2
    latin = None
    if a.latin and b.latin and latin_name_is_evidence(family, given):
        latin = _latin_level(a.latin, b.latin)
    return (family, given, latin, *_other_levels(a, b))


def _compare_across_scripts(a: Profile, b: Profile) -> Levels:
    """D44: a Hangul-named record against a romanised-only one: surname and given name cannot be
    compared letter by letter (unknown, not different); the romanised full name (the Hangul
    side romanised, folded, either order) stands for both."""
    forms_a = _romanised_forms(a.family, a.given, a.latin)
    forms_b = _romanised_forms(b.family, b.given, b.latin)
    latin = _latin_level(forms_a, forms_b) if forms_a and forms_b else None
    if (
        latin is not None
        and latin < 2
        and {names.coarse_latin(f) for f in forms_a} & {names.coarse_latin(f) for f in forms_b}
    ):
        latin = 2  # the same name in another romanisation system (Sungchul, Seongcheol)
    return (None, None, latin, *_other_levels(a, b))


def _other_levels(a: Profile, b: Profile) -> tuple[int | None, ...]:
    birth = None if a.birth is None or b.birth is None else birth_level(a.birth, b.birth)
    sex = None if a.sex is None or b.sex is None else int(a.sex == b.sex)
    agree = None if a.rrn is None or b.rrn is None else same_rrn(a.rrn, b.rrn)
    rrn = None if agree is None else int(agree)
    ids = _ids_level(a.ids, b.ids) if a.ids and b.ids else None
    phone = None if a.phone is None or b.phone is None else int(a.phone == b.phone)
    return (birth, sex, rrn, ids, phone, _address_level(a, b))
