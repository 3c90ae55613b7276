"""Signed checkpoints of the ledger: size, Merkle root and chain tip, signed with Ed25519.

A checkpoint states "the ledger had ``size`` entries, whose RFC 6962 root is ``root_hash`` and
whose last entry hash is ``tip_hash``". Anyone holding the public key can check it; a verifier
that has seen a checkpoint detects a ledger cut below its size, and any change to the first
``size`` entries (the root would differ).

Signed bytes: b"biostream-checkpoint-v1" || size (8 bytes BE) || root_hash || tip_hash ||
checkpoint_at in epoch milliseconds (8 bytes BE) || key_id (UTF-8). The key id is the first 16
hex digits of SHA-256 of the raw 32-byte public key.

Time is an argument, never read here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from biostream.contracts import LedgerCheckpoint
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

DOMAIN = b"biostream-checkpoint-v1"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_hex(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    raw = bytes.fromhex(text.strip())
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes (64 hex digits)")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """The public key as a PEM SubjectPublicKeyInfo (what `audit export` writes beside an export,
    D23b; OpenSSL and every Ed25519 library read it)."""
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """A published public key: PEM (``-----BEGIN PUBLIC KEY-----``) or 64 hex digits."""
    if "-----BEGIN" in text:
        key = load_pem_public_key(text.strip().encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    return public_key_from_hex(text)


def private_key_from_secret(secret: bytes) -> Ed25519PrivateKey:
    """The secret is the 32-byte Ed25519 seed, as 64 hex digits (how every key here is stored)."""
    seed = bytes.fromhex(secret.decode("ascii").strip())
    if len(seed) != 32:
        raise ValueError("the ledger signing key must be 32 bytes (64 hex digits)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _millis(moment: dt.datetime) -> int:
    # timestamp-millis on the wire: sign exactly what a reader gets back.
    return int(moment.timestamp() * 1000)


def signed_bytes(
    size: int, root_hash: bytes, tip_hash: bytes, checkpoint_at: dt.datetime, key_id: str
) -> bytes:
    return (
        DOMAIN
        + size.to_bytes(8, "big")
        + root_hash
        + tip_hash
        + _millis(checkpoint_at).to_bytes(8, "big", signed=True)
        + key_id.encode()
    )


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def checkpoint(
        self, size: int, root_hash: bytes, tip_hash: bytes, now: dt.datetime
    ) -> LedgerCheckpoint:
        """D-audit-1: the signed checkpoint of the ledger's root and tip at ``size``; its time
        truncated to milliseconds before signing, so what is signed is what ``timestamp-millis``
        carries."""
        at = dt.datetime.fromtimestamp(_millis(now) / 1000, dt.UTC)
        key_id = self.key_id
        signature = self.private_key.sign(signed_bytes(size, root_hash, tip_hash, at, key_id))
        return {
            "size": size,
            "root_hash": root_hash,
            "tip_hash": tip_hash,
            "checkpoint_at": at,
            "key_id": key_id,
            "signature": signature,
            "handover": None,
        }


def check_signature(checkpoint: LedgerCheckpoint, public_key: Ed25519PublicKey) -> str | None:
    """None when the checkpoint was signed by this key; else what is wrong."""
    if checkpoint["key_id"] != key_id_of(public_key):
        return f"checkpoint at size {checkpoint['size']} names key {checkpoint['key_id']}, not the trusted key"
    message = signed_bytes(
        checkpoint["size"],
        checkpoint["root_hash"],
        checkpoint["tip_hash"],
        checkpoint["checkpoint_at"],
        checkpoint["key_id"],
    )
    try:
        public_key.verify(checkpoint["signature"], message)
    except InvalidSignature:
        return f"checkpoint at size {checkpoint['size']} has an invalid signature"
    return None
