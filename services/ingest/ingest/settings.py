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


class MllpSettings(ServiceSettings):
    """``ingest mllp``: one hospital's HL7 v2 listener (D37). Kafka credentials are that
    hospital's principal, which may write only its own feed topic."""

    mllp_hospital: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_-]*$")
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(default=2575, ge=0, le=65535)  # 2575: the port IANA lists for HL7
    # TLS (required unless plaintext is asked for explicitly): the listener's certificate and
    # key; with a client CA, client certificates are required and must name the hospital (CN).
    mllp_certfile: Path | None = None
    mllp_keyfile: Path | None = None
    mllp_client_cafile: Path | None = None
    mllp_allow_plaintext: bool = False
    # Larger frames are answered AR and not stored: the broker's message.max.bytes (1 MB by
    # default) would refuse them anyway.
    mllp_max_message_bytes: int = Field(default=1_000_000, ge=1024)
    # Control ids of the newest stored messages, to acknowledge a resend without storing it twice.
    mllp_duplicate_window: int = Field(default=100_000, ge=1)
    # How long a message may wait for the broker before it is answered AE (resend).
    mllp_store_timeout_s: float = Field(default=30.0, gt=0)


class FhirGatewaySettings(ServiceSettings):
    """``ingest fhir``: one hospital's FHIR REST intake (D38). Kafka credentials are that
    hospital's principal, which may write only its own feed topic."""

    fhir_hospital: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_-]*$")
    fhir_host: str = "127.0.0.1"
    fhir_port: int = Field(default=8443, ge=0, le=65535)
    fhir_certfile: Path | None = None
    fhir_keyfile: Path | None = None
    fhir_allow_plaintext: bool = False
    # The hospital is authenticated by a client certificate from this CA naming it (CN), or by
    # the bearer token in the token file (at least 32 characters), or both.
    fhir_client_cafile: Path | None = None
    fhir_token_file: Path | None = None
    # A request body larger than this is answered 413: an NDJSON file is read whole.
    fhir_max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    fhir_store_timeout_s: float = Field(default=60.0, gt=0)
