"""The local broker: server.properties, SCRAM and the admin credential."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from pathlib import Path

from biostream_dev.broker.common import CLIENT_LISTENER, CONTROLLER_LISTENER, DATA_DIR, NODE_ID


def broker_properties(
    run_dir: Path,
    port: int,
    controller_port: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """All ``server.properties`` keys of the single-node broker+controller.

    The client listener is named ``CLIENT`` and mapped to a security protocol in
    ``listener.security.protocol.map``, so authentication (e.g. SASL/SCRAM on ``CLIENT``, an
    authorizer, super users) is added later purely through ``extra``, which overrides or extends
    the defaults key by key. ``extra`` is recorded in ``broker.json`` and reused on restart.
    """
    props: dict[str, str] = {
        # KRaft, combined mode, one voter bootstrapped with `format --standalone`.
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "controller.listener.names": CONTROLLER_LISTENER,
        "listeners": (
            f"{CLIENT_LISTENER}://127.0.0.1:{port},{CONTROLLER_LISTENER}://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"{CLIENT_LISTENER}://127.0.0.1:{port}",
        "inter.broker.listener.name": CLIENT_LISTENER,
        "listener.security.protocol.map": (
            f"{CLIENT_LISTENER}:PLAINTEXT,{CONTROLLER_LISTENER}:PLAINTEXT"
        ),
        "log.dirs": str(run_dir / DATA_DIR),
        # Single node: every replication factor and min ISR is 1.
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # Tests: no 3 s wait before the first rebalance; topics only exist when created.
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # After a SIGKILL the restarted broker cannot register until the controller has expired
        # the old incarnation's session (DUPLICATE_BROKER_REGISTRATION); the default 9 s session
        # made every restart-after-crash take ~13 s. 4 s still tolerates long GC pauses.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        # Two cores: fewer threads than the defaults (3 network, 8 I/O).
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    if extra:
        props.update(extra)
    return props


ADMIN_USER = "admin"
ADMIN_PASSWORD_FILE = "admin.password"  # noqa: S105 - a file name, not a password


def sasl_properties(admin_password: str) -> dict[str, str]:
    """SASL/SCRAM-SHA-512 on the client listener, ACLs enforced, nothing allowed without an ACL.

    The KRaft controller listener stays PLAINTEXT on loopback: SCRAM credentials live in the
    metadata log the controller serves, so the controller cannot authenticate with them. Its
    connections carry the ANONYMOUS principal, which is therefore a super user; the client
    listener never yields ANONYMOUS because it requires SASL.
    """
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";'
    )
    return {
        "listener.security.protocol.map": (
            f"{CLIENT_LISTENER}:SASL_PLAINTEXT,{CONTROLLER_LISTENER}:PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        f"listener.name.{CLIENT_LISTENER.lower()}.scram-sha-512.sasl.jaas.config": jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
    }


def admin_password(run_dir: Path) -> str | None:
    """The broker's admin SCRAM password, when it was started with authentication."""
    path = run_dir.resolve() / ADMIN_PASSWORD_FILE
    return path.read_text().strip() if path.is_file() else None


def client_security(run_dir: Path) -> dict[str, str]:
    """aiokafka keyword arguments for the admin principal of this broker ({} without SASL)."""
    password = admin_password(run_dir)
    if password is None:
        return {}
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": ADMIN_USER,
        "sasl_plain_password": password,
    }


def render_properties(props: Mapping[str, str]) -> str:
    """``key=value`` lines in Java properties syntax (backslashes escaped)."""
    lines = ["# Generated by biostream_dev.broker; rewritten on every start."]
    for key, value in props.items():
        if "\n" in key or "\n" in value or "=" in key:
            raise ValueError(f"unsupported property {key!r}={value!r}")
        lines.append(f"{key}={value.replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A Kafka ``Uuid`` string, as ``kafka-storage.sh random-uuid`` prints it.

    Same rules as ``org.apache.kafka.common.Uuid.randomUuid``: 16 random bytes, base64url without
    padding, never starting with ``-``; generated here to save a JVM start (~1 s).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
