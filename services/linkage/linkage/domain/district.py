"""The 시군구 (si/gun/gu) code of an address, for district generalisation (D24).

Pure: the address text and a province hint in, a code or a reason out. The table and its sources
are in ``sigungu.py``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

from linkage.domain.sigungu import (
    CURRENT,
    MERGED_PROVINCE_NAMES,
    PROVINCE_NAMES,
    RENAMED,
    SEJONG,
    SPLIT,
)

DistrictOutcome = Literal[
    "district",  # the 시군구 named by the address (a 구 of a city when the 구 is named)
    "city",  # a city with 구 whose 구 the address does not name: the city's own code
    "missing",  # no address
    "unknown",  # no 시군구 of the table at the start of the address
    "ambiguous",  # several (중구 without a province), and the province hint does not decide
    "split",  # an old 시군구 since split, and the address names no 동 that decides
    "province_conflict",  # the address's 시군구 lies outside the province the record states
]
DISTRICT_OUTCOMES: Final[tuple[str, ...]] = DistrictOutcome.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class District:
    code: str | None
    outcome: DistrictOutcome


@dataclass(frozen=True, slots=True)
class _Form:
    """One way of writing a 시군구, without spaces: ``수원시영통구``, ``수원영통구``, ``영통구``."""

    text: str
    code: str  # the 시군구 code, or the SPLIT key's old name for a split 시군구
    provinces: frozenset[str]  # province codes a record of this 시군구 may state
    level: Literal["district", "city"]
    split: tuple[str, str] | None = None
    after_province_only: bool = False  # stems (``가평`` for 가평군) only right after a 시도 name


_DROP: Final = re.compile(r"[\s,]+")
_LEADING_JUNK: Final = re.compile(r"^(?:\[[^\]]*\]|[^가-힣])+")
_DONG: Final = re.compile(r"[가-힣]+동(?![가-힣])")
_ROAD_AFTER_BARE_NAME: Final = ("로", "대로", "길", "역", "동")
_RENUMBERED: Final = {"42": "51", "45": "52"}  # old province codes a v1 producer may still send
_ALL_PROVINCE_NAMES: Final = {**PROVINCE_NAMES, **MERGED_PROVINCE_NAMES}
_PROVINCE_ALIASES: Final = sorted(_ALL_PROVINCE_NAMES, key=len, reverse=True)


def _names_province(text: str, alias: str) -> bool:
    """The text starts with this 시도 name, and not with a road named after it (세종대로)."""
    if not text.startswith(alias):
        return False
    bare = alias[-1] not in "시도"
    return not (bare and text[len(alias) :].startswith(_ROAD_AFTER_BARE_NAME))


def _compact(address: str) -> str:
    text = unicodedata.normalize("NFC", address)
    text = _DROP.sub("", _LEADING_JUNK.sub("", text.strip()))
    for country in ("대한민국", "한국"):
        if text.startswith(country):
            text = _LEADING_JUNK.sub("", text[len(country) :])
    return text


@cache
def _forms() -> dict[str, dict[str, list[_Form]]]:
    """Forms by the province they are written under, then by their first two characters."""
    moved_from = {code: province for (province, _), code in RENAMED.items()}
    forms: dict[str, list[_Form]] = defaultdict(list)
    for province, table in CURRENT.items():
        entries = [item.split(" ", 1) for item in table.split("|")]
        cities_with_gu = {name.split(" ")[0] for _, name in entries if " " in name}
        for code, name in entries:
            if code == SEJONG:
                continue
            accepted = frozenset({province, moved_from.get(code, province)})
            if " " in name:
                city, gu = name.split(" ")
                for text in (city + gu, city[:-1] + gu, gu):
                    forms[province].append(_Form(text, code, accepted, "district"))
                continue
            level: Literal["district", "city"] = "city" if name in cities_with_gu else "district"
            forms[province].append(_Form(name, code, accepted, level))
            if name[-1] in "시군" and len(name) >= 3:
                forms[province].append(_Form(name[:-1], code, accepted, level, None, True))
    for (province, old), code in RENAMED.items():
        accepted = frozenset({province, code[:2]})
        forms[province].append(_Form(old, code, accepted, "district"))
    for province, old in SPLIT:
        forms[province].append(_Form(old, old, frozenset({province}), "district", (province, old)))
    indexed: dict[str, dict[str, list[_Form]]] = {}
    for province, items in forms.items():
        by_head: dict[str, list[_Form]] = defaultdict(list)
        for form in sorted(items, key=lambda f: len(f.text), reverse=True):
            by_head[form.text[:2]].append(form)
        indexed[province] = dict(by_head)
    return indexed


def _longest(rest: str, provinces: tuple[str, ...], after_province: bool) -> list[_Form]:
    """The longest forms, among these provinces', that the text starts with."""
    found: list[_Form] = []
    for province in provinces:
        for form in _forms().get(province, {}).get(rest[:2], ()):
            if form.after_province_only and not after_province:
                continue
            if rest.startswith(form.text):
                found.append(form)
                break  # sorted longest first within a province
    if not found:
        return []
    best = max(len(f.text) for f in found)
    return [f for f in found if len(f.text) == best]


def _split_code(split: tuple[str, str], rest: str) -> str | None:
    to, dongs, remainder, unsure = SPLIT[split]
    named = _DONG.findall(rest)
    if any(d in dongs for d in named):
        return to
    if any(d in unsure for d in named) or not named:
        return None
    return remainder


def district_of(address: str | None, province_hint: str | None = None) -> District:
    """D24: the 시군구 code an address names, read from its text.

    The address may start with a 시도 name in any of its spellings (서울 / 서울시 / 서울특별시,
    강원도 / 강원특별자치도, 전북 / 전라북도 / 전북특별자치도 ...), with or without spaces
    (``서울특별시종로구``), or with no 시도 at all (``수원시 영통구 ...``). A 구 of a city gives the
    구's code (41117 for 수원시 영통구, as the legal-dong code's first five digits do); a city with
    구 whose 구 is not named gives the city's code (41110) with outcome ``city``. Old names map to
    today's codes (강원도 춘천시 -> 51110, 경북 군위군 -> 27720, 인천 남구 -> 28177); a 시군구
    since split is decided by the 동 the address names, else no code.

    ``province_hint`` is the province the record states (ingest derives it from the postal code
    first): it decides between same-named 시군구 (중구 exists in six cities), and an address whose
    시군구 lies in another province gives no code (``province_conflict``) rather than a code that
    contradicts the record's province. The postal code is not read for the 시군구 itself: its
    first three digits approximate a 시군구 zone, but this build has no verified zone table.
    """
    if address is None or not address.strip():
        return District(None, "missing")
    province_hint = _RENUMBERED.get(province_hint or "", province_hint)
    text = _compact(address)
    parses: list[tuple[tuple[str, ...], str, bool]] = []
    alias = next((a for a in _PROVINCE_ALIASES if _names_province(text, a)), None)
    if alias is not None:
        provinces = _ALL_PROVINCE_NAMES[alias]
        if provinces == ("36",):
            hint_ok = province_hint in (None, "36")
            return District(SEJONG, "district") if hint_ok else District(None, "province_conflict")
        parses.append((provinces, text[len(alias) :], True))
    parses.append((tuple(CURRENT), text, False))
    for provinces, rest, after_province in parses:
        found = _longest(rest, provinces, after_province)
        if not found:
            continue
        fitting = [f for f in found if province_hint is None or province_hint in f.provinces]
        if not fitting:
            return District(None, "province_conflict")
        if len({f.code for f in fitting}) > 1:
            return District(None, "ambiguous")
        form = fitting[0]
        if form.split is not None:
            code = _split_code(form.split, rest[len(form.text) :])
            return District(code, "district") if code else District(None, "split")
        return District(form.code, form.level)
    return District(None, "unknown")
