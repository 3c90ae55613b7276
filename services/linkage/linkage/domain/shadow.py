"""Shadow re-linkage (D41): the same identity records, in the same order, linked by two fresh
person indexes under two parameter sets, and what would change between them, as counts and
outcome codes only (no ref, no person id, no value leaves here).

Pure: the caller reads the records (in topic order) and makes their profiles the way the service
does; person ids are irrelevant to the comparison (groupings are compared, not ids), so both
replays mint them under one fixed key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

from linkage.domain.index import PersonIndex
from linkage.domain.profile import Profile
from linkage.domain.weights import Params

_REPLAY_ID_KEY = b"biostream-linkage-shadow"


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One identity record as the handler hands it to the index."""

    ref: str
    profile: Profile
    meta: list[str]
    previous: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replay:
    outcomes: list[str]  # per record, in replay order (NEW_PERSON, MATCH, POSSIBLE_MATCH, ...)
    clusters: dict[str, str]  # patient ref -> person, after the last record


def replay(records: Sequence[ReplayRecord], params: Params) -> Replay:
    """D41: the records linked one at a time, in order, by a fresh index under ``params``."""
    index = PersonIndex(params, _REPLAY_ID_KEY)
    outcomes = [index.link(r.ref, r.profile, list(r.meta), r.previous).outcome for r in records]
    return Replay(outcomes, index.clusters())


@dataclass(frozen=True)
class ShadowDiff:
    records: int
    patients: int
    persons_before: int
    persons_after: int
    patients_regrouped: int  # patients whose set of fellow patients differs
    pairs_linked: int  # patient pairs together only after
    pairs_unlinked: int  # patient pairs together only before
    outcomes_changed: int
    outcomes_before: dict[str, int]
    outcomes_after: dict[str, int]
    transitions: dict[str, int]  # "BEFORE>AFTER" -> records

    @property
    def decisions_changed(self) -> bool:
        return bool(self.patients_regrouped or self.outcomes_changed)


def _pairs(sizes: Counter[Any]) -> int:
    return sum(comb(n, 2) for n in sizes.values())


def shadow_diff(before: Replay, after: Replay) -> ShadowDiff:
    """D41: what linking under ``after``'s parameters would change against ``before``'s: per
    record, the outcome moved (and between which outcomes); per patient, whether its person
    (the set of patients it is grouped with) differs; patient pairs newly together or apart;
    persons before and after. Pair counts come from the contingency of the two groupings
    (pairs in both = pairs within each intersection), so they cost one pass, not n²."""
    if (
        len(before.outcomes) != len(after.outcomes)
        or before.clusters.keys() != after.clusters.keys()
    ):
        raise ValueError("the two replays did not link the same records")
    size_before = Counter(before.clusters.values())
    size_after = Counter(after.clusters.values())
    both = Counter((before.clusters[ref], after.clusters[ref]) for ref in before.clusters)
    regrouped = sum(
        1
        for ref, a in before.clusters.items()
        if (n := both[(a, b := after.clusters[ref])]) != size_before[a] or n != size_after[b]
    )
    pairs_both = _pairs(both)
    transitions = Counter(
        f"{a}>{b}" for a, b in zip(before.outcomes, after.outcomes, strict=True) if a != b
    )
    return ShadowDiff(
        records=len(before.outcomes),
        patients=len(before.clusters),
        persons_before=len(size_before),
        persons_after=len(size_after),
        patients_regrouped=regrouped,
        pairs_linked=_pairs(size_after) - pairs_both,
        pairs_unlinked=_pairs(size_before) - pairs_both,
        outcomes_changed=sum(transitions.values()),
        outcomes_before=dict(sorted(Counter(before.outcomes).items())),
        outcomes_after=dict(sorted(Counter(after.outcomes).items())),
        transitions=dict(sorted(transitions.items())),
    )
