"""Keyed one-way pseudonyms: stable inside one dataset's domain, unlinkable between domains.

Every value is ``HMAC-SHA256(domain key, label || value)``: without the key nobody can test a guessed
person id against a pseudonym, and two domains (two projects) with different keys give unrelated
values for the same person.
"""

from __future__ import annotations

import base64
import functools
import hmac


def _digest(key: bytes, label: str, value: str) -> bytes:
    # hmac.digest: OpenSSL's one-shot HMAC, the same value as hmac.new(...).digest() at a
    # fraction of the Python overhead (it runs several times per released record).
    return hmac.digest(key, f"{label}\x1f{value}".encode(), "sha256")


def _mac(key: bytes, label: str, value: str) -> str:
    """26 base32 characters (130 bits) of the HMAC. Base32 maps each 5 bytes to 8 characters
    independently, so encoding only the first 20 bytes gives exactly the first 32 characters of
    encoding all 32: the same value, at less cost."""
    return base64.b32encode(_digest(key, label, value)[:20]).decode().lower()[:26]


# A person's values are asked for with every record of theirs released: remembered for the most
# recent persons (pure functions of key and id, so a cache cannot change a value).
_PERSON_CACHE = 65_536


@functools.lru_cache(maxsize=_PERSON_CACHE)
def pseudonym(domain_key: bytes, person_id: str) -> str:
    """D-pseudonymizer-3: the person's pseudonym in one domain (and key version)."""
    return "ps_" + _mac(domain_key, "person", person_id)


def curated_id(domain_key: bytes, record_id: str) -> str:
    return "cr_" + _mac(domain_key, "record", record_id)


def specimen_id(domain_key: bytes, specimen_ref: str) -> str:
    """Specimen, sample and sequencing-file ids, replaced by ids of the project's domain."""
    return "sp_" + _mac(domain_key, "specimen", specimen_ref)


def notice_id(domain_key: bytes, *parts: str) -> str:
    return "nt_" + _mac(domain_key, "notice", "\x1e".join(parts))


@functools.lru_cache(maxsize=_PERSON_CACHE)
def date_offset(domain_key: bytes, person_id: str, max_days: int) -> int:
    """The person's keyed date shift in [-max_days, +max_days], the same for all their events."""
    if max_days <= 0:
        return 0
    number = int.from_bytes(_digest(domain_key, "date-shift", person_id)[:8], "big")
    return number % (2 * max_days + 1) - max_days
