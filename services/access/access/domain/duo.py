"""GA4GH Data Use Ontology codes: the term list (shipped as ``access/data/duo.csv``) and the
check an application's codes pass (D45). Pure: the caller reads the file and passes its text."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

DUO_ID = re.compile(r"^DUO:\d{7}$")
TermKind = Literal["permission", "modifier"]


@dataclass(frozen=True)
class DuoTerm:
    id: str
    shorthand: str
    label: str
    kind: TermKind


@dataclass(frozen=True)
class DuoTerms:
    """Every usable term, findable by id (``DUO:0000042``) or shorthand (``GRU``)."""

    terms: tuple[DuoTerm, ...]

    def find(self, code: str) -> DuoTerm | None:
        wanted = code.strip()
        for term in self.terms:
            if wanted == term.id or wanted.upper() == term.shorthand:
                return term
        return None

    def unknown(self, codes: Iterable[str]) -> list[str]:
        return [code for code in codes if self.find(code) is None]


def parse_duo_csv(text: str) -> DuoTerms:
    """D45: the term list from DUO's ``duo.csv`` (``id,shorthand,label,description``). The
    ontology's abstract classes (no shorthand: "data use permission", "data use modifier") are
    not codes an application can carry and are left out; every other row is a permission or a
    modifier, as its description says."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"id", "shorthand", "label", "description"} <= set(rows[0]):
        raise ValueError("duo.csv: expected the columns id, shorthand, label, description")
    terms = []
    for row in rows:
        if not DUO_ID.match(row["id"] or ""):
            raise ValueError(f"duo.csv: {row['id']!r} is not a DUO id")
        if not row["shorthand"]:
            continue
        description = row["description"] or ""
        kind: TermKind = (
            "permission" if description.startswith("This data use permission") else "modifier"
        )
        terms.append(DuoTerm(row["id"], row["shorthand"].upper(), row["label"], kind))
    return DuoTerms(tuple(terms))


def duo_problem(codes: Iterable[str], terms: DuoTerms) -> str | None:
    """D45: why an application's data-use codes are not acceptable, or None: every code must be
    in the DUO term list, none twice, and at least one must be a data use permission (what the
    data may be used for; modifiers only add conditions to one)."""
    listed = list(codes)
    unknown = terms.unknown(listed)
    if unknown:
        return (
            f"unknown DUO code(s) {', '.join(repr(c) for c in unknown)} (not in the DUO term list)"
        )
    found = [terms.find(code) for code in listed]
    ids = [term.id for term in found if term is not None]
    if len(set(ids)) != len(ids):
        return "a DUO code is listed twice"
    if not any(term is not None and term.kind == "permission" for term in found):
        return "no DUO data use permission (e.g. GRU, HMB, DS) among the codes"
    return None
