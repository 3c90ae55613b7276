"""D33: versioned keys with an activation time (patient-ref, person, RRN and dead-letter keys).

A key is a set of versions ``k1``, ``k2``, ...; each has its material and the time from which it is
used for new data. Old versions stay for reading (a sealed value names its key id) and for
recognising what was derived under them (a patient reference made before a rotation). Which
version applies is decided from the time of the input record being handled, never the clock, so
that every instance of a service, and a replay of the same input, make the same choice.

Files (``biostream.keyfiles``): ``<keys_dir>/<name>.k<N>.key`` (hex or raw bytes, one key per file; not readable by group
or others) and, optionally, ``<name>.k<N>.activates`` holding an RFC 3339 time with its zone
(``2027-01-01T00:00:00+09:00``). Without one a version applies from the start; a staged rotation
gives the new version a future time, so that every reader holds it before any writer uses it.
Flat, so that a Kubernetes secret mounts as it is. The single key of before (``<NAME>_KEY[_FILE]``)
is ``k1``, from the start. Key values never reach a log or an error message; versions and key ids
do.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

# The keys that rotate under D33, by the name their files carry.
PATIENT_REF_KEY = "patient-ref"  # ingest: hospital patient number -> patient reference (D4)
PERSON_KEY = "person"  # linkage: person ids and registration-number hashes (D-linkage-1)
RRN_KEY = "rrn"  # ingest seals, linkage opens the registration number
DEAD_LETTER_KEY = "dead-letter"  # every service seals dead letters' original bytes (D12)

_VERSION = re.compile(r"k([1-9][0-9]{0,5})")


class KeyRingError(ValueError):
    """A key set that is missing, badly named, too openly readable or inconsistent."""


@dataclass(frozen=True)
class KeyVersion:
    version: str
    material: bytes
    # Epoch milliseconds from which this version is used for new data; 0 = from the start.
    activates_at_ms: int = 0

    @property
    def number(self) -> int:
        return version_number(self.version)


def version_number(version: str) -> int:
    match = _VERSION.fullmatch(version)
    if match is None:
        raise KeyRingError(f"{version!r}: key versions are k1, k2, ...")
    return int(match.group(1))


class KeyRing:
    """Every version of one key, oldest first."""

    def __init__(self, name: str, versions: Iterable[KeyVersion]) -> None:
        self.name = name
        self.versions = tuple(sorted(versions, key=lambda v: v.number))
        check_versions(name, self.versions)

    def active_at(self, timestamp_ms: int) -> KeyVersion:
        return active_version(self.versions, timestamp_ms)

    def in_use_at(self, timestamp_ms: int) -> tuple[KeyVersion, ...]:
        """D33: the version in force for an input of this time and every older one held, newest
        first: what new data is derived under (the first) and what data derived before a
        rotation is recognised by (the rest). Versions not in force yet are not used."""
        active = self.active_at(timestamp_ms)
        return tuple(v for v in reversed(self.versions) if v.number <= active.number)

    def version(self, version: str) -> KeyVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    @property
    def newest(self) -> KeyVersion:
        return self.versions[-1]


def check_versions(name: str, versions: tuple[KeyVersion, ...]) -> None:
    """D33: at least one version, each named once, activation times rising with the version
    number (a later version never applies before an earlier one: the choice stays monotonic)."""
    if not versions:
        raise KeyRingError(f"{name}: no key version")
    numbers = [v.number for v in versions]
    if len(set(numbers)) != len(numbers):
        raise KeyRingError(f"{name}: a key version is given twice")
    for earlier, later in itertools.pairwise(versions):
        if later.activates_at_ms < earlier.activates_at_ms:
            raise KeyRingError(
                f"{name}: {later.version} activates before {earlier.version}; "
                "activation times must rise with the version"
            )


def active_version(versions: tuple[KeyVersion, ...], timestamp_ms: int) -> KeyVersion:
    """D33: the version used for new data derived from an input of time ``timestamp_ms``: the
    highest-numbered version whose activation time has come; before the first activation, the
    first version (data older than every key is still handled, under the oldest)."""
    active = versions[0]
    for candidate in versions[1:]:
        if candidate.activates_at_ms <= timestamp_ms:
            active = candidate
    return active
