"""Sealing of personal data that must be kept but not read by everyone (dead letters' originals).

AES-256-GCM with a random 96-bit nonce; the associated data binds a sealed value to its record
(a sealed original moved to another dead letter does not open).
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SealError(ValueError):
    pass


class Sealer:
    def __init__(self, key: bytes) -> None:
        material = _key_bytes(key)
        self._aead = AESGCM(material)
        self.key_id = hashlib.sha256(material).hexdigest()[:16]

    def seal(self, plaintext: bytes, associated: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated.encode())

    def unseal(self, sealed: bytes, associated: str) -> bytes:
        if len(sealed) < NONCE_BYTES + 16:
            raise SealError("sealed value too short")
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated.encode()
            )
        except InvalidTag:
            raise SealError("wrong key, or the sealed value or its record was altered") from None


def _key_bytes(key: bytes) -> bytes:
    """Keys come as 64 hex digits (files, environment) or 32 raw bytes."""
    text = key.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(text) == 32:
        return text
    raise SealError("a dead-letter key is 32 bytes, written as 64 hex digits")
