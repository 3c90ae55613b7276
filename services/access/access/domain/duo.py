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


MatchOutcome = Literal["match", "no_match", "needs_review"]
# Which requested data use permission each dataset permission allows (DUO's hierarchy: no
# restriction above general research use, which holds health/medical and ancestry research;
# health/medical holds disease-specific research).
ALLOWS: dict[str, frozenset[str]] = {
    "NRES": frozenset({"NRES", "GRU", "HMB", "DS", "POA"}),
    "GRU": frozenset({"GRU", "HMB", "DS", "POA"}),
    "HMB": frozenset({"HMB", "DS"}),
    "POA": frozenset({"POA"}),
}
# Dataset modifiers that prohibit a requested permission outright.
PROHIBITS: dict[str, frozenset[str]] = {"NPOA": frozenset({"POA"})}


@dataclass(frozen=True)
class DuoMatch:
    outcome: MatchOutcome
    reasons: tuple[str, ...]


def _shorthands(codes: Iterable[str], terms: DuoTerms) -> list[DuoTerm]:
    return [term for term in (terms.find(code) for code in codes) if term is not None]


def duo_match(
    dataset_codes: Iterable[str] | None,
    requested_codes: Iterable[str],
    terms: DuoTerms,
    irb_approved: bool = True,
) -> DuoMatch:
    """D47: the dataset's own DUO restrictions against the application's data use codes, as
    REMS does: ``match``, ``no_match`` or ``needs_review`` (what a machine cannot decide), each
    with its reasons, for the board to see; it decides nothing by itself.

    Every requested permission must be one a dataset permission allows (NRES > GRU > HMB > DS,
    GRU > POA) and none a dataset modifier prohibits (NPOA: no ancestry research): else no match.
    Disease-specific against disease-specific needs review (the disease terms are compared by
    the board). Each other dataset modifier is a condition the applicant must accept: ``IRB`` is
    met by the application's IRB approval; any other is met when the application lists it, and
    needs review when it does not. A dataset without configured terms needs review."""
    if dataset_codes is None:
        return DuoMatch("needs_review", ("no DUO terms are configured for this dataset",))
    dataset = _shorthands(dataset_codes, terms)
    requested = _shorthands(requested_codes, terms)
    granted = [t.shorthand for t in dataset if t.kind == "permission"]
    asked = [t.shorthand for t in requested if t.kind == "permission"]
    accepted = {t.shorthand for t in requested}
    no_match: list[str] = []
    review: list[str] = []
    for use in asked:
        if any(use in PROHIBITS.get(t.shorthand, frozenset()) for t in dataset):
            no_match.append(f"{use}: prohibited by the dataset")
        elif any(use in ALLOWS.get(g, frozenset()) for g in granted):
            continue
        elif use == "DS" and "DS" in granted:
            review.append("DS: the disease of the request and of the dataset to be compared")
        else:
            no_match.append(f"{use}: not allowed by the dataset's {', '.join(granted) or 'terms'}")
    for term in dataset:
        if term.kind == "permission" or term.shorthand in PROHIBITS:
            continue
        if term.shorthand == "IRB" and irb_approved:
            continue
        if term.shorthand not in accepted:
            review.append(f"{term.shorthand} ({term.label}): not accepted by the application")
    if no_match:
        return DuoMatch("no_match", tuple(no_match + review))
    if review:
        return DuoMatch("needs_review", tuple(review))
    return DuoMatch("match", ())
