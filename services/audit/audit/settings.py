"""Audit settings (environment, read once by the command line)."""

from __future__ import annotations

from pathlib import Path

from biostream.settings import ServiceSettings, read_secret
from pydantic import SecretStr


class AuditSettings(ServiceSettings):
    # Ed25519 seed (64 hex digits) that signs checkpoints: a secret, from a file in deployments.
    ledger_signing_key: SecretStr | None = None
    ledger_signing_key_file: Path | None = None
    # D34: versioned signing keys, ``ledger.k<N>.key`` (the highest N signs; the older ones are
    # kept until the hand-over to it is written). Exclusive with the single key above.
    ledger_signing_keys_dir: Path | None = None
    # Public key (64 hex digits) the commands check checkpoints and proofs with.
    ledger_public_key_file: Path | None = None
    checkpoint_every_entries: int = 1000
    checkpoint_every_seconds: float = 30.0
    # Comma-separated auditor ids allowed to run `audit trace` (until Kafka ACLs, security issue).
    authorised_auditors: str = ""

    def signing_key(self) -> bytes:
        return read_secret(
            self.ledger_signing_key, self.ledger_signing_key_file, "ledger signing key"
        )

    def auditors(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.authorised_auditors.split(",") if a.strip())
