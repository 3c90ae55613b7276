"""The Avro contracts in ``schemas/avro``, loaded once and indexed by name and fingerprint."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SINGLE_OBJECT_MAGIC = b"\xc3\x01"


def default_schema_dir() -> Path:
    """``schemas/avro`` of this checkout; ``BIOSTREAM_SCHEMA_DIR`` overrides it for installed images."""
    override = os.environ.get("BIOSTREAM_SCHEMA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "schemas" / "avro"


@dataclass(frozen=True)
class Contract:
    """One schema version: its full name, parsed form and single-object-encoding header."""

    full_name: str
    parsed: Any
    fingerprint: bytes
    source: Path

    @property
    def header(self) -> bytes:
        return SINGLE_OBJECT_MAGIC + self.fingerprint

    @property
    def short_name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1]


def load_contract(path: Path) -> Contract:
    raw = json.loads(path.read_text(encoding="utf-8"))
    canonical = to_parsing_canonical_form(fastavro.parse_schema(raw, _write_hint=False))
    # The write hint marks the schema as parsed: without it fastavro's schemaless_writer parses
    # the schema again on every call, which doubled the cost of each encoded record.
    parsed = fastavro.parse_schema(raw)
    # fastavro renders the CRC-64-AVRO fingerprint as the little-endian bytes the spec puts on the wire.
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    full_name = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
    return Contract(full_name=full_name, parsed=parsed, fingerprint=fp, source=path)


class SchemaRegistry:
    """Current contracts by short name, and every known version (current and archived) by fingerprint.

    Archived versions live in ``schemas/avro/archive/`` so that messages written before a schema
    changed stay readable: the writer schema is found by the fingerprint in each message.
    """

    def __init__(self, schema_dir: Path | None = None) -> None:
        self.schema_dir = schema_dir or default_schema_dir()
        if not self.schema_dir.is_dir():
            raise FileNotFoundError(f"schema directory not found: {self.schema_dir}")
        self._current: dict[str, Contract] = {}
        self._by_fingerprint: dict[bytes, Contract] = {}
        for path in sorted(self.schema_dir.glob("*.avsc")):
            contract = load_contract(path)
            self._current[contract.short_name] = contract
            self._by_fingerprint[contract.fingerprint] = contract
        archive = self.schema_dir / "archive"
        if archive.is_dir():
            for path in sorted(archive.glob("*.avsc")):
                contract = load_contract(path)
                self._by_fingerprint.setdefault(contract.fingerprint, contract)

    def current(self, short_name: str) -> Contract:
        try:
            return self._current[short_name]
        except KeyError:
            raise KeyError(f"no contract named {short_name!r} in {self.schema_dir}") from None

    def by_fingerprint(self, fp: bytes) -> Contract | None:
        return self._by_fingerprint.get(fp)

    def names(self) -> list[str]:
        return sorted(self._current)
