"""Hangul syllable arithmetic, realistic typos and romanisation.

A precomposed syllable is ``0xAC00 + (initial * 21 + vowel) * 28 + final``; typos are made by
changing one of the three indices, which is what a slip on a two-set keyboard or a mishearing at a
front desk produces (ㅐ/ㅔ, ㅓ/ㅗ, ㅕ/ㅛ, a dropped final consonant, 연/영, 은/윤).
"""

from __future__ import annotations

import random
from typing import Final

from biostream.hangul import romanize_syllable as shared_romanize_syllable

from biostream_dev.synth.reference import INITIAL_SOUND_PAIRS

_BASE: Final = 0xAC00
_LAST: Final = 0xD7A3
_VOWELS: Final = 21
_FINALS: Final = 28

# Vowel indices: ㅏ0 ㅐ1 ㅑ2 ㅒ3 ㅓ4 ㅔ5 ㅕ6 ㅖ7 ㅗ8 ㅘ9 ㅙ10 ㅚ11 ㅛ12 ㅜ13 ㅝ14 ㅞ15 ㅟ16 ㅠ17 ㅡ18
# ㅢ19 ㅣ20. Confusable vowels, both directions.
_VOWEL_SWAPS: Final[dict[int, tuple[int, ...]]] = {
    1: (5,),  # ㅐ -> ㅔ
    5: (1,),
    4: (8,),  # ㅓ -> ㅗ
    8: (4,),
    6: (12,),  # ㅕ -> ㅛ
    12: (6,),
    3: (7,),  # ㅒ -> ㅖ
    7: (3,),
    10: (11, 15),  # ㅙ ㅚ ㅞ
    11: (10, 15),
    15: (10, 11),
}
_IEUNG: Final = 11  # initial ㅇ
_FINAL_N: Final = 4  # final ㄴ
_FINAL_NG: Final = 21  # final ㅇ
_VOWEL_EU: Final = 18  # ㅡ
_VOWEL_YU: Final = 17  # ㅠ

_INITIAL_SOUND: Final[dict[str, str]] = {}
for _a, _b in INITIAL_SOUND_PAIRS:
    _INITIAL_SOUND[_a] = _b
    _INITIAL_SOUND[_b] = _a


def is_syllable(ch: str) -> bool:
    return len(ch) == 1 and _BASE <= ord(ch) <= _LAST


def decompose(ch: str) -> tuple[int, int, int]:
    """(initial, vowel, final) indices of a precomposed Hangul syllable."""
    if not is_syllable(ch):
        raise ValueError(f"not a Hangul syllable: {ch!r}")
    offset = ord(ch) - _BASE
    return offset // (_VOWELS * _FINALS), (offset // _FINALS) % _VOWELS, offset % _FINALS


def compose(initial: int, vowel: int, final: int) -> str:
    return chr(_BASE + (initial * _VOWELS + vowel) * _FINALS + final)


def syllable_typos(ch: str) -> list[tuple[str, str]]:
    """All single-jamo typos of one syllable as (kind, new syllable), in a fixed order."""
    if not is_syllable(ch):
        return []
    initial, vowel, final = decompose(ch)
    out: list[tuple[str, str]] = []
    for other in _VOWEL_SWAPS.get(vowel, ()):
        out.append(("vowel_swap", compose(initial, other, final)))
    if final:
        out.append(("dropped_final", compose(initial, vowel, 0)))
    if final == _FINAL_N:
        out.append(("final_n_ng", compose(initial, vowel, _FINAL_NG)))  # 연 -> 영
    elif final == _FINAL_NG:
        out.append(("final_n_ng", compose(initial, vowel, _FINAL_N)))  # 영 -> 연
    if initial == _IEUNG and vowel == _VOWEL_EU:
        out.append(("eu_yu", compose(initial, _VOWEL_YU, final)))  # 은 -> 윤
    elif initial == _IEUNG and vowel == _VOWEL_YU:
        out.append(("eu_yu", compose(initial, _VOWEL_EU, final)))  # 윤 -> 은
    return out


def typo(rng: random.Random, text: str) -> str | None:
    """One jamo-level typo somewhere in ``text``, or None if no syllable admits one."""
    positions = [i for i, ch in enumerate(text) if syllable_typos(ch)]
    if not positions:
        return None
    pos = rng.choice(positions)
    _, replacement = rng.choice(syllable_typos(text[pos]))
    return text[:pos] + replacement + text[pos + 1 :]


def initial_sound_variant(surname: str) -> str | None:
    """The other spelling under the initial-sound rule (이<->리, 유<->류 ...), if there is one."""
    return _INITIAL_SOUND.get(surname)


# --------------------------------------------------------------------------------------------------
# Romanisation
# --------------------------------------------------------------------------------------------------


# Spellings people choose instead of the Revised Romanization for common name syllables.
_POPULAR_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {
    "영": ("young",), "정": ("jung", "chung"), "성": ("sung",), "현": ("hyun",),
    "준": ("joon", "jun"), "수": ("soo",), "우": ("woo",), "서": ("suh",), "연": ("yun",),
    "윤": ("yoon",), "철": ("chul",), "석": ("suk",), "혁": ("hyuk",), "훈": ("hoon",),
    "주": ("joo",), "숙": ("sook",), "경": ("kyung",), "광": ("kwang",), "규": ("kyu",),
    "근": ("keun",), "길": ("kil",), "선": ("sun",), "승": ("seung",), "순": ("soon",),
    "명": ("myung",), "아": ("ah",), "유": ("yoo",), "시": ("shi",), "신": ("shin",),
    "건": ("gun", "kun"), "범": ("bum",), "병": ("byung",), "덕": ("duk",), "두": ("doo",),
    "은": ("eun",), "희": ("hee",), "지": ("ji",), "민": ("min",), "진": ("jin",), "동": ("dong",),
    "상": ("sang",), "재": ("jae",), "종": ("jong",), "태": ("tae",), "혜": ("hye",),
    "기": ("ki",), "구": ("koo",), "도": ("do",), "하": ("ha",), "호": ("ho",),
}  # fmt: skip


def romanize_syllable(ch: str) -> str:
    """Revised Romanization of one syllable, without cross-syllable sound changes."""
    return shared_romanize_syllable(ch)


def romanize_given(rng: random.Random, given: str, *, popular_share: float = 0.5) -> list[str]:
    """Romanised syllables of a Korean given name, each either RR or a popular spelling."""
    parts: list[str] = []
    for ch in given:
        alternatives = _POPULAR_SPELLINGS.get(ch)
        if alternatives and rng.random() < popular_share:
            parts.append(rng.choice(alternatives))
        else:
            parts.append(romanize_syllable(ch))
    return parts


def join_given(parts: list[str], style: str) -> str:
    """ "Gildong" (joined), "Gil-dong" (hyphen) or "Gil Dong" (space)."""
    if not parts:
        return ""
    if style == "hyphen":
        return parts[0].capitalize() + "".join("-" + p for p in parts[1:])
    if style == "space":
        return " ".join(p.capitalize() for p in parts)
    return "".join(parts).capitalize()


GIVEN_STYLES: Final[tuple[str, ...]] = ("joined", "hyphen", "space")
GIVEN_STYLE_WEIGHTS: Final[tuple[float, ...]] = (0.45, 0.4, 0.15)
