"""Certificates for a local or compose deployment: one CA, server and client certificates.

Generated at start with PyCA ``cryptography`` and never committed (D30). Keys are ECDSA P-256:
a TLS handshake with them costs a fraction of RSA-2048's, and Java (the broker) and OpenSSL
(every Python client) both accept them. Private keys are written unencrypted in PKCS#8 with
mode 0600, which is what the broker's PEM key store reads; the directory is the secret.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
VALIDITY = datetime.timedelta(days=825)  # the longest leaf lifetime browsers and OpenSSL accept


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path

    def combined(self) -> bytes:
        """Key then certificate chain in one PEM, the layout of Kafka's PEM key store."""
        return self.key.read_bytes() + self.cert.read_bytes()


BROKER_KEY_STORE = "broker.pem"


def issue_broker(ca: Issued, directory: Path, hosts: list[str]) -> Path:
    """A broker certificate for ``hosts`` written as Kafka's PEM key store (key, then chain),
    ``broker.pem`` in ``directory``, mode 0600; returns its path."""
    issued = issue_server(ca, directory, "broker", hosts)
    store = directory / BROKER_KEY_STORE
    _write_private(store, issued.combined())
    return store


def ensure_ca(directory: Path, name: str = "biostream local CA") -> Issued:
    """The CA of ``directory``, created on first use (kept across restarts)."""
    directory.mkdir(parents=True, exist_ok=True)
    issued = Issued(directory / CA_CERT, directory / CA_KEY)
    if issued.cert.is_file() and issued.key.is_file():
        return issued
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(issued.key, key)
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return issued


def issue_server(ca: Issued, directory: Path, name: str, hosts: list[str]) -> Issued:
    """A server certificate for ``hosts`` (DNS names or IP addresses, all in subjectAltName:
    clients verify the host they dial against it). It may also authenticate as a client: a
    broker presents it to its peers on a listener that requires client certificates."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return _issue(
        ca,
        directory,
        name,
        name,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        x509.SubjectAlternativeName(names),
    )


def issue_client(ca: Issued, directory: Path, principal: str) -> Issued:
    """A client certificate whose subject is ``CN=<principal>``: the broker maps it to
    ``User:<principal>`` (``ssl.principal.mapping.rules``), so ACLs apply as for SCRAM."""
    return _issue(
        ca, directory, f"client-{principal}", principal, [ExtendedKeyUsageOID.CLIENT_AUTH]
    )


def _issue(
    ca: Issued,
    directory: Path,
    file_stem: str,
    common_name: str,
    usages: list[x509.ObjectIdentifier],
    alt_names: x509.SubjectAlternativeName | None = None,
) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca.key}: expected an EC private key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if alt_names is not None:
        builder = builder.add_extension(alt_names, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    issued = Issued(directory / f"{file_stem}.crt", directory / f"{file_stem}.key")
    _write_key(issued.key, key)
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return issued


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(path, data)


def _write_private(path: Path, data: bytes) -> None:
    """Replaces ``path`` with ``data``, created 0600 (never readable by others, even briefly)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
