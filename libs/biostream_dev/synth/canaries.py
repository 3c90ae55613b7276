"""Identifying values present in a generated feed, for tests that search outputs for leaks.

The values are read back from the written files (not from the true population), so they include
every corrupted spelling, stale address and typo'd RRN exactly as the feed carries them. Broken
lines are scanned too: a truncated JSON line still holds an RRN that must not leak.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from biostream_dev.synth.formats import CSV_COLUMNS, CSV_FILE, FHIR_FILE, MRN_TYPE_CODE, RRN_SYSTEM
from biostream_dev.synth.hangul import is_syllable
from biostream_dev.synth.manifest import FeedManifest

CanaryKind = Literal[
    "full_name",  # Hangul full name as written ("홍길동"; foreign names also "응우옌 티 란")
    "latin_name",  # Latin name text ("Hong Gildong", "GILDONG HONG" ...)
    "rrn",  # "YYMMDD-SXXXXXX"
    "rrn_digits",  # the same 13 digits without hyphen
    "phone",  # as written in the feed
    "phone_digits",  # national digits only: "01012345678"
    "address",  # full address text
    "street",  # 도로명 + 건물번호, e.g. "테헤란로 152"
    "mrn",  # hospital patient number (8 digits: expect false hits in numeric outputs)
]

CANARY_KINDS: Final[tuple[str, ...]] = CanaryKind.__args__  # type: ignore[attr-defined]

_RRN_RE: Final = re.compile(r"(?<!\d)(\d{6})-(\d{7})(?!\d)")
_PHONE_RE: Final = re.compile(r"(?<![\d+])(?:\+82-?1[016789]|01[016789])-?\d{3,4}-?\d{4}(?!\d)")


@dataclass(frozen=True, slots=True)
class Canary:
    kind: CanaryKind
    value: str


def _phone_digits(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return "0" + digits[2:] if digits.startswith("82") else digits


def _from_patient(patient: dict[str, Any]) -> Iterator[Canary]:
    for identifier in patient.get("identifier", ()):
        value = identifier.get("value")
        if not isinstance(value, str):
            continue
        codes = [c.get("code") for c in identifier.get("type", {}).get("coding", ())]
        if identifier.get("system") == RRN_SYSTEM:
            yield Canary("rrn", value)
            yield Canary("rrn_digits", value.replace("-", ""))
        elif MRN_TYPE_CODE in codes:
            yield Canary("mrn", value)
    for i, name in enumerate(patient.get("name", ())):
        if isinstance(name.get("text"), str):
            yield Canary("full_name" if i == 0 else "latin_name", name["text"])
    for telecom in patient.get("telecom", ()):
        if isinstance(telecom.get("value"), str):
            yield Canary("phone", telecom["value"])
            yield Canary("phone_digits", _phone_digits(telecom["value"]))
    for address in patient.get("address", ()):
        if isinstance(address.get("text"), str):
            yield Canary("address", address["text"])
        lines = address.get("line") or []
        if lines and isinstance(lines[0], str):
            yield Canary("street", lines[0])


def _scan_raw(text: str) -> Iterator[Canary]:
    for match in _RRN_RE.finditer(text):
        yield Canary("rrn", match.group(0))
        yield Canary("rrn_digits", match.group(1) + match.group(2))
    for match in _PHONE_RE.finditer(text):
        yield Canary("phone", match.group(0))
        yield Canary("phone_digits", _phone_digits(match.group(0)))


def _parse_fhir_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        pass
    try:
        return ast.literal_eval(line)  # the "Python repr" flavour of invalid_json
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _from_fhir(path: Path) -> Iterator[Canary]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            document = _parse_fhir_line(line)
            if not isinstance(document, dict):
                yield from _scan_raw(line)  # a truncated line still holds identifiers
                continue
            for entry in document.get("entry", ()):
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                    yield from _from_patient(resource)


def _korean_style(family: str, given: str) -> bool:
    return len(family) <= 2 and len(given) <= 2 and all(is_syllable(ch) for ch in family + given)


def _from_csv(path: Path) -> Iterator[Canary]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if row == list(CSV_COLUMNS):
                continue
            if len(row) != len(CSV_COLUMNS):
                yield from _scan_raw(",".join(row))
                if len(row) < 4:
                    continue
            else:
                if row[6]:
                    yield Canary("rrn", row[6])
                    yield Canary("rrn_digits", row[6].replace("-", ""))
                if row[7]:
                    yield Canary("phone", row[7])
                    yield Canary("phone_digits", _phone_digits(row[7]))
            family, given = row[2], row[3]
            if family and given:
                yield Canary("full_name", family + given)
                if not _korean_style(family, given):
                    yield Canary("full_name", f"{family} {given}")
            if row[1]:
                yield Canary("mrn", row[1])
            if len(row) == len(CSV_COLUMNS) and row[8]:
                yield Canary("address", row[8])


def iter_canaries(source: Path | FeedManifest) -> Iterator[Canary]:
    """Each identifying value in the feed once, in file order (a feed directory or its manifest)."""
    if isinstance(source, FeedManifest):
        if source.out_dir is None:
            raise ValueError("manifest has no out_dir; load it with FeedManifest.load(dir)")
        out_dir = source.out_dir
    else:
        out_dir = source
    hospitals = FeedManifest.load(out_dir).hospitals
    seen: dict[Canary, None] = {}
    for code in hospitals:
        for canary in _from_fhir(out_dir / code / FHIR_FILE):
            if canary not in seen and canary.value:
                seen[canary] = None
                yield canary
        for canary in _from_csv(out_dir / code / CSV_FILE):
            if canary not in seen and canary.value:
                seen[canary] = None
                yield canary


def canary_values(
    source: Path | FeedManifest, kinds: Iterable[str] | None = None
) -> frozenset[str]:
    """The set of identifying strings (optionally only some kinds) present in the feed."""
    wanted = frozenset(CANARY_KINDS if kinds is None else kinds)
    unknown = wanted - frozenset(CANARY_KINDS)
    if unknown:
        raise ValueError(f"unknown canary kinds: {sorted(unknown)}")
    return frozenset(c.value for c in iter_canaries(source) if c.kind in wanted)
