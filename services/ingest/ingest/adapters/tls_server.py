"""TLS for ingest's own listeners (MLLP, D37; FHIR REST, D38), as D30 for Kafka: TLS 1.2 or
newer with the listener's certificate; with a client CA, a client certificate is required.
Plain TCP only by an explicit development setting."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID


class PlaintextListenerRefused(ValueError):
    pass


def server_tls(
    certfile: Path | None,
    keyfile: Path | None,
    client_cafile: Path | None,
    allow_plaintext: bool,
    setting_prefix: str,
) -> ssl.SSLContext | None:
    if certfile is None or keyfile is None:
        if allow_plaintext:
            return None
        raise PlaintextListenerRefused(
            f"a listener over plain TCP is refused: set {setting_prefix}_CERTFILE and "
            f"{setting_prefix}_KEYFILE, or {setting_prefix}_ALLOW_PLAINTEXT=true for development"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if client_cafile is not None:
        context.load_verify_locations(client_cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def certificate_common_name(ssl_object: object) -> str | None:
    """The CN of the client certificate a TLS connection presented, if any."""
    if not isinstance(ssl_object, (ssl.SSLObject, ssl.SSLSocket)):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
