"""Construction of aiokafka clients from settings, and topic provisioning.

Only bootstrap modules and tools call these: handlers never see a Kafka client.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import NodeNotReadyError, StaleMetadata

from biostream.settings import KafkaSettings
from biostream.topics import TopicSpec, retention_update

TOPIC_ALREADY_EXISTS = 36


class PlaintextRefused(ValueError):
    """A plaintext connection was configured without the explicit development setting."""


def check_transport(kafka: KafkaSettings) -> None:
    """D30: no connection in clear unless ``allow_plaintext`` says so, and then a warning.

    The warning is logged once per process and bootstrap address, at the first client built.
    """
    if kafka.encrypted:
        return
    if not kafka.allow_plaintext:
        raise PlaintextRefused(
            f"security_protocol {kafka.security_protocol} sends data to {kafka.bootstrap_servers} "
            "unencrypted; use SASL_SSL or SSL, or set BIOSTREAM_KAFKA__ALLOW_PLAINTEXT=true "
            "(development only)"
        )
    _warn_plaintext(kafka.bootstrap_servers, kafka.security_protocol)


@functools.cache
def _warn_plaintext(bootstrap: str, protocol: str) -> None:
    structlog.get_logger("biostream.kafka").warning(
        "kafka connection is not encrypted (development setting allow_plaintext)",
        bootstrap=bootstrap,
        security_protocol=protocol,
    )


@functools.cache
def _ssl_context(
    cafile: Path | None, certfile: Path | None, keyfile: Path | None
) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name; presents a client certificate for
    mutual TLS when one is configured. Cached: every client of a process shares one context."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return context


def _sasl_password(kafka: KafkaSettings) -> str | None:
    if kafka.sasl_password is not None:
        return kafka.sasl_password.get_secret_value()
    if kafka.sasl_password_file is None:
        return None
    try:
        return kafka.sasl_password_file.read_text().strip()
    except OSError as exc:
        raise ValueError(
            f"cannot read the Kafka password file {kafka.sasl_password_file}: {exc.strerror}"
        ) from None


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka keyword arguments: address, transport security and credentials (D30)."""
    check_transport(kafka)
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        password = _sasl_password(kafka)
        if kafka.sasl_username is None or password is None:
            raise ValueError(
                "SASL needs BIOSTREAM_KAFKA__SASL_USERNAME and __SASL_PASSWORD (or __SASL_PASSWORD_FILE)"
            )
        options.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=password,
        )
    if kafka.encrypted:
        if kafka.security_protocol == "SSL" and kafka.ssl_certfile is None:
            raise ValueError(
                "SSL (mutual TLS) needs BIOSTREAM_KAFKA__SSL_CERTFILE and __SSL_KEYFILE"
            )
        options["ssl_context"] = _ssl_context(
            kafka.ssl_cafile, kafka.ssl_certfile, kafka.ssl_keyfile
        )
    return options


def sync_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The same as :func:`client_options` for kafka-python clients (admin APIs aiokafka lacks)."""
    options = client_options(kafka)
    context = options.pop("ssl_context", None)
    if context is not None:
        options |= {"ssl_context": context, "ssl_check_hostname": True}
    return options


def transactional_producer(kafka: KafkaSettings, transactional_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(kafka),
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        client_id=transactional_id,
    )


def plain_producer(kafka: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(kafka),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        client_id=client_id,
    )


def group_consumer(
    kafka: KafkaSettings,
    group_id: str,
    client_id: str,
    max_records: int,
    assignors: tuple[type, ...] | None = None,
) -> AIOKafkaConsumer:
    extra: dict[str, Any] = {}
    if assignors is not None:
        extra["partition_assignment_strategy"] = assignors
    return AIOKafkaConsumer(
        **client_options(kafka),
        **extra,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_records,
        # The broker answers a fetch once 64 KiB are ready or 25 ms have passed (defaults): under
        # a steady trickle a service then handles (and commits) a few dozen records per
        # transaction instead of one or two, for at most 25 ms more latency per hop (D17).
        fetch_min_bytes=kafka.fetch_min_bytes,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
    )


def reader(
    kafka: KafkaSettings, client_id: str, partition_fetch_bytes: int = 1_048_576
) -> AIOKafkaConsumer:
    """A consumer without a group: for state restore, inspection and tests; a replay of
    retained records (D46) fetches more per partition, so that one transaction holds more."""
    return AIOKafkaConsumer(
        **client_options(kafka),
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=partition_fetch_bytes,
    )


def admin_client(kafka: KafkaSettings, client_id: str = "biostream-admin") -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(kafka), client_id=client_id)


@dataclass
class TopicProvisioning:
    """What :func:`provision_topics` did: topics created, retention settings changed on topics
    that existed, and topics left keeping longer than declared (never shortened implicitly)."""

    created: list[str] = field(default_factory=list)
    altered: dict[str, dict[str, str]] = field(default_factory=dict)
    kept_longer: dict[str, dict[str, str]] = field(default_factory=dict)


async def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet with their declared retention, and bring the
    retention of those that exist up to it (D21); returns the names created."""
    return (await provision_topics(kafka, specs)).created


async def provision_topics(
    kafka: KafkaSettings, specs: list[TopicSpec], *, shorten: bool = False
) -> TopicProvisioning:
    """Create missing topics with their declared configuration; on existing ones apply
    :func:`biostream.topics.retention_update` (``shorten``: also cut retention down to the
    declared value, which deletes older records at the broker's next check)."""
    result = TopicProvisioning()
    admin = admin_client(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            new_topics = [
                NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.retention.configs())
                for spec in missing
            ]
            response = await admin.create_topics(new_topics, timeout_ms=30_000)
            for topic_error in response.topic_errors:
                name, code = topic_error[0], topic_error[1]
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name} failed with Kafka error code {code}")
            await _wait_for_metadata(admin, {spec.name for spec in missing})
            result.created = [spec.name for spec in missing]
        present = [spec for spec in specs if spec.name in existing]
        if present:
            current = await _describe_topic_configs(admin, [spec.name for spec in present])
            for spec in present:
                changes = retention_update(spec.retention, current[spec.name], shorten=shorten)
                if changes:
                    result.altered[spec.name] = changes
                longer = retention_update(spec.retention, current[spec.name], shorten=True)
                if longer.keys() - changes.keys():
                    result.kept_longer[spec.name] = {
                        k: current[spec.name].get(k, "") for k in longer.keys() - changes.keys()
                    }
    finally:
        await admin.close()
    if result.altered:
        await asyncio.to_thread(_alter_topic_configs, kafka, result.altered)
    return result


async def _describe_topic_configs(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
    )
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                raise RuntimeError(
                    f"describing topic {resource['resource_name']} failed with Kafka error code "
                    f"{resource['error_code']}"
                )
            configs[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
            }
    return configs


def sync_admin_client(kafka: KafkaSettings, client_id: str) -> Any:
    """A kafka-python admin client (for the admin APIs aiokafka lacks); the caller closes it."""
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(**sync_client_options(kafka), client_id=client_id)


def _alter_topic_configs(kafka: KafkaSettings, changes: dict[str, dict[str, str]]) -> None:
    """IncrementalAlterConfigs (kafka-python; aiokafka has only the legacy AlterConfigs, which
    resets every key it is not given): only the named keys change."""
    from kafka.admin import ConfigResource as SyncConfigResource
    from kafka.admin import ConfigResourceType as SyncResourceType

    client = sync_admin_client(kafka, "biostream-retention")
    try:
        outcome = client.alter_configs(
            [SyncConfigResource(SyncResourceType.TOPIC, n, c) for n, c in changes.items()],
            incremental=True,
            raise_on_unknown=False,
        )
    finally:
        client.close()
    failed = {name: why for name, why in outcome.get("topic", {}).items() if why != "OK"}
    if failed:
        raise RuntimeError(f"changing the retention of {sorted(failed)} failed: {failed}")


class TopicUnavailable(RuntimeError):
    """A topic the broker does not describe: absent, or (``error_code`` 29) not authorised."""

    def __init__(self, topic: str, error_code: int) -> None:
        super().__init__(f"topic {topic} is not available (error {error_code})")
        self.topic, self.error_code = topic, error_code

    @property
    def unauthorised(self) -> bool:
        return self.error_code == 29  # TOPIC_AUTHORIZATION_FAILED


_DESCRIBE_ATTEMPTS = 5  # 0.2 + 0.4 + 0.8 + 1.6 s between them


async def topic_partitions(kafka: KafkaSettings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of the given topics; raises ``TopicUnavailable`` if one does not
    exist or may not be described."""
    for attempt in range(_DESCRIBE_ATTEMPTS):
        admin = admin_client(kafka, "biostream-describe")
        try:
            await admin.start()
            described = await admin.describe_topics(topics)
            break
        except (NodeNotReadyError, StaleMetadata):
            # A broker that has just come back (restarted, or resumed after a pause) can answer
            # its first metadata request with no brokers in it; the next one has them.
            if attempt == _DESCRIBE_ATTEMPTS - 1:
                raise
        finally:
            await admin.close()
        await asyncio.sleep(0.2 * 2**attempt)
    partitions: list[TopicPartition] = []
    for topic in described:
        if topic["error_code"] != 0 or not topic["partitions"]:
            raise TopicUnavailable(topic["topic"], topic["error_code"])
        partitions += [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
    return sorted(partitions)


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: set[str]) -> None:
    for _ in range(100):
        if names <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("created topics did not appear in metadata")
