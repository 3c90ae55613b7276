"""Pseudonymizer settings (environment, read once in ``__main__``)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings
from pydantic import Field, SecretStr


class PseudonymizerSettings(ServiceSettings):
    # One release policy per dataset: every *.json file of the directory.
    policy_dir: Path = Path("policies")
    # Pseudonym-domain keys, kept apart from the curated data (PIPA's "additional information"):
    # files <domain>.<key_version>.key in a directory mounted from a secret, and/or the environment
    # (BIOSTREAM_PSEUDONYM_KEYS='{"<domain>/<version>": "<key>"}'); never the repository.
    keys_dir: Path | None = None
    pseudonym_keys: dict[str, SecretStr] = Field(default_factory=dict)
