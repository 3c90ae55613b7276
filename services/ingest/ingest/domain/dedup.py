"""Which hospital messages ingest still remembers, to recognise a resent one (D6, bounded by D25).

A message is remembered by hospital and message id for a window of days after it was accepted;
after that its entry is forgotten, so the state holds about ``window_days`` of feed, not the
whole history. Pure: the day is an argument, the entries are (key, day accepted) pairs; how they
are stored is ``ingest.state``'s business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class ExpiryPlan:
    expired: list[str]  # keys to forget
    undated: list[str]  # keys from before the window: stamp them with today, expire later


def plan_expiry(
    entries: Iterable[tuple[str, int | None]], today: dt.date, window_days: int
) -> ExpiryPlan:
    """D25. An entry accepted more than ``window_days`` days before ``today`` is forgotten: a
    message resent after that is accepted again (same record ids, so downstream sees the same
    records again; docs/decisions.md D25). Undated entries (written before D25) get a day now, so
    they too are forgotten a full window later and never sooner.

    ``entries`` are (key, proleptic ordinal of the day accepted, or ``None`` when undated)."""
    if window_days < 1:
        raise ValueError("the de-duplication window must be at least one day")
    oldest_kept = today.toordinal() - window_days
    expired: list[str] = []
    undated: list[str] = []
    for key, day in entries:
        if day is None:
            undated.append(key)
        elif day < oldest_kept:
            expired.append(key)
    return ExpiryPlan(expired, undated)
