"""``manifest.json`` and ``truth.jsonl``: what a generated feed contains, and who is who."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from biostream_dev.synth.formats import Format, HospitalProfile, MessageKind

MANIFEST_FILE: Final = "manifest.json"
TRUTH_FILE: Final = "truth.jsonl"
FORMAT_VERSION: Final = 1


class TruthRecord(BaseModel):
    """One line of ``truth.jsonl``: one message and the person it is really about."""

    model_config = ConfigDict(frozen=True)

    hospital: str
    message_id: str
    format: Format
    entity_id: str | None  # the true person; None for malformed messages that hold no person
    patient_no: str | None  # the hospital's MRN; None when entity_id is None
    clinical_events: int  # FHIR: non-Patient entries; CSV: diagnosis + lab; 0 when malformed
    malformed: bool
    malformed_kind: str | None
    # Beyond the minimum: where the message is, what it is, how its identity deviates from truth.
    line: int  # 1-based line in the file (CSV: the header is line 1)
    message_kind: MessageKind
    corruptions: list[str]


class FormatCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    fhir: int = 0
    csv: int = 0


class FileInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # relative to the feed directory
    lines: int
    bytes: int
    sha256: str


class MalformedSummary(BaseModel):
    total: int
    by_kind: dict[str, int]


class PopulationSummary(BaseModel):
    persons: int
    foreign_residents: int
    rrn_random_serial: int  # numbers issued on/after 2020-10-05 (no valid check digit expected)
    twin_pairs: int
    namesake_pairs_planted: int
    same_name_birth_year_groups: int  # groups of 2+ persons sharing full name and birth year
    hospitals_per_person: dict[str, int]  # "1" -> persons seen at exactly one hospital ...
    rates: dict[str, float]  # the population constants of people.py


class FeedManifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = FORMAT_VERSION
    generator: str = "biostream_dev.synth"
    seed: int
    persons: int
    malformed_rate: float
    reference_date: date
    visit_window: tuple[date, date]
    hospitals: dict[str, str]  # code -> name (names appear nowhere in the feed itself)
    hospital_profiles: dict[str, HospitalProfile]
    identifier_systems: dict[str, str]
    code_systems: dict[str, str]
    files: list[FileInfo]
    messages: dict[str, FormatCounts]  # per hospital and format, malformed included
    messages_total: int
    identity_update_messages: int
    patients: dict[str, FormatCounts]  # hospital registrations (person appearances)
    clinical_events: dict[str, FormatCounts]  # in well-formed messages only
    clinical_events_total: int
    clinical_events_by_type: dict[str, int]
    malformed: MalformedSummary
    corruption_rates: dict[str, float]
    corruption_counts: dict[str, int]  # well-formed messages that carry each deviation
    population: PopulationSummary
    out_dir: Path | None = Field(default=None, exclude=True)

    @classmethod
    def load(cls, path: Path) -> FeedManifest:
        """Read ``manifest.json`` from a feed directory (or the file itself)."""
        file = path / MANIFEST_FILE if path.is_dir() else path
        manifest = cls.model_validate_json(file.read_bytes())
        return manifest.model_copy(update={"out_dir": file.parent})


def read_truth(out_dir: Path) -> list[TruthRecord]:
    with (out_dir / TRUTH_FILE).open(encoding="utf-8") as fh:
        return [TruthRecord.model_validate_json(line) for line in fh if line.strip()]
