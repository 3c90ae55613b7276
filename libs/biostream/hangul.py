"""Revised Romanization of Hangul syllables: one table for every part of the project that
romanises names (linkage compares romanised spellings; the synthetic generator writes them)."""

from __future__ import annotations

from typing import Final

HANGUL_FIRST: Final = 0xAC00
HANGUL_LAST: Final = 0xD7A3

# Latin spelling of the initial, vowel and final jamo of a precomposed syllable, by index.
RR_INITIALS: Final = (
    "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p",
    "h",
)  # fmt: skip
RR_VOWELS: Final = (
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we",
    "wi", "yu", "eu", "ui", "i",
)  # fmt: skip
RR_FINALS: Final = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p",
    "t", "t", "ng", "t", "t", "k", "t", "p", "t",
)  # fmt: skip


def romanize_syllable(ch: str) -> str:
    """Revised Romanization of one character (no cross-syllable sound changes); anything that is
    not a precomposed Hangul syllable comes back unchanged."""
    code = ord(ch)
    if not HANGUL_FIRST <= code <= HANGUL_LAST:
        return ch
    offset = code - HANGUL_FIRST
    return RR_INITIALS[offset // 588] + RR_VOWELS[(offset // 28) % 21] + RR_FINALS[offset % 28]
