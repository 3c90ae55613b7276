"""Which hospital messages ingest still remembers, to recognise a resent one (D6, bounded by D25).

A message is remembered by hospital and message id for a window of days after it was accepted;
after that its entry is forgotten, so the state holds about ``window_days`` of feed, not the
whole history. Pure: the day is an argument, the state is a list of (key, value) pairs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

SEEN_PREFIX = "msg:"
DEFAULT_WINDOW_DAYS = 30
# Value layout: b"d<proleptic ordinal of the day accepted>|<source ref>". Entries written before
# the window existed hold the source ref alone (it never starts with "d" followed by a digit:
# source refs start with a topic name, "feed." or a test prefix "t...").
_DAY_MARK = b"d"


def seen_key(hospital: str, message_id: str) -> str:
    return f"{SEEN_PREFIX}{hospital}:{message_id}"


def seen_value(accepted_on: dt.date, source_ref: str) -> bytes:
    return b"%s%d|%s" % (_DAY_MARK, accepted_on.toordinal(), source_ref.encode())


def accepted_day(value: bytes) -> int | None:
    """The ordinal day the entry was accepted, or None for an entry from before the window."""
    if not value.startswith(_DAY_MARK):
        return None
    day, sep, _ = value[1:].partition(b"|")
    return int(day) if sep and day.isdigit() else None


@dataclass(frozen=True)
class ExpiryPlan:
    expired: list[str]  # keys to forget
    undated: list[str]  # keys from before the window: stamp them with today, expire later


def plan_expiry(
    entries: Iterable[tuple[str, bytes]], today: dt.date, window_days: int
) -> ExpiryPlan:
    """D25. An entry accepted more than ``window_days`` days before ``today`` is forgotten: a
    message resent after that is accepted again (same record ids, so downstream sees the same
    records again; docs/decisions.md D25). Undated entries (written before D25) get a day now, so
    they too are forgotten a full window later and never sooner."""
    if window_days < 1:
        raise ValueError("the de-duplication window must be at least one day")
    oldest_kept = today.toordinal() - window_days
    expired: list[str] = []
    undated: list[str] = []
    for key, value in entries:
        day = accepted_day(value)
        if day is None:
            undated.append(key)
        elif day < oldest_kept:
            expired.append(key)
    return ExpiryPlan(expired, undated)


def source_ref_of(value: bytes) -> str:
    """The feed position of the message first accepted (for dated and undated entries)."""
    if accepted_day(value) is None:
        return value.decode()
    return value.partition(b"|")[2].decode()
