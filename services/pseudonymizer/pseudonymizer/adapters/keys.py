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

from pydantic import SecretStr


class KeyMaterialError(ValueError):
    """A key that is missing, empty or too openly readable."""


class KeyStore:
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = dict(keys)

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

    def key(self, key_id: str) -> bytes:
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
