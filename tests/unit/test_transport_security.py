"""D30: every client connects inside TLS with the broker's certificate and host name checked;
plaintext only by an explicit development setting, with a warning.

The TLS handshakes here are real (an ``ssl`` server on loopback with certificates from
``biostream_dev.tls``); only the broker is absent.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from biostream import kafka as kafka_clients
from biostream.kafka import PlaintextRefused, check_transport, client_options
from biostream.settings import KafkaSettings
from biostream_dev import tls
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

PASSWORD = "canary-scram-password-7Q"


def _scram(protocol: str, **extra: object) -> KafkaSettings:
    return KafkaSettings.model_validate(
        {
            "bootstrap_servers": "broker.example:9093",
            "security_protocol": protocol,
            "sasl_username": "svc-ingest",
            "sasl_password": SecretStr(PASSWORD),
            **extra,
        }
    )


def test_the_default_is_scram_inside_tls() -> None:
    assert KafkaSettings().security_protocol == "SASL_SSL"
    assert KafkaSettings().encrypted


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_plaintext_is_refused_without_the_development_setting(protocol: str) -> None:
    with pytest.raises(PlaintextRefused) as refused:
        client_options(_scram(protocol))
    message = str(refused.value)
    assert "ALLOW_PLAINTEXT" in message and protocol in message
    assert PASSWORD not in message


def test_allowed_plaintext_logs_one_warning_naming_the_address() -> None:
    kafka_clients._warn_plaintext.cache_clear()
    settings = _scram("SASL_PLAINTEXT", allow_plaintext=True)
    with structlog.testing.capture_logs() as logs:
        check_transport(settings)
        check_transport(settings)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["bootstrap"] == "broker.example:9093"
    assert PASSWORD not in repr(warnings)


def test_tls_clients_check_certificate_and_host_name(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path)
    options = client_options(_scram("SASL_SSL", ssl_cafile=ca.cert))
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_mutual_tls_needs_a_client_certificate() -> None:
    settings = KafkaSettings(bootstrap_servers="b:9094", security_protocol="SSL")
    with pytest.raises(ValueError, match="SSL_CERTFILE"):
        client_options(settings)


def test_the_ca_is_kept_across_restarts(tmp_path: Path) -> None:
    first = tls.ensure_ca(tmp_path)
    before = first.cert.read_bytes()
    assert tls.ensure_ca(tmp_path).cert.read_bytes() == before
    assert first.key.stat().st_mode & 0o777 == 0o600


@contextmanager
def _tls_server(
    server: tls.Issued, client_ca: Path | None = None
) -> Iterator[tuple[int, list[str]]]:
    """A one-connection TLS server on loopback; yields its port and the client subjects seen."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server.cert, server.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    listener = socket.create_server(("127.0.0.1", 0))
    subjects: list[str] = []

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with context.wrap_socket(connection, server_side=True) as wrapped:
                peer = wrapped.getpeercert()
                if peer:
                    for rdn in peer["subject"]:
                        subjects.extend(value for key, value in rdn if key == "commonName")
                wrapped.sendall(b"ok")
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], subjects
    finally:
        listener.close()
        thread.join(timeout=5)


def _dial(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as wrapped,
    ):
        return wrapped.recv(2)


def test_a_certificate_for_the_dialled_address_is_accepted(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path / "ca")
    server = tls.issue_server(ca, tmp_path, "broker", ["127.0.0.1", "localhost"])
    context = kafka_clients._ssl_context(ca.cert, None, None)
    with _tls_server(server) as (port, _):
        assert _dial(port, context) == b"ok"


@pytest.mark.parametrize(
    ("issuer", "hosts"),
    [("another CA", ["127.0.0.1"]), ("the CA", ["kafka.elsewhere.example"])],
    ids=["certificate-from-another-ca", "certificate-for-another-host"],
)
def test_a_certificate_the_client_must_not_trust_is_refused(
    tmp_path: Path, issuer: str, hosts: list[str]
) -> None:
    ca = tls.ensure_ca(tmp_path / "ca")
    signer = ca if issuer == "the CA" else tls.ensure_ca(tmp_path / "other", name="someone else")
    server = tls.issue_server(signer, tmp_path, "broker", hosts)
    context = kafka_clients._ssl_context(ca.cert, None, None)
    with _tls_server(server) as (port, _), pytest.raises(ssl.SSLCertVerificationError):
        _dial(port, context)


def test_a_client_certificate_names_its_principal(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path / "ca")
    server = tls.issue_server(ca, tmp_path, "broker", ["127.0.0.1"])
    client = tls.issue_client(ca, tmp_path, "hospital-h001")
    context = kafka_clients._ssl_context(ca.cert, client.cert, client.key)
    with _tls_server(server, client_ca=ca.cert) as (port, subjects):
        assert _dial(port, context) == b"ok"
    assert subjects == ["hospital-h001"]
    # Kafka's PEM key store layout: the private key first, then the certificate.
    store = client.combined()
    key = serialization.load_pem_private_key(store, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert x509.load_pem_x509_certificate(store[len(client.key.read_bytes()) :]).subject
