"""Keyed one-way pseudonyms: stable inside one dataset's domain, unlinkable between domains."""

from __future__ import annotations

import base64
import hashlib
import hmac


def _mac(key: bytes, label: str, value: str) -> str:
    digest = hmac.new(key, f"{label}\x1f{value}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:26]


def pseudonym(domain_key: bytes, person_id: str) -> str:
    return "ps_" + _mac(domain_key, "person", person_id)


def curated_id(domain_key: bytes, record_id: str) -> str:
    return "cr_" + _mac(domain_key, "record", record_id)
