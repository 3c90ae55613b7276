"""Pseudonymizer settings (environment, read once in ``__main__``)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings
from pydantic import SecretStr


class PseudonymizerSettings(ServiceSettings):
    policy_file: Path = Path("policies/cohort-demo.json")
    # The dataset's pseudonym-domain key. Kept apart from the curated data (PIPA's "additional
    # information"): a file mounted from a secret, or the environment; never the repository.
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
