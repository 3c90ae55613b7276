"""Typed settings, read from the environment exactly once, by each service's command line.

Names: ``BIOSTREAM_<FIELD>``, nested with ``__`` (``BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS``).
Secrets are ``SecretStr`` and never have defaults; key material may come from a file instead
(``..._FILE``), which is how Kubernetes secrets are mounted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PLAINTEXT_PROTOCOLS = frozenset({"PLAINTEXT", "SASL_PLAINTEXT"})


class KafkaSettings(BaseModel):
    """How to reach and authenticate to the brokers (D30: TLS unless plaintext is asked for).

    ``SASL_SSL`` (SCRAM inside TLS) is the default; ``SSL`` with a client certificate and key is
    mutual TLS, the certificate naming the principal. The broker's certificate is verified
    against ``ssl_cafile`` (the system's CAs when unset), host name included. A plaintext
    protocol is refused unless ``allow_plaintext`` is set, a development setting that makes
    every client log a warning.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "SASL_SSL"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # The password as a mounted file (compose, Kubernetes secrets); read when a client is built.
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    allow_plaintext: bool = False
    # How long the broker may hold a service's fetch for at least fetch_min_bytes. Short: less
    # latency per hop under a trickle; long: less CPU when idle (each service measured at 2.3 %
    # of a core idle with 25 ms, 0.4 % with 500 ms). See docs/decisions.md D17.
    fetch_max_wait_ms: int = Field(default=25, ge=1, le=5000)
    fetch_min_bytes: int = Field(default=64 * 1024, ge=1)

    @property
    def encrypted(self) -> bool:
        return self.security_protocol not in PLAINTEXT_PROTOCOLS

    def authenticated_principal(self) -> str | None:
        """D31: the principal the broker authenticates these settings as: ``User:<SCRAM user>``,
        or ``User:<CN>`` of the client certificate (mutual TLS); None without either."""
        if self.security_protocol.startswith("SASL") and self.sasl_username:
            return f"User:{self.sasl_username}"
        if self.security_protocol == "SSL" and self.ssl_certfile is not None:
            from cryptography import x509
            from cryptography.x509.oid import NameOID

            cert = x509.load_pem_x509_certificate(self.ssl_certfile.read_bytes())
            names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if names:
                return f"User:{names[0].value!s}"
        return None


class ServiceSettings(BaseSettings):
    """What every service needs. Each service subclasses it with its own fields."""

    model_config = SettingsConfigDict(
        env_prefix="BIOSTREAM_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    topic_prefix: str = ""
    instance_id: str = "0"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Without Kafka credentials (unit tests, a broker without SASL) the principal the service's
    # audit events name; with credentials it is the authenticated one, and this must match (D31).
    principal: str | None = None
    # Key sealing the original bytes of dead letters (AES-256-GCM): operators can read the
    # dead-letter topic; only holders of this key (data stewards) can read what was sent.
    dead_letter_key: SecretStr | None = None
    dead_letter_key_file: Path | None = None
    # Or every version of it, dead-letter.k<N>.key (+ .activates) files: D33, biostream.keyring.
    dead_letter_keys_dir: Path | None = None
    dead_letter_cleartext: bool = False
    batch_max_records: int = 500
    poll_timeout_ms: int = 200
    # A state restore that sees no progress from the broker for this long stops the service
    # (exit non-zero) instead of running it on part of its state; a restore that keeps moving is
    # never cut off, however long it takes. docs/decisions.md D22.
    restore_timeout_s: float = Field(default=300.0, gt=0)
    # A command that reads a topic to its end (audit verify/export/report/reconcile/trace, the
    # dead-letter list, re-identification) fails with a clear error once the broker has made no
    # progress for this long, rather than report on part of the topic. docs/decisions.md D26.
    read_timeout_s: float = Field(default=120.0, gt=0)


def read_secret(value: SecretStr | None, file: Path | None, what: str) -> bytes:
    """Key material from a file (preferred) or the environment; never a default."""
    if file is not None:
        data = file.read_bytes().strip()
        if not data:
            raise ValueError(f"{what}: secret file is empty")
        return data
    if value is not None and value.get_secret_value():
        return value.get_secret_value().encode("utf-8")
    raise ValueError(f"{what}: no secret configured (set the _FILE or the value variable)")
