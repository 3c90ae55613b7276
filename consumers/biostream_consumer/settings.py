"""Settings of the consumer toolkit, read from the environment once, in ``__main__``.

Same names as the services' (``BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS``, ``..._SASL_USERNAME``,
``..._SASL_PASSWORD``, ``..._SSL_CAFILE``; SCRAM inside TLS by default, D30), plus ``BIOSTREAM_KAFKA_PASSWORD_FILE`` for a password mounted as a file
(preferred to the variable). The principal is the project's own (``project-<dataset>``).
"""

from __future__ import annotations

from pathlib import Path

from biostream.settings import KafkaSettings, read_secret
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsumerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BIOSTREAM_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    kafka_password_file: Path | None = None
    topic_prefix: str = ""
    dataset: str = "cohort-demo"
    database: Path = Path("cohort.duckdb")
    client_id: str = "biostream-consumer"
    max_records: int = 1000
    # A sync fails with a clear error once the broker has made no progress for this long, rather
    # than report itself caught up on part of the dataset (docs/decisions.md D26).
    read_timeout_s: float = Field(default=120.0, gt=0)

    def kafka_settings(self) -> KafkaSettings:
        if self.kafka_password_file is None:
            return self.kafka
        password = read_secret(None, self.kafka_password_file, "Kafka password").decode()
        return self.kafka.model_copy(update={"sasl_password": SecretStr(password)})
