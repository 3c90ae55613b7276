"""The patient's own identifiers removed from the clinical record's free text (D24c).

Ingest is the last place that holds a message's identity and its clinical content together: once
it has split them, the clinical record travels without the name, numbers or address, and nothing
downstream could know which words of a note are that patient's. So ingest removes them from every
free-text field it writes (``value_text``; the other clinical fields are codes, numbers and units)
and the pseudonymizer's shape-based scrubber (D24d) remains the second net for other people's
identifiers.

What is removed, whatever the script or formatting, with typed placeholders:

- ``[NAME]``: the Hangul name with or without spaces (홍길동, 홍 길동, also under the other
  initial-sound spelling of the surname: 류/유, 리/이 ...); the given name alone (two syllables or
  more) where it stands as a word or before a particle (길동이가, 길동님); the surname before
  씨; the Latin name in either order, any case, spacing, comma or hyphen (HONG, GIL DONG /
  Gil-dong Hong / Hong Gildong / HongGildong); its given name alone when it cannot be an ordinary
  word (five letters or more, or written in two parts); Mr/Ms + surname.
- ``[RRN]``, ``[PHONE]``, ``[PATIENT_NO]``, ``[BIRTH_DATE]``: the numbers as digits whatever
  separates them (850321-2012342, 850321 2012342, +82 10-3141-5926, (010)3141.5926, 3141-5926),
  matched on whole digit groups so a value beside them (HbA1c 7.1) stays; the registration
  number's back part alone; the birth date as 19850321, 1985-03-21, 85.03.21, 1985년 3월 21일.
- ``[PATIENT_NO]``: the hospital's patient number as a token, separators optional (H-778812,
  H778812); numbers shorter than four characters are left (they cannot be told from a dose).
- ``[ADDRESS]``: the street and building number (광교로 152, 광교로152), with the 시도/시군구
  names before them and the detail after (101동 1203호), and a 동/호 detail alone.
- ``[SPECIMEN_ID]``: the message's own specimen and accession numbers.
- ``[EMAIL]``: any e-mail address (ingest keeps no e-mail in the identity, so every one goes).

Matching compiles nothing per patient (a compiled pattern with a Hangul range costs about a
millisecond): the text is projected once per kind (digits, ASCII letters, characters without
spaces, letters and digits) and the patient's values are found in the projection by ``str.find``,
then checked against the original (word boundaries, what may stand between the characters).

Pure functions: the identity and the message's specimen references in, the text out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ingest.domain.model import ClinicalEvent, ParsedMessage, PatientIdentity

_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A run of digits and the separators people put between them; targets must cover whole groups.
_NUMBER_RUN: Final = re.compile(r"\d(?:[\d\s().\-/‐–]*\d)?")
_NON_DIGIT: Final = re.compile(r"\D")
_NON_ALNUM: Final = re.compile(r"[^0-9A-Za-z]")
_KOREAN_DATE: Final = re.compile(r"(\d{4})\s*년\s*(\d{1,2})\s*월\s*(\d{1,2})\s*일?")
# 시도 and 시군구 names just before a street (extended over by the address match).
_ADMIN_BEFORE: Final = re.compile(
    r"(?:(?:[가-힣]+(?:특별시|광역시|특별자치시|특별자치도|도|시|군|구|읍|면)|서울|부산|대구|인천|광주"
    r"|대전|울산|세종|경기|강원|충북|충남|전북|전남|경북|경남|제주)[\s,]*)+$"
)
_STREET: Final = re.compile(
    r"(?P<road>[가-힣0-9·.]*[가-힣](?:로|길|동|리|가))\s*(?P<number>\d+(?:-\d+)?)(?![\d-])"
)
_DETAIL: Final = re.compile(r"\d+\s*동\s*\d+\s*호|\d+\s*호|\d+\s*층")
_INITIAL_SOUND: Final = {
    "류": "유", "유": "류", "리": "이", "이": "리", "라": "나", "나": "라", "림": "임",
    "임": "림", "로": "노", "노": "로", "량": "양", "양": "량", "려": "여", "여": "려",
}  # fmt: skip
_PARTICLES: Final = (
    "이가", "이는", "이를", "이의", "이도", "이와", "이랑", "에게", "한테", "께서", "께", "님", "씨",
    "은", "는", "이", "가", "을", "를", "의", "도", "와", "과", "랑", "아", "야",
)  # fmt: skip
_TITLES: Final = ("mr", "mrs", "ms", "miss", "mx")
_LATIN_GAP: Final = frozenset(" \t\n,'-‐–.")
_SOLID: Final = re.compile(r"\S+")
_LETTERS: Final = re.compile(r"[A-Za-z]+")
_ALNUM: Final = re.compile(r"[A-Za-z0-9]+")


def _hangul(c: str) -> bool:
    return "가" <= c <= "힣"


def _latin(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _digits(value: str | None) -> str:
    return _NON_DIGIT.sub("", value) if value else ""


@dataclass(frozen=True, slots=True)
class OwnIdentifiers:
    """One message's identifying values, prepared for ``scrub_own_identifiers``."""

    numbers: tuple[tuple[str, str], ...]  # (digits, placeholder), longest first
    tokens: tuple[tuple[str, str], ...]  # (upper-case letters and digits, placeholder)
    hangul_names: tuple[str, ...]  # full names without spaces, anywhere
    hangul_words: tuple[str, ...]  # given names: a word or before a particle
    surnames: tuple[str, ...]  # before 씨
    latin_names: tuple[str, ...]  # lower-case letters, on word boundaries
    latin_surnames: tuple[str, ...]  # after a title
    streets: tuple[str, ...]  # road + building number, no spaces
    details: tuple[str, ...]  # 101동1203호, no spaces
    birth: dt.date | None


def _phone_forms(values: Iterable[str | None]) -> list[str]:
    forms: list[str] = []
    for value in values:
        if not value:
            continue
        digits = _digits(value)
        if digits.startswith("82"):
            digits = "0" + digits[2:].removeprefix("0")
        if len(digits) < 9 or not digits.startswith("0"):
            continue
        area = 2 if digits.startswith("02") else 3
        forms += [digits, "82" + digits[1:], "82" + digits, digits[area:]]
    return [f for f in forms if len(f) >= 7]


def _birth_forms(birth: dt.date | None) -> list[str]:
    if birth is None:
        return []
    y, m, d = birth.year, birth.month, birth.day
    return [f"{y}{m:02d}{d:02d}", f"{y % 100:02d}{m:02d}{d:02d}", f"{y}{m}{d}"]


def _latin_forms(latin: str) -> tuple[list[str], list[str]]:
    """(names to find on word boundaries, surnames to find after a title), lower-case letters."""
    if not latin.isascii():
        return [], []
    words = [w for w in re.split(r"[\s,]+", latin.strip()) if re.fullmatch(r"[A-Za-z'-]+", w)]
    letters = [re.sub(r"[^a-z]", "", w.lower()) for w in words]
    if len(words) == 1:
        return ([letters[0]] if len(letters[0]) >= 5 else []), []
    names: list[str] = []
    surnames: list[str] = []
    for family, given_words in ((0, slice(1, None)), (len(words) - 1, slice(0, -1))):
        given = "".join(letters[given_words])
        if not given or not letters[family]:
            continue
        names += [letters[family] + given, given + letters[family]]
        two_parts = len(words) > 2 or "-" in "".join(words[given_words])
        if len(given) >= 5 or two_parts:
            names.append(given)
        surnames.append(letters[family])
    return names, surnames


def _unique(values: Iterable[str], least: int = 1) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if len(v) >= least))


def own_identifiers(identity: PatientIdentity, specimen_refs: Iterable[str] = ()) -> OwnIdentifiers:
    """D24c: what of this message's identity (and its specimen numbers) a note must not keep."""
    raw = identity.source
    # The source's values only where validation changed or dropped them.
    raw_rrn = raw.rrn if raw is not None and raw.rrn != identity.rrn else None
    raw_phone = raw.phone if raw is not None and raw.phone != identity.phone else None
    raw_latin = (
        raw.name_latin if raw is not None and raw.name_latin != identity.name_latin else None
    )
    raw_address = raw.address if raw is not None and raw.address != identity.address else None
    full = raw.full_name if raw is not None else None

    numbers: list[tuple[str, str]] = []
    for rrn in (identity.rrn, raw_rrn):
        digits = _digits(rrn)
        if len(digits) == 13:
            numbers += [(digits, "[RRN]"), (digits[6:], "[RRN]")]
    numbers += [(f, "[PHONE]") for f in _phone_forms((identity.phone, raw_phone))]
    patient_no = identity.local_patient_no
    patient_digits = _digits(patient_no)
    if len(patient_digits) >= 6:  # also the digits of H-778812 written alone
        numbers.append((patient_digits, "[PATIENT_NO]"))
    numbers += [(f, "[BIRTH_DATE]") for f in _birth_forms(identity.birth_date)]
    numbers.sort(key=lambda t: len(t[0]), reverse=True)

    tokens = [(_NON_ALNUM.sub("", r).upper(), "[SPECIMEN_ID]") for r in specimen_refs]
    if patient_digits != patient_no:  # an all-digit number is the digit pass's
        tokens.append((_NON_ALNUM.sub("", patient_no).upper(), "[PATIENT_NO]"))

    family, given = identity.family_name, identity.given_name
    families = [family] if family else []
    if family and family[0] in _INITIAL_SOUND:
        families.append(_INITIAL_SOUND[family[0]] + family[1:])
    hangul_names = [f + given for f in families] if given else []
    if full and not full.isascii():
        hangul_names.append("".join(full.split()))
    words = (given,) if given and len(given) >= 2 and not given.isascii() else ()

    latin_names: list[str] = []
    latin_surnames: list[str] = []
    for latin in (identity.name_latin, raw_latin):
        if latin:
            found, titled = _latin_forms(latin)
            latin_names += found
            latin_surnames += titled

    streets: list[str] = []
    details: list[str] = []
    for address in (identity.address, raw_address):
        street = _STREET.search(address) if address else None
        if address and street:
            streets.append("".join((street.group("road") + street.group("number")).split()))
            rest = address[street.end() :]
            details += ["".join(d.group(0).split()) for d in _DETAIL.finditer(rest)]

    return OwnIdentifiers(
        numbers=tuple(dict.fromkeys(numbers)),
        tokens=tuple(dict.fromkeys(t for t in tokens if len(t[0]) >= 4)),
        hangul_names=_unique(hangul_names, 2),
        hangul_words=words,
        surnames=tuple(families),
        latin_names=_unique(latin_names, 3),
        latin_surnames=_unique(latin_surnames, 2),
        streets=_unique(streets),
        details=_unique(details),
        birth=identity.birth_date,
    )


Span = tuple[int, int, str]


class _Projection:
    """The characters of ``text`` that ``chunk`` matches (lower-cased with ``fold``); their
    positions in ``text`` are worked out only when something is found."""

    def __init__(self, text: str, chunk: re.Pattern[str], fold: bool = False) -> None:
        self.text = text
        self.chunk = chunk
        chars = "".join(chunk.findall(text))
        self.chars = chars.lower() if fold else chars
        self._positions: list[int] | None = None

    def find(self, target: str) -> Iterable[tuple[int, int]]:
        """(start, end) in the original text of each occurrence of ``target``."""
        found = self.chars.find(target)
        while found != -1:
            if self._positions is None:
                self._positions = []
                for m in self.chunk.finditer(self.text):
                    self._positions.extend(range(m.start(), m.end()))
            yield self._positions[found], self._positions[found + len(target) - 1] + 1
            found = self.chars.find(target, found + 1)


def _number_spans(text: str, numbers: tuple[tuple[str, str], ...]) -> list[Span]:
    spans: list[Span] = []
    for run in _NUMBER_RUN.finditer(text):
        chunk, base = run.group(0), run.start()
        digits = _NON_DIGIT.sub("", chunk)
        if len(digits) < 6 or not any(target in digits for target, _ in numbers):
            continue
        positions = [base + i for i, c in enumerate(chunk) if c.isdigit()]
        last = len(positions) - 1
        starts = {0} | {k for k in range(1, last + 1) if positions[k] != positions[k - 1] + 1}
        ends = {last} | {k for k in range(last) if positions[k + 1] != positions[k] + 1}
        taken = [False] * len(positions)
        for target, placeholder in numbers:
            found = digits.find(target)
            while found != -1:
                end = found + len(target) - 1
                if found in starts and end in ends and not any(taken[found : end + 1]):
                    taken[found : end + 1] = [True] * len(target)
                    start, stop = positions[found], positions[end] + 1
                    if start > 0 and (
                        text[start - 1] == "+"
                        or (text[start - 1] == "(" and ")" in text[start:stop])
                    ):
                        start -= 1  # +82 ..., (010)3141-5926
                    spans.append((start, stop, placeholder))
                found = digits.find(target, found + 1)
    return spans


def _before(text: str, i: int) -> str:
    return text[i - 1] if i > 0 else ""


def _after(text: str, i: int) -> str:
    return text[i] if i < len(text) else ""


def _word(text: str, start: int, end: int) -> bool:
    """A Hangul word on its own, or before a particle or honorific (길동이가, 길동님)."""
    return not _hangul(_before(text, start)) and (
        not _hangul(_after(text, end)) or text.startswith(_PARTICLES, end)
    )


def _solid_prefix(text: str, i: int, target: str) -> int | None:
    """The end of ``target`` if the text from ``i`` (after spaces and commas) spells it, spaces
    ignored."""
    while i < len(text) and text[i] in " ,":
        i += 1
    matched = 0
    while i < len(text) and matched < len(target):
        if text[i].isspace():
            i += 1
        elif text[i] == target[matched]:
            i, matched = i + 1, matched + 1
        else:
            return None
    return i if matched == len(target) else None


def _name_spans(text: str, own: OwnIdentifiers) -> list[Span]:
    spans: list[Span] = []
    if own.hangul_names or own.hangul_words or own.surnames or own.streets or own.details:
        solid = _Projection(text, _SOLID)
        for name in own.hangul_names:
            # Three syllables or more anywhere; a two-syllable name (이현) only as a word, or
            # "이 현상" (this phenomenon) would lose a word.
            spans += [
                (s, e, "[NAME]") for s, e in solid.find(name) if len(name) > 2 or _word(text, s, e)
            ]
        for word in own.hangul_words:
            spans += [(s, e, "[NAME]") for s, e in solid.find(word) if _word(text, s, e)]
        for surname in own.surnames:
            for s, e in solid.find(surname):
                honorific = text[e : e + 1] == "씨" or text[e : e + 2] in (" 씨", "\u00a0씨")
                if e - s == len(surname) and not _hangul(_before(text, s)) and honorific:
                    spans.append((s, e, "[NAME]"))
        for street in own.streets:
            for s, e in solid.find(street):
                if _hangul(_before(text, s)) or _after(text, e).isdigit():
                    continue
                if _after(text, e) == "-" and _after(text, e + 1).isdigit():
                    continue
                head = _ADMIN_BEFORE.search(text, 0, s)
                stop = e
                for detail in own.details:  # 광교로 152, 101동 1203호
                    end = _solid_prefix(text, stop, detail)
                    if end is not None:
                        stop = end
                spans.append((head.start() if head else s, stop, "[ADDRESS]"))
        for detail in own.details:
            if "동" not in detail:
                continue  # "3층" or "12호" alone could be the ward's floor or room
            for s, e in solid.find(detail):
                if not _before(text, s).isdigit() and not _after(text, e).isdigit():
                    spans.append((s, e, "[ADDRESS]"))
    if own.latin_names or own.latin_surnames:
        letters = _Projection(text, _LETTERS, fold=True)
        for name in own.latin_names:
            for s, e in letters.find(name):
                gap_ok = all(_latin(c) or c in _LATIN_GAP for c in text[s:e])
                if gap_ok and not _latin(_before(text, s)) and not _latin(_after(text, e)):
                    spans.append((s, e, "[NAME]"))
        for surname in own.latin_surnames:
            for s, e in letters.find(surname):
                title = re.search(r"([A-Za-z]+)\.?\s*$", text[max(0, s - 6) : s])
                if (
                    title is not None
                    and title.group(1).lower() in _TITLES
                    and text[s:e].isalpha()
                    and not _latin(_after(text, e))
                ):
                    spans.append((s - len(title.group(0)), e, "[NAME]"))
    if own.tokens:
        alnum = _Projection(text, _ALNUM)
        alnum.chars = alnum.chars.upper()
        for token, placeholder in own.tokens:
            for s, e in alnum.find(token):
                gap_ok = all(_alnum(c) or c in " ._/-" for c in text[s:e])
                if gap_ok and not _alnum(_before(text, s)) and not _alnum(_after(text, e)):
                    spans.append((s, e, placeholder))
    if own.birth is not None and "년" in text:
        birth = own.birth
        for m in _KOREAN_DATE.finditer(text):
            if (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (
                birth.year,
                birth.month,
                birth.day,
            ):
                spans.append((m.start(), m.end(), "[BIRTH_DATE]"))
    return spans


def _replace(text: str, spans: list[Span]) -> str:
    """The text with each span replaced; of overlapping spans the earliest-starting, longest."""
    parts: list[str] = []
    position = 0
    for start, stop, placeholder in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start < position:
            continue
        parts += [text[position:start], placeholder]
        position = stop
    parts.append(text[position:])
    return "".join(parts)


def scrub_own_identifiers(text: str, own: OwnIdentifiers) -> str:
    """D24c: the text without the patient's own identifiers (see the module docstring). Every
    kind is looked for in the original text; of overlapping finds the earliest, longest wins
    (H-778812 as a patient number, not its digits)."""
    spans = [(m.start(), m.end(), "[EMAIL]") for m in _EMAIL.finditer(text)]
    if own.numbers:
        spans += _number_spans(text, own.numbers)
    spans += _name_spans(text, own)
    return _replace(text, spans) if spans else text


def without_own_identifiers(parsed: ParsedMessage) -> tuple[ClinicalEvent, ...]:
    """D24c: the message's clinical events, their free text (``value_text``) without the
    patient's own identifiers and the message's specimen numbers. Prepared only when some event
    has text."""
    return events_without_own_identifiers(parsed.identity, parsed.events)


def events_without_own_identifiers(
    identity: PatientIdentity | None, events: tuple[ClinicalEvent, ...]
) -> tuple[ClinicalEvent, ...]:
    """D24c for one patient of a message (D36: a message may carry several): that patient's
    events without that patient's own identifiers."""
    if identity is None or not any(e.value_text for e in events):
        return events
    own = own_identifiers(identity, (r for e in events for r in e.specimen_refs))
    return tuple(
        dataclasses.replace(e, value_text=scrub_own_identifiers(e.value_text, own))
        if e.value_text
        else e
        for e in events
    )
