"""Versioned linkage parameters (D41): which version is active, which may be activated, and the
number of the next one. Pure: the versions are the newest record of each on ``linkage.params``.

A version is PROPOSED (trained), SHADOWED (a shadow re-linkage report is attached), ACTIVE (the
one the service applies) or RETIRED (was active, replaced). A steward activates a version only
with a report that compared it with the version active now: a report against another baseline
says nothing about what switching from today's parameters would change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

PROPOSED: Final = "PROPOSED"
SHADOWED: Final = "SHADOWED"
ACTIVE: Final = "ACTIVE"
RETIRED: Final = "RETIRED"


@dataclass(frozen=True, slots=True)
class VersionState:
    """What the rules need of one version's newest record."""

    version: int
    state: str
    shadow_baseline: int | None  # the version the attached report compared against
    shadowed: bool  # a report is attached


def newest_by_version(records: Iterable[Mapping[str, object]]) -> dict[int, Mapping[str, object]]:
    """The newest record of each version, in topic order (what compaction keeps)."""
    out: dict[int, Mapping[str, object]] = {}
    for record in records:
        version = record["version"]
        assert isinstance(version, int)
        out[version] = record
    return out


def active_version(versions: Iterable[VersionState]) -> int | None:
    """D41: the version linkage applies: the one ACTIVE (None: no version was ever activated,
    the service's parameter file or built-in defaults apply). Activation retires the version
    before it in the same transaction, so there is at most one; were there more, the highest
    number counts, as it was activated last."""
    active = [v.version for v in versions if v.state == ACTIVE]
    return max(active) if active else None


def next_version(versions: Iterable[VersionState]) -> int:
    """D41: one more than the highest version number written (1 for the first)."""
    return max((v.version for v in versions), default=0) + 1


def activation_refusal(versions: Sequence[VersionState], version: int) -> str | None:
    """D41: why ``version`` may not be activated now, or None when it may: it must exist, not be
    active already, and carry a shadow report made against the version active now."""
    by_number = {v.version: v for v in versions}
    wanted = by_number.get(version)
    if wanted is None:
        return f"no parameter version {version}"
    if wanted.state == ACTIVE:
        return f"version {version} is already active"
    if not wanted.shadowed:
        return f"version {version} has no shadow report: run `linkage shadow --version {version}`"
    current = active_version(versions)
    if wanted.shadow_baseline != current:
        return (
            f"version {version} was shadowed against {_name(wanted.shadow_baseline)}, but "
            f"{_name(current)} is active now: shadow it again"
        )
    return None


def shadow_refusal(versions: Sequence[VersionState], version: int) -> str | None:
    """D41: why ``version`` cannot be shadowed: unknown, or the active one itself."""
    by_number = {v.version: v for v in versions}
    wanted = by_number.get(version)
    if wanted is None:
        return f"no parameter version {version}"
    if wanted.state == ACTIVE:
        return f"version {version} is the active one"
    return None


def _name(version: int | None) -> str:
    return "the parameter file or defaults" if version is None else f"version {version}"


def sample_digest(positions: Iterable[tuple[int, int, str]]) -> str:
    """D41: SHA-256 over (partition, offset, record id) of every record a version was trained
    or shadowed on: names the sample exactly (Kafka never rewrites an offset) and holds none
    of its content."""
    digest = hashlib.sha256()
    for partition, offset, record_id in positions:
        digest.update(f"{partition}\x1f{offset}\x1f{record_id}\x1e".encode())
    return digest.hexdigest()


def params_digest(params_json: str) -> str:
    """SHA-256 (hex) of a version's parameters JSON: checked before it is applied."""
    return hashlib.sha256(params_json.encode()).hexdigest()
