"""Pseudonym-domain keys: one file per domain and key version, or the environment.

Layout: ``<keys_dir>/<domain>.<key_version>.key`` (hex or raw bytes, one key per file), e.g.
``cohort-demo.k1.key``; flat, so that a Kubernetes secret mounts it as it is. Files must not be
readable or writable by group or others: the keys are PIPA's "additional information" and live
apart from the curated data, under their own access rights. Key values never reach a log or an
error message; only their ids (``domain/version``) do.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

# D46: the HKDF salt of keys derived from the programme's pseudonym root key.
_DERIVED_SALT = b"biostream-pseudonym-domain-v1"


class KeyMaterialError(ValueError):
    """A key that is missing, empty or too openly readable."""


class KeyStore:
    def __init__(self, keys: Mapping[str, bytes], root: bytes | None = None) -> None:
        self._keys = dict(keys)
        self._root = root

    @classmethod
    def load(cls, keys_dir: Path | None, env_keys: Mapping[str, SecretStr]) -> KeyStore:
        """D-pseudonymizer-3: one key per pseudonym domain and version, from flat
        ``<domain>.<version>.key`` files nobody else may read, or from the environment."""
        keys: dict[str, bytes] = {}
        if keys_dir is not None:
            if not keys_dir.is_dir():
                raise KeyMaterialError(f"{keys_dir}: keys directory not found")
            for path in sorted(keys_dir.glob("*.key")):
                domain, _, version = path.name.removesuffix(".key").partition(".")
                if not domain or not version:
                    raise KeyMaterialError(
                        f"{path.name}: key files are named <domain>.<version>.key"
                    )
                mode = path.stat().st_mode
                if mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise KeyMaterialError(
                        f"{path.name}: key file is accessible to group or others "
                        f"(mode {stat.filemode(mode)}); chmod 600 or mount with defaultMode 0400"
                    )
                data = path.read_bytes().strip()
                if not data:
                    raise KeyMaterialError(f"{path.name}: key file is empty")
                keys[f"{domain}/{version}"] = data
        for key_id, value in env_keys.items():
            if "/" not in key_id:
                raise KeyMaterialError(f"{key_id}: environment keys are named <domain>/<version>")
            secret = value.get_secret_value().strip().encode()
            if not secret:
                raise KeyMaterialError(f"{key_id}: key is empty")
            keys[key_id] = secret
        return cls(keys)

    def with_root(self, root: bytes | None) -> KeyStore:
        return KeyStore(self._keys, root)

    def has(self, key_id: str) -> bool:
        return key_id in self._keys or self._root is not None

    def key(self, key_id: str) -> bytes:
        """D-pseudonymizer-3: the domain key of a file or the environment; else (D46) the key
        derived for ``<domain>/<version>`` from the programme's pseudonym root key, so that a
        dataset approved at runtime has its key without a file, and a renewal naming the same
        domain and version gets the same key, hence the same pseudonyms."""
        if key_id not in self._keys and self._root is not None:
            return derived_key(self._root, key_id)
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyMaterialError(
                f"no key {key_id} (expected file <keys_dir>/{key_id.replace('/', '.')}.key "
                "or an entry in BIOSTREAM_PSEUDONYM_KEYS)"
            ) from None

    def versions(self, domain: str) -> dict[str, bytes]:
        """Every key version of a domain, current and retired (re-identification needs them)."""
        return {
            key_id.split("/", 1)[1]: key
            for key_id, key in self._keys.items()
            if key_id.split("/", 1)[0] == domain
        }


def derived_key(root: bytes, key_id: str) -> bytes:
    """D46: HKDF-SHA256 of the root key with the key id (``<domain>/<version>``) as the info:
    one independent 32-byte key per domain and version, none revealing another or the root."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_DERIVED_SALT, info=key_id.encode())
    return hkdf.derive(root)
