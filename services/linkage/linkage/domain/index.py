"""The master person index: streaming Fellegi-Sunter linkage with merges, splits and reviews.

Units:
* a *ref* is one hospital patient (``patient_ref``; in ``linkage evaluate`` one input record). The
  index holds the ref's latest profile and the person it belongs to;
* a *person* is a cluster of refs, with an id allocated deterministically (a keyed hash of the ref
  that created it and that ref's decision sequence) and a creation number (older = smaller).

Every call returns the :class:`Change` list it caused, one per ref whose person changed, so the
caller can publish updated decisions. The in-memory blocking index is derived from the refs and is
rebuilt on restore; only refs, persons and the counter are durable (``dirty`` tells which).
Pure: no I/O, no clock, no randomness. Same calls in the same order give the same ids.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from linkage.domain.comparison import FIELDS, LEVELS, Levels, compare
from linkage.domain.profile import Profile, blocking_keys
from linkage.domain.rotation import ROTATION_RULE, known_predecessors
from linkage.domain.rules import (
    apply_rules,
    may_bridge,
    persons_may_merge,
    record_may_join,
)
from linkage.domain.weights import Params

MAX_BLOCK: Final = 500  # a block larger than this (a hospital's switchboard phone) is not used
MAX_CANDIDATES_LISTED: Final = 5
# Two matched persons that may not be merged, scoring within this many bits (a factor of 4 in
# likelihood) of each other: the record is ambiguous (``_ambiguous``).
AMBIGUITY_MARGIN: Final = 2.0

NEW_PERSON: Final = "NEW_PERSON"
MATCH: Final = "MATCH"
POSSIBLE_MATCH: Final = "POSSIBLE_MATCH"
MERGED: Final = "MERGED"
SPLIT: Final = "SPLIT"
REVIEWED: Final = "REVIEWED"


@dataclass(slots=True)
class RefEntry:
    person: str
    sequence: int  # decision counter of this ref: the newest decision wins downstream
    profile: Profile
    meta: list[str]  # caller's data (record id, hospital, province ...), opaque here


@dataclass(slots=True)
class PersonEntry:
    order: int  # creation number: the smaller survives a merge
    refs: list[str]


@dataclass(frozen=True, slots=True)
class Change:
    ref: str
    person: str
    previous: str | None
    outcome: str
    sequence: int
    score: float
    rule: str


@dataclass(frozen=True, slots=True)
class Candidate:
    person: str
    score: float
    levels: Levels = ()


# Comparison levels as codes for reviewers (never values): FAMILY_SAME, BIRTH_NEAR ...
_LEVEL_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "family": ("DIFFERENT", "SIMILAR", "SAME"),
    "given": ("DIFFERENT", "WEAK", "CLOSE", "SAME"),
    "latin": ("DIFFERENT", "SIMILAR", "SAME"),
    "birth": ("DIFFERENT", "NEAR", "SAME"),
    "sex": ("DIFFERENT", "SAME"),
    "rrn": ("DIFFERENT", "SAME"),
    "ids": ("DIFFERENT", "NEAR", "SAME"),
    "phone": ("DIFFERENT", "SAME"),
    "address": ("DIFFERENT", "WEAK", "PARTIAL", "SAME"),
}


def reason_codes(levels: Levels) -> str:
    return ",".join(
        f"{FIELDS[i].upper()}_{_LEVEL_NAMES[FIELDS[i]][level]}"
        for i, level in enumerate(levels)
        if level is not None
    )


def comparisons(params: Params, profile: Profile, levels: Levels) -> list[tuple[str, str, float]]:
    """(field, level code, match weight) of each compared field, as ``Params.score`` adds them:
    what a reviewer sees next to the two records. Codes and weights only, never values."""
    out: list[tuple[str, str, float]] = []
    for index, level in enumerate(levels):
        if level is None:
            continue
        name = FIELDS[index]
        weight = params.weights[name][level]
        if level == LEVELS[name] - 1 and name in ("family", "given"):
            value = profile.family if name == "family" else profile.given
            share = params.tf.get(name, {}).get(value or "")
            if share is not None:
                weight = math.log2(max(params.m[name][level], 1e-6) / max(share, 1e-6))
        out.append((name, _LEVEL_NAMES[name][level], weight))
    return out


@dataclass(frozen=True, slots=True)
class LinkResult:
    outcome: str  # NEW_PERSON / MATCH / POSSIBLE_MATCH / UNCHANGED
    person: str
    score: float
    rule: str
    candidates: tuple[Candidate, ...]  # for a possible match: persons a reviewer should compare
    changes: tuple[Change, ...]
    reason: str = ""  # comparison codes of the best candidate


@dataclass
class Dirty:
    refs: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)  # set or re-pointed

    def clear(self) -> None:
        self.refs.clear()
        self.persons.clear()
        self.aliases.clear()


class PersonIndex:
    """The person index (D-linkage-2): a possible match is a person of its own until reviewed,
    person ids are keyed hashes allocated in input order; a strong registration number already in
    the index links deterministically (rule ``rrn-exact``, D-linkage-1)."""

    def __init__(self, params: Params, id_key: bytes) -> None:
        self.params = params
        # The person-key version persons are minted under: the handler sets the one in force at
        # each input's time (D33); ids minted before keep theirs.
        self.id_key = id_key
        self.refs: dict[str, RefEntry] = {}
        self.persons: dict[str, PersonEntry] = {}
        self.counter = 0
        self.blocks: dict[str, list[str]] = {}
        self.aliases: dict[str, str] = {}  # ref merged by its hospital before it was seen
        self.dirty = Dirty()

    # ---------------------------------------------------------------------------------- restore

    def load(
        self,
        refs: Iterable[tuple[str, RefEntry]],
        persons: Iterable[tuple[str, PersonEntry]],
        counter: int,
        aliases: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Rebuild from durable state; the blocking index is derived here."""
        self.refs.clear()
        self.persons.clear()
        self.blocks.clear()
        self.aliases = dict(aliases)
        for pid, person in persons:
            self.persons[pid] = person
        for ref, entry in refs:
            self.refs[ref] = entry
            self._index(ref, entry.profile)
        self.counter = counter
        self.dirty.clear()

    # ---------------------------------------------------------------------------------- linking

    def link(
        self, ref: str, profile: Profile, meta: list[str], previous: Sequence[str] = ()
    ) -> LinkResult:
        """Link one record of ``ref`` (a new or an already known hospital patient); ``previous``:
        the same patient's refs under older patient-ref key versions, newest first (D33).
        D43: a match that refused to merge another matched person lists it in ``candidates``,
        for the handler's review task."""
        entry = self.refs.get(ref)
        if entry is not None:
            return self._relink(ref, entry, profile, meta)
        alias = self.aliases.pop(ref, None)
        target = self._resolve_alias(alias) if alias is not None else None
        predecessors = known_predecessors(previous, self._resolve_alias)
        if predecessors:
            return self._continue(ref, profile, meta, predecessors, target)
        if target is not None:
            person = self.refs[target].person
            self._attach(ref, profile, meta, person)
            change = self._decide(ref, person, None, MATCH, 0.0, "hospital-merge")
            return LinkResult(MATCH, person, 0.0, "hospital-merge", (), (change,))
        deterministic = self._rrn_persons(profile)
        if deterministic:
            person, merges = self._merge_all(deterministic, "rrn-exact")
            self._attach(ref, profile, meta, person)
            change = self._decide(ref, person, None, MATCH, 0.0, "rrn-exact")
            return LinkResult(MATCH, person, 0.0, "rrn-exact", (), (change, *merges))
        ranked = self.candidates(profile, exclude=None)
        thresholds = self.params.thresholds
        matches = [c for c in ranked if c.score >= thresholds.match and self._may_join(profile, c)]
        refused = self._refused_bridges(profile, matches)
        if matches and not self._ambiguous(matches[0], refused):
            # The record joins the best person; other persons it matches as well are merged in
            # (a bridging record) unless their records say they are different people (D39) or
            # the record may not bridge (D44). A refused bridge is put to a reviewer (D43).
            best = matches[0]
            bridged = [best.person] + [c.person for c in matches[1:] if c not in refused]
            person, merges = self._merge_all(bridged, "fellegi-sunter")
            self._attach(ref, profile, meta, person)
            change = self._decide(ref, person, None, MATCH, best.score, "fellegi-sunter")
            listed = tuple(refused[:MAX_CANDIDATES_LISTED])
            return LinkResult(
                MATCH, person, best.score, "fellegi-sunter", listed, (change, *merges),
                reason_codes(listed[0].levels) if listed else "",
            )  # fmt: skip
        reviews = tuple(c for c in ranked if c.score >= thresholds.review)[:MAX_CANDIDATES_LISTED]
        # A possible match stays its own person until a reviewer says otherwise: merging two
        # people's data wrongly is worse than linking them late.
        person = self._new_person(ref, 0)
        self._attach(ref, profile, meta, person)
        outcome = POSSIBLE_MATCH if reviews else NEW_PERSON
        score = reviews[0].score if reviews else 0.0
        change = self._decide(ref, person, None, outcome, score, "fellegi-sunter")
        reason = reason_codes(reviews[0].levels) if reviews else ""
        return LinkResult(outcome, person, score, "fellegi-sunter", reviews, (change,), reason)

    def _relink(self, ref: str, entry: RefEntry, profile: Profile, meta: list[str]) -> LinkResult:
        # The hospital says it is the same patient: the ref stays with its person. Its new details
        # may bridge to another person, who is then merged in.
        self._unindex(ref, entry.profile)
        entry.profile = profile
        entry.meta = meta
        self._index(ref, profile)
        self.dirty.refs.add(ref)
        person = entry.person
        others = self._bridged(person, profile)
        if not others:
            return LinkResult("UNCHANGED", person, 0.0, "same-patient", (), ())
        survivor, merges = self._merge_all([person, *others], "bridging-record")
        return LinkResult(MATCH, survivor, 0.0, "bridging-record", (), merges)

    def _bridged(self, person: str, profile: Profile) -> list[str]:
        """Other persons a known patient's new details match: the record bridges them."""
        if profile.rrn is not None and profile.rrn_strong:
            others = [p for p in self._rrn_persons(profile) if p != person]
        else:
            others = [
                c.person
                for c in self.candidates(profile, exclude=person)
                if c.score >= self.params.thresholds.match
            ]
        return [p for p in others if self._compatible(person, p)]

    def _continue(
        self,
        ref: str,
        profile: Profile,
        meta: list[str],
        predecessors: list[str],
        alias_target: str | None,
    ) -> LinkResult:
        """D33: a new ref of a hospital patient the index knows under an older ref (the
        patient-ref key rotated) continues that source record: it joins the person without any
        comparison, as a record of the known ref would (D-linkage-2's ``_relink``), and gets a
        decision of its own so the pseudonymizer learns the new ref. The older ref stays in the
        index: records still sent under it, and corrections of what was released under it
        (a later merge or split moves every ref of the person), keep working. Older refs in
        several persons (or a hospital merge's alias besides) are one patient by the hospital's
        own numbers: their persons are merged. New details may bridge to other persons, as for
        a known ref."""
        persons = [self.refs[known].person for known in predecessors]
        if alias_target is not None:
            persons.append(self.refs[alias_target].person)
        person, merged = self._merge_all(persons, ROTATION_RULE)
        self._attach(ref, profile, meta, person)
        change = self._decide(ref, person, None, MATCH, 0.0, ROTATION_RULE)
        others = self._bridged(person, profile)
        bridged: tuple[Change, ...] = ()
        if others:
            person, bridged = self._merge_all([person, *others], "bridging-record")
        return LinkResult(MATCH, person, 0.0, ROTATION_RULE, (), (*merged, change, *bridged))

    def _compatible(self, a: str, b: str) -> bool:
        """Whether persons ``a`` and ``b`` may be merged automatically (``persons_may_merge``)."""
        return persons_may_merge(self._profiles(a), self._profiles(b), self.params)

    def _profiles(self, person: str) -> list[Profile]:
        return [self.refs[r].profile for r in self.persons[person].refs]

    def _may_join(self, profile: Profile, candidate: Candidate) -> bool:
        """D43: whether a record may join a matched person (``record_may_join``)."""
        return record_may_join(
            self.params, profile, self._profiles(candidate.person), candidate.levels
        )

    def _may_bridge(self, profile: Profile, person: str) -> bool:
        return may_bridge(profile, self._profiles(person))

    def _refused_bridges(self, profile: Profile, matches: list[Candidate]) -> list[Candidate]:
        """The matched persons after the best that the record may not merge into it: their
        records say they are different people (D39, D43), or the record may not bridge (D44)."""
        if not matches:
            return []
        best = matches[0].person
        return [
            c
            for c in matches[1:]
            if not (self._may_bridge(profile, c.person) and self._compatible(best, c.person))
        ]

    def _ambiguous(self, best: Candidate, refused: list[Candidate]) -> bool:
        """D43: the record matches two persons that may not be merged, about equally well (a
        newborn alias against twins, a romanised name shared by two relatives): a reviewer
        decides which, the record does not join either."""
        return any(c.score >= best.score - AMBIGUITY_MARGIN for c in refused)

    def _rrn_persons(self, profile: Profile) -> list[str]:
        if profile.rrn is None or not profile.rrn_strong:
            return []
        found: list[str] = []
        for hashed in profile.rrn.split(","):
            for other in self.blocks.get("r" + hashed, ()):
                entry = self.refs[other]
                if entry.profile.rrn_strong and entry.person not in found:
                    found.append(entry.person)
        return found

    def candidates(self, profile: Profile, exclude: str | None) -> list[Candidate]:
        """D-linkage-6: the persons ``profile`` could be, best score first: the refs sharing one of
        its blocking keys (no block over ``MAX_BLOCK``), dropped before any comparison when even
        their upper bound is below the review threshold, then compared and scored with the rules
        (the best ref per person)."""
        seen: set[str] = set()
        best: dict[str, Candidate] = {}
        params = self.params
        floor = params.thresholds.review
        for key in blocking_keys(profile):
            members = self.blocks.get(key)
            if not members or len(members) > MAX_BLOCK:
                continue
            for other in members:
                if other in seen:
                    continue
                seen.add(other)
                entry = self.refs[other]
                if entry.person == exclude or params.upper_bound(profile, entry.profile) < floor:
                    # Below the review threshold whatever the string distances: such a candidate
                    # cannot change the outcome or the review list.
                    continue
                levels = compare(profile, entry.profile)
                score = apply_rules(
                    params, profile, entry.profile, levels,
                    params.score(profile, entry.profile, levels),
                )  # fmt: skip
                current = best.get(entry.person)
                if current is None or score > current.score:
                    best[entry.person] = Candidate(entry.person, score, levels)
        ranked = list(best.values())
        ranked.sort(key=lambda c: (-c.score, self.persons[c.person].order))
        return ranked

    # ---------------------------------------------------------------------- merges and splits

    def merge_refs(
        self,
        surviving_ref: str,
        retired_ref: str,
        rule: str,
        surviving_previous: Sequence[str] = (),
        retired_previous: Sequence[str] = (),
    ) -> list[Change]:
        """Two refs are one person (a hospital merge, a reviewer): merge their persons. D33: each
        side is found by its ref, else by its refs under older patient-ref key versions."""
        a = self._resolve_side(surviving_ref, surviving_previous)
        b = self._resolve_side(retired_ref, retired_previous)
        if a is None and b is None:
            self.aliases[retired_ref] = surviving_ref
            self.dirty.aliases.add(retired_ref)
            return []
        if a is None or b is None:
            known, unknown = (b, surviving_ref) if a is None else (a, retired_ref)
            assert known is not None
            self.aliases[unknown] = known
            self.dirty.aliases.add(unknown)
            return []
        pa, pb = self.refs[a].person, self.refs[b].person
        if pa == pb:
            return []
        return list(self._merge_all([pa, pb], rule)[1])

    def merge_persons(self, persons: list[str], rule: str) -> list[Change]:
        alive = [p for p in persons if p in self.persons]
        if len(set(alive)) < 2:
            return []
        return list(self._merge_all(alive, rule)[1])

    def split_ref(self, ref: str, rule: str) -> list[Change]:
        """Take a ref out of its person into a new person of its own (a reviewer said: not them)."""
        entry = self.refs.get(ref)
        if entry is None:
            return []
        old = entry.person
        person = self.persons[old]
        if len(person.refs) == 1:
            return []
        person.refs.remove(ref)
        self.dirty.persons.add(old)
        new = self._new_person(ref, entry.sequence + 1)
        self.persons[new].refs.append(ref)
        entry.person = new
        return [self._decide(ref, new, old, SPLIT, 0.0, rule)]

    def confirm(self, ref: str, rule: str) -> list[Change]:
        """A reviewer confirmed the ref's current person: a REVIEWED decision, person unchanged."""
        entry = self.refs.get(ref)
        if entry is None:
            return []
        return [self._decide(ref, entry.person, None, REVIEWED, 0.0, rule)]

    def _resolve_side(self, ref: str, previous: Sequence[str]) -> str | None:
        """D33: the known ref of a merge's side: its own, else its newest known older one."""
        known = self._resolve_alias(ref)
        if known is not None:
            return known
        predecessors = known_predecessors(previous, self._resolve_alias)
        return predecessors[0] if predecessors else None

    def _resolve_alias(self, ref: str) -> str | None:
        for _ in range(32):
            if ref in self.refs:
                return ref
            nxt = self.aliases.get(ref)
            if nxt is None:
                return None
            ref = nxt
        return None

    def _merge_all(self, persons: list[str], rule: str) -> tuple[str, tuple[Change, ...]]:
        unique = list(dict.fromkeys(persons))
        survivor = min(unique, key=lambda p: self.persons[p].order)
        changes: list[Change] = []
        for loser in unique:
            if loser == survivor:
                continue
            for ref in self.persons[loser].refs:
                entry = self.refs[ref]
                entry.person = survivor
                self.persons[survivor].refs.append(ref)
                changes.append(self._decide(ref, survivor, loser, MERGED, 0.0, rule))
            del self.persons[loser]
            self.dirty.persons.add(loser)
        self.dirty.persons.add(survivor)
        return survivor, tuple(changes)

    # ---------------------------------------------------------------------------------- helpers

    def person_id(self, ref: str, sequence: int) -> str:
        digest = hmac.new(self.id_key, f"person:{ref}/{sequence}".encode(), hashlib.sha256)
        return "P" + digest.hexdigest()[:20]

    def _new_person(self, ref: str, sequence: int) -> str:
        pid = self.person_id(ref, sequence)
        self.counter += 1
        self.persons[pid] = PersonEntry(self.counter, [])
        self.dirty.persons.add(pid)
        return pid

    def _attach(self, ref: str, profile: Profile, meta: list[str], person: str) -> None:
        self.refs[ref] = RefEntry(person, -1, profile, meta)
        self.persons[person].refs.append(ref)
        self._index(ref, profile)
        self.dirty.refs.add(ref)
        self.dirty.persons.add(person)

    def _decide(
        self, ref: str, person: str, previous: str | None, outcome: str, score: float, rule: str
    ) -> Change:
        entry = self.refs[ref]
        entry.sequence += 1
        entry.person = person
        self.dirty.refs.add(ref)
        return Change(ref, person, previous, outcome, entry.sequence, round(score, 3), rule)

    def _index(self, ref: str, profile: Profile) -> None:
        for key in blocking_keys(profile):
            self.blocks.setdefault(key, []).append(ref)

    def _unindex(self, ref: str, profile: Profile) -> None:
        for key in blocking_keys(profile):
            members = self.blocks.get(key)
            if members is not None and ref in members:
                members.remove(ref)
                if not members:
                    del self.blocks[key]

    def clusters(self) -> dict[str, str]:
        return {ref: entry.person for ref, entry in self.refs.items()}
