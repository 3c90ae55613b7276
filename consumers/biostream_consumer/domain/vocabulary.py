"""Source vocabularies of curated codes and the project's concept mapping table.

The pipeline carries codes with FHIR code-system URIs. OMOP wants standard concept ids, which come
from the project's own vocabulary work (Athena download plus the Korean KCD/EDI mappings of
their choosing): the toolkit never guesses a concept id, it only applies a mapping table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

# The OMOP concepts the export always uses (standard, stable across vocabulary releases).
GENDER_CONCEPTS: Mapping[str, int] = {"M": 8507, "F": 8532}
EHR_TYPE_CONCEPT = 32817  # "EHR" in the Type Concept vocabulary (CDM 5.4)


# A code system URI containing the fragment belongs to the vocabulary (first match wins).
VOCABULARY_FRAGMENTS: tuple[tuple[str, str], ...] = (
    ("kcd", "KCD"),  # .../CodeSystem/kostat-kcd-8, kostat-kcd-9
    ("edi", "EDI"),  # .../CodeSystem/hira-edi-procedure, hira-edi-medication
    ("loinc", "LOINC"),  # http://loinc.org
)


def source_vocabulary(code_system: str | None) -> str | None:
    """KCD, EDI or LOINC for the systems the pipeline emits; otherwise the system itself."""
    if code_system is None:
        return None
    lowered = code_system.lower()
    for fragment, vocabulary in VOCABULARY_FRAGMENTS:
        if fragment in lowered:
            return vocabulary
    return code_system


def source_vocabulary_sql(column: str) -> str:
    """The same rule as ``source_vocabulary``, as a SQL expression over ``column``."""
    cases = " ".join(
        f"WHEN lower({column}) LIKE '%{fragment}%' THEN '{vocabulary}'"
        for fragment, vocabulary in VOCABULARY_FRAGMENTS
    )
    return f"(CASE {cases} ELSE {column} END)"


class ConceptMap:
    """``(source vocabulary, code) -> concept_id`` from a CSV with the header
    ``source_vocabulary,source_code,concept_id`` (one row per code; extra columns ignored)."""

    def __init__(self, entries: Mapping[tuple[str, str], int] | None = None) -> None:
        self.entries = dict(entries or {})

    @classmethod
    def parse(cls, text: str) -> ConceptMap:
        reader = csv.DictReader(io.StringIO(text))
        needed = {"source_vocabulary", "source_code", "concept_id"}
        if not needed <= set(reader.fieldnames or ()):
            raise ValueError(f"concept map needs the columns {sorted(needed)}")
        entries: dict[tuple[str, str], int] = {}
        for line, row in enumerate(reader, start=2):
            try:
                concept = int(row["concept_id"])
            except ValueError:
                raise ValueError(f"concept map line {line}: concept_id is not an integer") from None
            entries[(row["source_vocabulary"].strip().upper(), row["source_code"].strip())] = (
                concept
            )
        return cls(entries)

    def rows(self) -> Iterable[tuple[str, str, int]]:
        return ((v, c, concept) for (v, c), concept in sorted(self.entries.items()))
