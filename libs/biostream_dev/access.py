"""The ACL matrix (deploy/acl-matrix.yaml): rendered for one deployment, applied to a broker
(SCRAM users + ACLs through kafka-python's admin client), or written as Strimzi KafkaUsers.

One file drives both, so what the tests prove is what Kubernetes deploys.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from biostream.settings import KafkaSettings
from biostream.topics import RetentionWindows
from pydantic import SecretStr

MATRIX = Path(__file__).resolve().parents[2] / "deploy" / "acl-matrix.yaml"
Resource = Literal["topic", "group", "transactionalId"]
_OPERATIONS: dict[str, tuple[Resource, tuple[str, ...]]] = {
    "read": ("topic", ("Read", "Describe")),
    "write": ("topic", ("Write", "Describe")),
    # Offsets and metadata only, no record (D35: reconcile counts feed positions this way).
    "describe": ("topic", ("Describe",)),
    "groups": ("group", ("Read",)),
    "transactional_ids": ("transactionalId", ("Write", "Describe")),
}


@dataclass(frozen=True)
class Grant:
    resource: Resource
    name: str
    prefixed: bool
    operations: tuple[str, ...]


@dataclass(frozen=True)
class Principal:
    name: str  # the SCRAM user name, prefix included
    grants: tuple[Grant, ...]

    def allows(self, resource: Resource, name: str, operation: str) -> bool:
        return any(
            g.resource == resource
            and operation in g.operations
            and (name.startswith(g.name) if g.prefixed else name == g.name)
            for g in self.grants
        )


def load_matrix(path: Path = MATRIX) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not set(data) <= {"services", "per_hospital", "per_dataset"}:
        raise ValueError(f"{path}: expected the keys services, per_hospital, per_dataset")
    for section in data.values():
        for principal, rules in (section or {}).items():
            unknown = set(rules) - set(_OPERATIONS)
            if unknown:
                raise ValueError(f"{path}: {principal}: unknown rule kinds {sorted(unknown)}")
    return data


def render(
    matrix: Mapping[str, Any],
    *,
    prefix: str = "",
    hospitals: Iterable[str] = (),
    datasets: Iterable[str] = (),
) -> dict[str, Principal]:
    """Every principal of one deployment, keyed by its role name (e.g. ``svc-ingest``)."""
    roles: dict[str, Mapping[str, list[str]]] = dict(matrix.get("services") or {})
    # Principal names are lowercase: they double as Kubernetes (Strimzi KafkaUser) names.
    for template, rules in (matrix.get("per_hospital") or {}).items():
        for hospital in hospitals:
            roles[template.format(hospital=hospital).lower()] = _expand(rules, hospital=hospital)
    for template, rules in (matrix.get("per_dataset") or {}).items():
        for dataset in datasets:
            roles[template.format(dataset=dataset).lower()] = _expand(rules, dataset=dataset)
    principals = {}
    for role, rules in roles.items():
        grants = []
        for kind, names in rules.items():
            resource, operations = _OPERATIONS[kind]
            for raw in names:
                prefixed = raw.endswith("*")
                grants.append(Grant(resource, prefix + raw.rstrip("*"), prefixed, operations))
        principals[role] = Principal(prefix + role, tuple(grants))
    return principals


def _expand(rules: Mapping[str, list[str]], **values: str) -> dict[str, list[str]]:
    return {kind: [name.format(**values) for name in names] for kind, names in rules.items()}


@dataclass
class Credentials:
    """SCRAM passwords of the rendered principals (generated; never written to the repository)."""

    bootstrap: str
    passwords: dict[str, str]
    users: dict[str, str]
    # Transport of the admin connection they were created over (SCRAM over TLS normally, D30).
    transport: KafkaSettings = field(default_factory=KafkaSettings)

    def settings(self, role: str) -> KafkaSettings:
        return self.transport.model_copy(
            update={
                "bootstrap_servers": self.bootstrap,
                "security_protocol": ("SASL_SSL" if self.transport.encrypted else "SASL_PLAINTEXT"),
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": self.users[role],
                "sasl_password": SecretStr(self.passwords[role]),
            }
        )


def apply(admin: KafkaSettings, principals: Mapping[str, Principal]) -> Credentials:
    """Creates a SCRAM user with a fresh random password and the ACLs of every principal."""
    from biostream.kafka import sync_client_options
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourceType,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    client = KafkaAdminClient(**sync_client_options(admin), client_id="biostream-access")
    resource_types = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactionalId": ResourceType.TRANSACTIONAL_ID,
    }
    passwords = {role: secrets.token_urlsafe(24) for role in principals}
    try:
        errors = client.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(p.name, ScramMechanism.SCRAM_SHA_512, passwords[role])
                for role, p in principals.items()
            ]
        )
        failed = {user: error for user, error in errors.items() if error}
        if failed:
            raise RuntimeError(f"creating SCRAM users failed: {sorted(failed)}")
        acls = [
            ACL(
                principal=f"User:{p.name}",
                host="*",
                operation=ACLOperation[operation.upper()],
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(
                    resource_types[grant.resource],
                    grant.name,
                    ACLResourcePatternType.PREFIXED
                    if grant.prefixed
                    else ACLResourcePatternType.LITERAL,
                ),
            )
            for p in principals.values()
            for grant in p.grants
            for operation in grant.operations
        ]
        result = client.create_acls(acls)
        if result.get("failed"):
            raise RuntimeError(f"creating {len(result['failed'])} ACLs failed")
    finally:
        client.close()
    # How the principals reach the broker: the admin's address and CA, none of its credentials.
    transport = admin.model_copy(
        update={
            "sasl_username": None,
            "sasl_password": None,
            "sasl_password_file": None,
            "ssl_certfile": None,
            "ssl_keyfile": None,
        }
    )
    return Credentials(
        admin.bootstrap_servers,
        passwords,
        {role: p.name for role, p in principals.items()},
        transport,
    )


async def wait_until_usable(credentials: Credentials, timeout_s: float = 30) -> None:
    """ACLs and credentials propagate asynchronously: retry each principal's login until it works."""
    from aiokafka.admin import AIOKafkaAdminClient
    from biostream.kafka import client_options

    deadline = time.monotonic() + timeout_s
    for role in credentials.users:
        while True:
            client = AIOKafkaAdminClient(
                **client_options(credentials.settings(role)), request_timeout_ms=3000
            )
            try:
                await client.start()
                await client.list_topics()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
            finally:
                await client.close()
            await asyncio.sleep(0.2)


def strimzi_users(
    principals: Mapping[str, Principal], cluster: str = "biostream"
) -> list[dict[str, Any]]:
    """Strimzi ``KafkaUser`` resources (SCRAM-SHA-512, simple authorization) for the principals."""
    operation_names = {"Read": "Read", "Write": "Write", "Describe": "Describe"}
    users = []
    for role, principal in sorted(principals.items()):
        acls = [
            {
                "resource": {
                    "type": grant.resource,
                    "name": grant.name,
                    "patternType": "prefix" if grant.prefixed else "literal",
                },
                "operations": [operation_names[o] for o in grant.operations],
                "host": "*",
            }
            for grant in principal.grants
        ]
        users.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaUser",
                "metadata": {"name": role, "labels": {"strimzi.io/cluster": cluster}},
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return users


def render_strimzi_yaml(hospitals: Iterable[str], datasets: Iterable[str]) -> str:
    principals = render(load_matrix(), hospitals=hospitals, datasets=datasets)
    header = (
        "# Generated from deploy/acl-matrix.yaml by `biostream-dev access strimzi`; do not edit.\n"
        "# CI fails when this file differs from what the matrix generates.\n"
    )
    return header + yaml.safe_dump_all(strimzi_users(principals), sort_keys=False)


def kafka_environment(settings: KafkaSettings) -> dict[str, str]:
    """``BIOSTREAM_KAFKA__*`` variables that make a child process connect with ``settings``."""
    env = {
        "BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "BIOSTREAM_KAFKA__SECURITY_PROTOCOL": settings.security_protocol,
    }
    if settings.allow_plaintext:
        env["BIOSTREAM_KAFKA__ALLOW_PLAINTEXT"] = "true"
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, name)
        if path is not None:
            env[f"BIOSTREAM_KAFKA__{name.upper()}"] = str(path)
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_username is not None and settings.sasl_password is not None
        env |= {
            "BIOSTREAM_KAFKA__SASL_MECHANISM": settings.sasl_mechanism,
            "BIOSTREAM_KAFKA__SASL_USERNAME": settings.sasl_username,
            "BIOSTREAM_KAFKA__SASL_PASSWORD": settings.sasl_password.get_secret_value(),
        }
    return env


SERVICE_ROLES = {
    "ingest": "svc-ingest",
    "linkage": "svc-linkage",
    "pseudonymizer": "svc-pseudonymizer",
    "audit": "svc-audit",
}


def provision_services(admin: KafkaSettings, prefix: str) -> Credentials | None:
    """SCRAM users and ACLs of the four services for one topic prefix; None without SASL."""
    if not admin.security_protocol.startswith("SASL"):
        return None
    principals = render(load_matrix(), prefix=prefix)
    services = {role: principals[role] for role in SERVICE_ROLES.values()}
    return apply(admin, services)


def render_strimzi_topics_yaml(
    hospitals: Iterable[str],
    datasets: Iterable[str],
    cluster: str = "biostream",
    windows: RetentionWindows | None = None,
) -> str:
    """Strimzi ``KafkaTopic`` resources for the pipeline's topics (the same specs tests create),
    each with its declared retention (D21); the topic operator applies a changed ``config`` to a
    topic that exists already."""
    from biostream.topics import Topics

    resources = []
    specs = Topics().pipeline_specs(list(hospitals), list(datasets), windows or RetentionWindows())
    for spec in specs:
        config: dict[str, Any] = {
            "min.insync.replicas": 2,
            "cleanup.policy": spec.retention.cleanup_policy,
            "retention.ms": spec.retention.retention_ms,
            "retention.bytes": spec.retention.retention_bytes,
        }
        resources.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaTopic",
                # Kubernetes names are lowercase; spec.topicName keeps the exact Kafka name.
                "metadata": {
                    "name": spec.name.lower().replace("_", "-"),
                    "labels": {"strimzi.io/cluster": cluster},
                },
                "spec": {
                    "topicName": spec.name,
                    "partitions": spec.partitions,
                    "replicas": 3,
                    "config": config,
                },
            }
        )
    header = (
        "# Generated from biostream.topics by `biostream-dev access strimzi-topics`; do not edit.\n"
        "# CI fails when this file differs from what the code generates.\n"
    )
    return header + yaml.safe_dump_all(resources, sort_keys=False)
