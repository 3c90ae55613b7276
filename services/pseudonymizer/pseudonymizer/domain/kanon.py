"""k-anonymity on a stream: a quasi-identifier class opens once k distinct persons are in it.

A class is the combination of generalised quasi-identifiers a released record carries (see
``release.quasi_identifiers``). While a class holds fewer than k distinct persons its records wait;
the record that brings the k-th person opens the class, and every waiting record of the class is
released with it. An open class stays open (its member list is no longer needed), so the state
per class is bounded by k person ids.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

OPEN = b"open"


@dataclass(frozen=True, slots=True)
class Admission:
    state: bytes  # the class's new state value
    releasable: bool  # the class has at least k persons now
    opened: bool  # this admission opened it: release what waited


def admit(stored: bytes | None, person_id: str, k: int) -> Admission:
    if k <= 1 or stored == OPEN:
        return Admission(OPEN, True, False)
    members: list[str] = json.loads(stored) if stored else []
    if person_id not in members:
        members.append(person_id)
    if len(members) >= k:
        return Admission(OPEN, True, True)
    return Admission(json.dumps(members).encode(), False, False)


def hold_entry(held_since: float, raw: bytes) -> bytes:
    return struct.pack(">d", held_since) + raw


def read_entry(entry: bytes) -> tuple[float, bytes]:
    (held_since,) = struct.unpack_from(">d", entry)
    return held_since, entry[8:]
