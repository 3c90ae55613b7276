"""Linkage settings (environment, read once by the command line)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings
from pydantic import SecretStr


class LinkageSettings(ServiceSettings):
    # Key of the person-id hash: person ids derive from identifiers, so without the key nobody
    # can recompute one from a guessed registration number.
    person_key: SecretStr | None = None
    person_key_file: Path | None = None
    # Or every version of it: person.k<N>.key (+ .activates) files (D33, biostream.keyring).
    person_keys_dir: Path | None = None
    # Opens the registration numbers ingest sealed on the identity topic (only ingest and
    # linkage hold it).
    rrn_key: SecretStr | None = None
    rrn_key_file: Path | None = None
    rrn_keys_dir: Path | None = None  # rrn.k<N>.key files (D33)
    # m/u probabilities, prior, thresholds and term frequencies from `linkage train` (JSON);
    # without it the built-in defaults for an index of about a million persons apply.
    params_file: Path | None = None
