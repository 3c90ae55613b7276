"""Ingest settings (environment, read once by the command line)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings
from pydantic import Field, SecretStr

from ingest.domain.dedup import DEFAULT_WINDOW_DAYS


class IngestSettings(ServiceSettings):
    # Key of the patient_ref hash. Held by ingest only (linkage and the pseudonymizer see refs,
    # never the key), so nobody downstream can test a guessed patient number against a ref.
    patient_ref_key: SecretStr | None = None
    patient_ref_key_file: Path | None = None
    # Or every version of it: patient-ref.k<N>.key (+ .activates) files (D33, biostream.keyring).
    patient_ref_keys_dir: Path | None = None
    # Encrypts registration numbers at field level on the identity topic; only ingest and
    # linkage hold it.
    rrn_key: SecretStr | None = None
    rrn_key_file: Path | None = None
    rrn_keys_dir: Path | None = None  # rrn.k<N>.key files (D33)
    # <dir>/<HOSPITAL>.json declares a hospital's CSV columns; hospitals without one use the
    # default columns (services/ingest/README.md).
    csv_mapping_dir: Path | None = None
    # A resent hospital message is recognised for this many days after it was accepted (D25);
    # the de-duplication state holds about this many days of feed.
    dedup_window_days: int = Field(default=DEFAULT_WINDOW_DAYS, ge=1)
