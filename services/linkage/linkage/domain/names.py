"""Name normalisation for linkage: Hangul (jamo, initial-sound rule) and romanised names.

Pure functions, no state. Hangul syllables are compared as jamo strings (Unicode NFD), so that a
one-letter slip (김/긴, 서연/서영) is one edit instead of a whole different syllable. Surnames are
canonicalised under the initial-sound rule (류->유, 리->이, 림->임, 로->노, 량->양, 려->여, 라->나)
and romanised surnames under the spellings people actually choose (Lee/Yi/Rhee, Park/Pak/Bak ...).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from biostream.hangul import HANGUL_FIRST, HANGUL_LAST, romanize_syllable

# Initial-sound rule (두음법칙): since 2007 people may register either spelling.
INITIAL_SOUND: Final[dict[str, str]] = {
    "류": "유", "리": "이", "림": "임", "로": "노", "량": "양", "려": "여", "라": "나",
    "룡": "용", "뢰": "뇌", "륙": "육", "런": "연",
}  # fmt: skip

# Romanised surname spellings, folded to one key (facts from korea.md and common usage).
_LATIN_SURNAMES: Final[dict[str, tuple[str, ...]]] = {
    "i": ("lee", "yi", "rhee", "ri", "i", "rhie", "yee", "lie"),
    "bak": ("park", "pak", "bak", "bahk", "pahk"),
    "jeong": ("jung", "jeong", "chung", "joung", "cheong", "jong"),
    "choe": ("choi", "choe", "chey", "choy", "chwe"),
    "im": ("lim", "im", "rim", "leem", "yim"),
    "yu": ("yoo", "yu", "ryu", "you", "yoo", "ryoo", "rhyu"),
    "gim": ("kim", "gim", "ghim", "kym"),
    "gang": ("kang", "gang"),
    "jo": ("cho", "jo", "joe", "jho"),
    "yun": ("yoon", "yun", "youn"),
    "jang": ("jang", "chang"),
    "han": ("han", "hahn"),
    "o": ("oh", "o"),
    "seo": ("seo", "suh", "sur", "seoh"),
    "sin": ("shin", "sin", "shinn"),
    "gwon": ("kwon", "gwon", "kwun"),
    "hwang": ("hwang", "whang"),
    "an": ("ahn", "an"),
    "song": ("song", "soung"),
    "no": ("noh", "no", "roh", "ro", "rho"),
    "yang": ("yang", "ryang"),
    "gu": ("koo", "ku", "gu", "goo"),
    "go": ("ko", "go", "koh", "goh"),
    "mun": ("moon", "mun"),
    "baek": ("baek", "paek", "baik", "paik", "back"),
    "heo": ("heo", "hur", "huh", "her"),
    "nam": ("nam", "nahm"),
    "jeon": ("jeon", "jun", "chun", "chon"),
    "hong": ("hong",),
    "yeo": ("yeo", "yeoh", "yuh", "ryeo"),
    "na": ("na", "ra", "nah", "rah"),
}
LATIN_SURNAME_KEY: Final[dict[str, str]] = {
    spelling: key for key, spellings in _LATIN_SURNAMES.items() for spelling in spellings
}


# Phonetic folding of romanised Korean: the spelling choices people make for one sound collapse
# (oo/u, eo/o/u, ee/i, k/g, p/b, t/d, ch/j, sh/s, r/l). Applied to both sides, never shown.
_FOLDS: Final = (
    ("ooh", "u"), ("oo", "u"), ("eo", "o"), ("eu", "u"), ("ee", "i"), ("ae", "e"), ("ai", "e"),
    ("wo", "o"), ("uh", "o"), ("ch", "j"), ("sh", "s"), ("k", "g"), ("p", "b"), ("t", "d"),
    ("r", "l"), ("y", ""), ("w", ""), ("h", ""),
)  # fmt: skip
_NON_LETTERS: Final = re.compile(r"[^a-z]+")
_SPACES: Final = re.compile(r"\s+")


# What a newborn is registered as before it has a name (issue 20): "baby", "baby girl", "baby boy".
NEWBORN_WORDS: Final = ("아기", "여아", "남아")
_NEWBORN_ALIAS: Final = re.compile(
    r"^\S*?\s*\(?\s*(?:" + "|".join(NEWBORN_WORDS) + r")\s*\)?\s*([0-9a-z]?)$"
)


# Twins are told apart as 1/2 or A/B (and C for triplets): one ordinal.
_TWIN_ORDINALS: Final = {"a": "1", "b": "2", "c": "3"}


def newborn_marker(given: str | None) -> str | None:
    """D43: whether a given name is a newborn's first registration, not a name: the mother's
    name followed by 아기 / 여아 / 남아 (영희아기, 영희 아기, 영희(아기), 김영희아기), or the word
    alone. Returns the twin marker it carries ("1", "2", "a", "b" in 아기1, 영희(아기)B) or ""
    without one; None for a name. Such a record names the mother, not the child."""
    if not given:
        return None
    found = _NEWBORN_ALIAS.match(given.strip().lower())
    if not found:
        return None
    marker = found.group(1)
    return _TWIN_ORDINALS.get(marker, marker)


def is_newborn_alias(given: str | None) -> bool:
    """D43: ``newborn_marker`` found one."""
    return newborn_marker(given) is not None


def starts_hangul(text: str | None) -> bool:
    """Whether a (cleaned) name is written in Hangul: its first character is a syllable."""
    return bool(text) and HANGUL_FIRST <= ord(text[0]) <= HANGUL_LAST  # type: ignore[index]


def is_hangul(text: str) -> bool:
    return any(HANGUL_FIRST <= ord(ch) <= HANGUL_LAST for ch in text)


def clean(text: str | None) -> str | None:
    """NFC, trimmed, inner whitespace collapsed, lower case; None for empty."""
    if text is None:
        return None
    value = _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip().lower()
    return value or None


def canonical_surname(family: str) -> str:
    """The surname under the initial-sound rule (리 -> 이) or the romanised-spelling key (Lee -> i)."""
    if is_hangul(family):
        return "".join(INITIAL_SOUND.get(ch, ch) for ch in family.replace(" ", ""))
    letters = _NON_LETTERS.sub("", family.lower())
    return LATIN_SURNAME_KEY.get(letters, letters)


def canonical_given(given: str) -> str:
    """Given name without spaces and hyphens (Gil-dong, Gil Dong, Gildong -> gildong)."""
    if is_hangul(given):
        return given.replace(" ", "")
    return _NON_LETTERS.sub("", given.lower())


def jamo(text: str) -> str:
    """Hangul decomposed into conjoining jamo (Unicode NFD); other text unchanged."""
    return unicodedata.normalize("NFD", text)


def romanize(text: str) -> str:
    """Revised Romanization of Hangul syllables (no cross-syllable sound changes)."""
    return "".join(romanize_syllable(ch) for ch in text)


def fold_latin(token: str) -> str:
    """Phonetic key of one romanised token: spelling variants of one Korean sound collapse."""
    value = token
    for old, new in _FOLDS:
        value = value.replace(old, new)
    return value


_REPEATS: Final = re.compile(r"(.)\1+")


def coarse_latin(folded: str) -> str:
    """D44: a folded romanised name with the vowels that romanisation systems and passports
    write for one Korean vowel made one (어 is eo in Revised Romanization, u or o elsewhere:
    Seong / Sung / Song; 으 is eu or u; 의 is ui or ee), doubled letters made single. Only for a romanised-only
    record against a Hangul one, where nothing else can say the name."""
    value = folded.replace("o", "u").replace("eu", "u").replace("ui", "i")
    return _REPEATS.sub(r"\1", value)


def latin_tokens(text: str) -> list[str]:
    """Romanised full name as folded tokens, surname tokens replaced by their spelling key."""
    tokens = [t for t in _NON_LETTERS.split(romanize(text).lower()) if t]
    return [fold_latin(LATIN_SURNAME_KEY.get(t, t)) for t in tokens]


def latin_forms(text: str) -> tuple[str, ...]:
    """The name read in both orders (Hong Gildong / Gildong Hong / HONG GIL-DONG), unspaced."""
    tokens = latin_tokens(text)
    if not tokens:
        return ()
    forms = {"".join(tokens), "".join(tokens[-1:] + tokens[:-1]), "".join(tokens[1:] + tokens[:1])}
    return tuple(sorted(forms))
