"""Keyed one-way pseudonyms: stable inside one dataset's domain, unlinkable between domains.

Every value is ``HMAC-SHA256(domain key, label || value)``: without the key nobody can test a guessed
person id against a pseudonym, and two domains (two projects) with different keys give unrelated
values for the same person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _digest(key: bytes, label: str, value: str) -> bytes:
    return hmac.new(key, f"{label}\x1f{value}".encode(), hashlib.sha256).digest()


def _mac(key: bytes, label: str, value: str) -> str:
    return base64.b32encode(_digest(key, label, value)).decode().rstrip("=").lower()[:26]


def pseudonym(domain_key: bytes, person_id: str) -> str:
    return "ps_" + _mac(domain_key, "person", person_id)


def curated_id(domain_key: bytes, record_id: str) -> str:
    return "cr_" + _mac(domain_key, "record", record_id)


def specimen_id(domain_key: bytes, specimen_ref: str) -> str:
    """Specimen, sample and sequencing-file ids, replaced by ids of the project's domain."""
    return "sp_" + _mac(domain_key, "specimen", specimen_ref)


def notice_id(domain_key: bytes, *parts: str) -> str:
    return "nt_" + _mac(domain_key, "notice", "\x1e".join(parts))


def date_offset(domain_key: bytes, person_id: str, max_days: int) -> int:
    """The person's keyed date shift in [-max_days, +max_days], the same for all their events."""
    if max_days <= 0:
        return 0
    number = int.from_bytes(_digest(domain_key, "date-shift", person_id)[:8], "big")
    return number % (2 * max_days + 1) - max_days
