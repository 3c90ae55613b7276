"""Per-hospital CSV mapping files: ``<BIOSTREAM_CSV_MAPPING_DIR>/<HOSPITAL>.json``.

Read on first use and again when the file changes, so onboarding a hospital (or correcting its
mapping) needs neither a code change nor a restart. No file: the default columns.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ingest.domain.csv_feed import (
    DEFAULT_MAPPING,
    CsvMapping,
    MappingInvalid,
    mapping_from_document,
)


def load_mapping_file(path: Path) -> CsvMapping:
    """Raises OSError when unreadable, MappingInvalid when not a usable mapping."""
    data = path.read_bytes()
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MappingInvalid(f"{path.name}: not UTF-8 JSON") from None
    return mapping_from_document(document, path.name)


class CsvMappingDirectory:
    """D-ingest-5: the hospital's mapping file ``<HOSPITAL>.json`` of the directory, checked when
    used and re-read when its modification time changes; the default columns without one."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._cache: dict[str, tuple[float, CsvMapping]] = {}

    def __call__(self, hospital: str) -> CsvMapping:
        if self._directory is None:
            return DEFAULT_MAPPING
        path = self._directory / f"{hospital}.json"
        try:
            modified = path.stat().st_mtime
        except FileNotFoundError:
            return DEFAULT_MAPPING
        except OSError as error:
            raise MappingInvalid(f"{path.name}: unreadable ({type(error).__name__})") from None
        cached = self._cache.get(hospital)
        if cached is not None and cached[0] == modified:
            return cached[1]
        try:
            mapping = load_mapping_file(path)
        except OSError as error:
            raise MappingInvalid(f"{path.name}: unreadable ({type(error).__name__})") from None
        self._cache[hospital] = (modified, mapping)
        return mapping


def quiet_parser_logs() -> None:
    """D-ingest-1: python-hl7 logs malformed escape sequences, at WARNING and ERROR, quoting the
    field's content (personal data): its logger is silenced. Such input still ends as a record
    (the sequence dropped) or a rejection, which is what operators see."""
    logging.getLogger("hl7").setLevel(logging.CRITICAL + 1)
