"""Ingest's durable state: the remembered message ids (D6), their key family and encoding, and the
daily sweep that forgets them after the window (D25); the FHIR Patient ids of each hospital and
their patient numbers (D36). The handler reads and writes state only through
:class:`SeenMessages` and :class:`PatientIds`; the expiry decision is the domain's
(``domain.dedup``).
"""

from __future__ import annotations

import datetime as dt

from biostream.logs import get_logger
from biostream.state import StateStore

from ingest.domain.dedup import DEFAULT_WINDOW_DAYS, plan_expiry

SEEN_PREFIX = "msg:"
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


def source_ref_of(value: bytes) -> str:
    """The feed position of the message first accepted (for dated and undated entries)."""
    if accepted_day(value) is None:
        return value.decode()
    return value.partition(b"|")[2].decode()


class SeenMessages:
    """The remembered message ids in the state (D6), forgotten after the window (D25).

    Once a day (the first call on a new day, after a restart the first call) the whole family is
    read once to plan what expires; the plan is then carried out at most ``chunk`` keys per call,
    so no transaction carries a day's worth of deletions at once."""

    def __init__(self, window_days: int = DEFAULT_WINDOW_DAYS, chunk: int = 5000) -> None:
        if window_days < 1:
            raise ValueError("the de-duplication window must be at least one day")
        self.window_days = window_days
        self.chunk = chunk
        self._planned_on: dt.date | None = None
        self._planned_for: StateStore | None = None
        self._expired: list[str] = []
        self._undated: list[str] = []
        self._log = get_logger("ingest.dedup")

    def seen(self, state: StateStore, hospital: str, message_id: str) -> bool:
        return state.get(seen_key(hospital, message_id)) is not None

    def remember(
        self, state: StateStore, hospital: str, message_id: str, source_ref: str, today: dt.date
    ) -> None:
        state.put(seen_key(hospital, message_id), seen_value(today, source_ref))

    def sweep(self, state: StateStore, today: dt.date) -> int:
        """Carries out at most ``chunk`` changes of today's plan; returns how many it made."""
        if self._planned_on != today or self._planned_for is not state:
            entries = (
                (key, accepted_day(state.get(key) or b""))
                for key in list(state.keys_with_prefix(SEEN_PREFIX))
            )
            plan = plan_expiry(entries, today, self.window_days)
            self._expired, self._undated = plan.expired, plan.undated
            self._planned_on, self._planned_for = today, state
            if plan.expired or plan.undated:
                self._log.info(
                    "de-duplication window planned",
                    expiring=len(plan.expired), undated=len(plan.undated),
                    window_days=self.window_days,
                )  # fmt: skip
        done = 0
        while self._expired and done < self.chunk:
            state.delete(self._expired.pop())
            done += 1
        while self._undated and done < self.chunk:
            key = self._undated.pop()
            value = state.get(key)
            if value is not None:
                state.put(key, seen_value(today, value.decode()))
            done += 1
        return done


PATIENT_ID_PREFIX = "pid:"


class PatientIds:
    """D36: ``Patient/<id>`` of every FHIR Patient a hospital sent with a patient number, and
    that number, so that a later resource naming the patient by its id only joins it. One key
    per patient and hospital (``pid:<hospital>:Patient/<id>``), written only when new or
    changed; kept as long as the patient may be referred to, so not swept."""

    def number_of(self, state: StateStore, hospital: str, resource_id: str) -> str | None:
        value = state.get(f"{PATIENT_ID_PREFIX}{hospital}:{resource_id}")
        return value.decode() if value is not None else None

    def remember(self, state: StateStore, hospital: str, resource_id: str, number: str) -> None:
        key = f"{PATIENT_ID_PREFIX}{hospital}:{resource_id}"
        if state.get(key) != number.encode():
            state.put(key, number.encode())
