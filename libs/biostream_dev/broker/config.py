"""The local broker: server.properties, SCRAM and the admin credential."""

from __future__ import annotations

import base64
import ssl
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biostream.settings import KafkaSettings
from pydantic import SecretStr

from biostream_dev import tls
from biostream_dev.broker.common import (
    CERT_LISTENER,
    CLIENT_LISTENER,
    CONTROLLER_LISTENER,
    DATA_DIR,
    NODE_ID,
    TLS_DIR,
)


def broker_properties(
    run_dir: Path,
    port: int,
    controller_port: int,
    extra: Mapping[str, str] | None = None,
    cert_port: int | None = None,
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
        **listener_properties(port, controller_port, cert_port),
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


BROKER_KEY_STORE = tls.BROKER_KEY_STORE
# Who a client certificate names: its CN, so ``CN=svc-ingest`` authenticates as User:svc-ingest.
PRINCIPAL_FROM_CERTIFICATE = "RULE:^CN=([^,]+)$/$1/,DEFAULT"


def sasl_properties(
    admin_password: str,
    tls_dir: Path | None = None,
    cert_port: int | None = None,
) -> dict[str, str]:
    """SASL/SCRAM-SHA-512 on the client listener, ACLs enforced, nothing allowed without an ACL.

    With ``tls_dir`` the client listener is SASL_SSL (SCRAM inside TLS; the broker's certificate
    names 127.0.0.1 and localhost, clients verify it, D30), and with ``cert_port`` a second
    listener ``CERT`` authenticates clients by certificate alone (mutual TLS, the CN is the
    principal) for deployments that prefer certificates to passwords.

    The KRaft controller listener stays PLAINTEXT on loopback: SCRAM credentials live in the
    metadata log the controller serves, so the controller cannot authenticate with them. Its
    connections carry the ANONYMOUS principal, which is therefore a super user; the client
    listeners never yield ANONYMOUS because they require SASL or a client certificate.
    """
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";'
    )
    client_protocol = "SASL_SSL" if tls_dir is not None else "SASL_PLAINTEXT"
    protocols = [f"{CLIENT_LISTENER}:{client_protocol}", f"{CONTROLLER_LISTENER}:PLAINTEXT"]
    props = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        f"listener.name.{CLIENT_LISTENER.lower()}.scram-sha-512.sasl.jaas.config": jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
    }
    if tls_dir is not None:
        props |= {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls_dir / BROKER_KEY_STORE),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls_dir / tls.CA_CERT),
            "ssl.endpoint.identification.algorithm": "https",
        }
        if cert_port is not None:
            protocols.insert(1, f"{CERT_LISTENER}:SSL")
            props |= {
                f"listener.name.{CERT_LISTENER.lower()}.ssl.client.auth": "required",
                "ssl.principal.mapping.rules": PRINCIPAL_FROM_CERTIFICATE,
            }
    props["listener.security.protocol.map"] = ",".join(protocols)
    return props


def listener_properties(port: int, controller_port: int, cert_port: int | None) -> dict[str, str]:
    """``listeners`` and ``advertised.listeners`` for the client (and certificate) listeners."""
    client = [f"{CLIENT_LISTENER}://127.0.0.1:{port}"]
    if cert_port is not None:
        client.append(f"{CERT_LISTENER}://127.0.0.1:{cert_port}")
    return {
        "listeners": ",".join([*client, f"{CONTROLLER_LISTENER}://127.0.0.1:{controller_port}"]),
        "advertised.listeners": ",".join(client),
    }


def ensure_broker_certificates(tls_dir: Path) -> None:
    """The broker's CA and server certificate (kept across restarts of the same run dir)."""
    ca = tls.ensure_ca(tls_dir)
    if not (tls_dir / BROKER_KEY_STORE).is_file():
        tls.issue_broker(ca, tls_dir, ["127.0.0.1", "localhost"])


def admin_password(run_dir: Path) -> str | None:
    """The broker's admin SCRAM password, when it was started with authentication."""
    path = run_dir.resolve() / ADMIN_PASSWORD_FILE
    return path.read_text().strip() if path.is_file() else None


def ca_file(run_dir: Path) -> Path | None:
    """The CA certificate clients of this broker verify it with (None without TLS)."""
    path = run_dir.resolve() / TLS_DIR / tls.CA_CERT
    return path if path.is_file() else None


def client_security(run_dir: Path) -> dict[str, Any]:
    """aiokafka keyword arguments for the admin principal of this broker ({} without SASL)."""
    password = admin_password(run_dir)
    if password is None:
        return {}
    options: dict[str, Any] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": ADMIN_USER,
        "sasl_plain_password": password,
    }
    ca = ca_file(run_dir)
    if ca is not None:
        options |= {
            "security_protocol": "SASL_SSL",
            "ssl_context": ssl.create_default_context(cafile=str(ca)),
        }
    return options


def admin_settings(run_dir: Path, bootstrap: str) -> KafkaSettings:
    """The broker's admin (super user) as client settings: SCRAM over TLS, verified against the
    run directory's CA. A broker started without authentication is a development broker, so its
    settings say PLAINTEXT with ``allow_plaintext`` (every client then logs the warning)."""
    password = admin_password(run_dir)
    if password is None:
        return KafkaSettings(
            bootstrap_servers=bootstrap, security_protocol="PLAINTEXT", allow_plaintext=True
        )
    ca = ca_file(run_dir)
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL" if ca is not None else "SASL_PLAINTEXT",
        allow_plaintext=ca is None,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=ADMIN_USER,
        sasl_password=SecretStr(password),
        ssl_cafile=ca,
    )


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
