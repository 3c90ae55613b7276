"""Sealing of personal data that must be kept but not read by everyone (dead letters' originals,
registration numbers between ingest and linkage).

AES-256-GCM with a random 96-bit nonce; the associated data binds a sealed value to its record
(a sealed original moved to another dead letter does not open). A sealed value travels with the
id of the key that sealed it, so a key rotates (D33, ``SealingKeys``) without losing the past.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from biostream.keyring import KeyRing, KeyVersion

NONCE_BYTES = 12


class SealError(ValueError):
    pass


class SealKeyNotHeld(SealError):
    """The value names a key id none of the held versions has (retired too early, or a reader
    that has not received a new version yet: D33's "readers first")."""


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


class SealingKeys:
    """D33: every version of a sealing key. New values are sealed under the version active at
    the time of the input they come from; a sealed value opens under the key its id names."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._sealers = [(version, Sealer(version.material)) for version in ring.versions]
        self._by_id = {sealer.key_id: sealer for _version, sealer in self._sealers}

    @classmethod
    def single(cls, key: bytes, name: str = "key") -> SealingKeys:
        """One version (``k1``, from the start): tests and the single key of before."""
        return cls(KeyRing(name, [KeyVersion("k1", key)]))

    def for_input(self, timestamp_ms: int) -> Sealer:
        active = self.ring.active_at(timestamp_ms)
        return next(sealer for version, sealer in self._sealers if version is active)

    def unseal(self, sealed: bytes, associated: str, key_id: str | None) -> bytes:
        """Open under the key ``key_id`` names; a value without a key id (none written since
        D12) is tried under each version, which AES-GCM's tag makes safe."""
        if key_id is not None:
            sealer = self._by_id.get(key_id)
            if sealer is None:
                raise SealKeyNotHeld(
                    f"sealed under {self.ring.name} key id {key_id}, which is not held "
                    "(retired too early, or a key of another deployment)"
                )
            return sealer.unseal(sealed, associated)
        for _version, sealer in self._sealers:
            try:
                return sealer.unseal(sealed, associated)
            except SealError:
                continue
        raise SealError("no held key opens the sealed value, or it or its record was altered")


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
    raise SealError("a sealing key is 32 bytes, written as 64 hex digits")
