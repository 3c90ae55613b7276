"""The board's visa key: signs GA4GH visas (EdDSA, Ed25519, with PyJWT) and publishes its public
key as a JWKS document (D47). The private key is read once from its file or variable and never
logged or shown; the key id is the RFC 7638 thumbprint of the public key."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from access.adapters.stream import CommandDesk
from access.domain.application import Application, VisaIssued
from access.domain.visas import visa_claims
from access.handlers import Decided, read_command

ALGORITHM = "EdDSA"
# GA4GH AAI v1.2's media type of a visa JWT.
VISA_MEDIA_TYPE = "vnd.ga4gh.visa+jwt"
JWKS_PATH = "/.well-known/jwks.json"


class VisaKeyError(ValueError):
    """An unusable visa key or issuer (never quoting the key)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class VisaSigner:
    private_key: Ed25519PrivateKey
    issuer: str
    board_url: str

    @classmethod
    def from_pem(cls, pem: bytes, issuer: str | None, board_url: str | None) -> VisaSigner:
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise VisaKeyError("visa_key: not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise VisaKeyError("visa_key: not an Ed25519 key")
        if not issuer or not issuer.startswith("https://"):
            raise VisaKeyError("visa_issuer: the access service's https:// URL is required")
        if not board_url:
            raise VisaKeyError("the board file names no url: the visas' source")
        return cls(key, issuer.rstrip("/"), board_url)

    @property
    def public_x(self) -> str:
        return _b64(self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def key_id(self) -> str:
        """RFC 7638: the SHA-256 of the public JWK's required members, in order."""
        members = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": self.public_x}, separators=(",", ":")
        )
        return _b64(hashlib.sha256(members.encode()).digest())

    @property
    def jwks_url(self) -> str:
        return self.issuer + JWKS_PATH

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (what a Passport Clearinghouse verifies with)."""
        return {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": self.public_x, "kid": self.key_id,
                 "alg": ALGORITHM, "use": "sig"}
            ]
        }  # fmt: skip

    def token(self, application: Application, issued: VisaIssued) -> str:
        """D47: the signed visa ``issued`` records (a Visa Document Token: ``jku`` names the
        JWKS, ``kid`` the key in it)."""
        return jwt.encode(
            visa_claims(application, issued, self.issuer, self.board_url),
            self.private_key,
            algorithm=ALGORITHM,
            headers={"typ": VISA_MEDIA_TYPE, "kid": self.key_id, "jku": self.jwks_url},
        )


async def issue_visa(
    desk: CommandDesk, signer: VisaSigner, application_id: str, account: str, now: dt.datetime
) -> tuple[Decided, str | None]:
    """D47: the ``visa_issued`` event and its audit event committed first (so no visa exists
    that the ledger does not know), then the token signed; a refusal signs nothing."""
    command = read_command("visa", account, {})
    decided = await desk.run(lambda h: h.decide(application_id, command, now))
    if decided.refusal is not None:
        return decided, None
    issued = decided.events[0]
    assert isinstance(issued, VisaIssued)
    return decided, signer.token(desk.handler.applications[application_id], issued)
