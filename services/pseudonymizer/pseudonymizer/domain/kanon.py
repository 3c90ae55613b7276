"""k-anonymity on a stream: a quasi-identifier class opens once k distinct persons are in it.

A class is the combination of generalised quasi-identifiers a released record carries (see
``release.quasi_identifiers``). While a class holds fewer than k distinct persons its records wait;
the record that brings the k-th person opens the class, and every waiting record of the class is
released with it. An open class stays open (its member list is no longer needed), so the state
per class is bounded by k person ids. A record that waited longer than the policy's
``max_hold_hours`` is suppressed (D-pseudonymizer-6).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClassState:
    """A class's state: open for good, or the distinct persons seen so far (fewer than k)."""

    open: bool
    members: tuple[str, ...] = ()


OPEN = ClassState(open=True)


@dataclass(frozen=True, slots=True)
class Admission:
    state: ClassState  # the class's new state
    releasable: bool  # the class has at least k persons now
    opened: bool  # this admission opened it: release what waited


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """A clinical record (its Avro bytes) held below k since a time (seconds since the epoch)."""

    held_since: float
    raw: bytes


def admit(before: ClassState | None, person_id: str, k: int) -> Admission:
    """D-pseudonymizer-6: a person's record enters a class; the class opens with its k-th
    distinct person and stays open. ``before`` is None for a class never seen."""
    if k <= 1 or (before is not None and before.open):
        return Admission(OPEN, True, False)
    members = before.members if before is not None else ()
    if person_id not in members:
        members = (*members, person_id)
    if len(members) >= k:
        return Admission(OPEN, True, True)
    return Admission(ClassState(open=False, members=members), False, False)


def split_expired(
    held: list[HeldRecord], now: float, max_hold_hours: float
) -> tuple[list[HeldRecord], list[HeldRecord]]:
    """D-pseudonymizer-6: (kept, suppressed): a record held ``max_hold_hours`` or longer is
    suppressed, so the state and the delay stay bounded."""
    limit = now - max_hold_hours * 3600
    kept = [record for record in held if record.held_since > limit]
    return kept, [record for record in held if record.held_since <= limit]
