"""OMOP needs integer ids; the dataset only has strings (pseudonyms, curated ids).

An id is the first 8 bytes of SHA-256 over a label and the string, as a big-endian integer with
the top bit cleared: a positive BIGINT, the same on every run and every site, with no table to
keep. A collision needs about 2^31 persons to become likely (birthday bound n^2 / 2^64); the
export checks for one anyway and refuses to write ambiguous ids.
"""

from __future__ import annotations

import hashlib

MAX_ID = (1 << 63) - 1


def omop_id(label: str, value: str) -> int:
    digest = hashlib.sha256(f"{label}\x00{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_ID


def person_id(pseudonym: str) -> int:
    return omop_id("person", pseudonym)


def record_id(curated_id: str) -> int:
    """Occurrence / measurement / exposure / specimen id of one curated record."""
    return omop_id("record", curated_id)
