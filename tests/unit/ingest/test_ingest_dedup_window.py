"""The de-duplication state is bounded (D25): a message id is remembered for the window, then
forgotten, so the state holds about a window of feed instead of growing forever."""

from __future__ import annotations

import datetime as dt

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import AUDIT_EVENT
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.domain.dedup import plan_expiry
from ingest.handlers import FeedMessageHandler, IngestMetrics
from ingest.state import (
    SEEN_PREFIX,
    SeenMessages,
    accepted_day,
    seen_key,
    seen_value,
    source_ref_of,
)
from prometheus_client import CollectorRegistry

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
HL7 = (("content-type", b"x-application/hl7-v2+er7"),)


def a01(control_id: str) -> bytes:
    return (
        f"MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260301093000||ADT^A01|{control_id}|P|2.5\r"
        "PID|1||00012345^^^H009^MR||홍^길동||19971013|M\r"
        "DG1|1||E11.9^^KCD-9||20260301\r"
    ).encode()


def handler(window_days: int, chunk: int = 5000) -> FeedMessageHandler:
    return FeedMessageHandler(
        CODEC, TOPICS, Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS), b"k" * 32,
        IngestMetrics.create(CollectorRegistry()), seen_messages=SeenMessages(window_days, chunk),
    )  # fmt: skip


def action(outputs: list[object]) -> str:
    [event] = [
        CODEC.decode(o.value, AUDIT_EVENT)
        for o in outputs
        if o.topic == TOPICS.audit_events_of("svc-ingest")
    ]  # type: ignore[attr-defined]
    return str(event["action"])


def feed(offset: int, value: bytes) -> Inbound:
    return Inbound(TOPICS.feed("H009"), 0, offset, None, value, HL7, 0)


def seen_keys(state: StateStore) -> list[str]:
    return list(state.keys_with_prefix(SEEN_PREFIX))


def test_a_resend_inside_the_window_is_a_duplicate_and_after_it_accepted_again() -> None:
    ingest, state = handler(window_days=30), StateStore()
    assert action(ingest(feed(0, a01("M1")), state, START)) == "ingest.accepted"
    day_30 = START + dt.timedelta(days=30)
    assert action(ingest(feed(1, a01("M1")), state, day_30)) == "ingest.duplicate"
    day_31 = START + dt.timedelta(days=31)
    assert action(ingest(feed(2, a01("M1")), state, day_31)) == "ingest.accepted"


def test_the_state_holds_a_window_of_feed_not_the_whole_history() -> None:
    """One message a day for 200 days: at most window + 1 ids are remembered at any time."""
    ingest, state = handler(window_days=10), StateStore()
    most = 0
    for day in range(200):
        ingest(feed(day, a01(f"M{day}")), state, START + dt.timedelta(days=day))
        most = max(most, len(seen_keys(state)))
    assert most == 11
    assert len(state) == 11  # nothing else of ingest's grows either


def test_quiet_feeds_forget_on_the_idle_tick_in_bounded_chunks() -> None:
    ingest, state = handler(window_days=5, chunk=40), StateStore()
    for n in range(100):
        ingest(feed(n, a01(f"M{n}")), state, START)
    later = START + dt.timedelta(days=6)
    state.drain_changes()  # what the transaction of those messages wrote
    ingest.on_idle(state, later)
    changes = state.drain_changes()
    assert len(changes) == 40 and all(v is None for v in changes.values())
    ingest.on_idle(state, later)
    ingest.on_idle(state, later)
    assert seen_keys(state) == []


def test_entries_from_before_the_window_are_kept_a_full_window_from_now() -> None:
    """State written by an older ingest holds only the source ref: it is dated on the first
    sweep, so it is never forgotten sooner than the window after the upgrade."""
    ingest, state = handler(window_days=7), StateStore()
    state.put(seen_key("H009", "OLD-1"), b"u.feed.H009/0/3")
    upgraded = START + dt.timedelta(days=400)
    assert action(ingest(feed(5, a01("OLD-1")), state, upgraded)) == "ingest.duplicate"
    stored = state.get(seen_key("H009", "OLD-1"))
    assert stored is not None and accepted_day(stored) == upgraded.date().toordinal()
    assert source_ref_of(stored) == "u.feed.H009/0/3"
    week_later = upgraded + dt.timedelta(days=7)
    assert action(ingest(feed(6, a01("OLD-1")), state, week_later)) == "ingest.duplicate"
    assert action(ingest(feed(7, a01("OLD-1")), state, week_later + dt.timedelta(days=1))) == (
        "ingest.accepted"
    )


def test_plan_expiry_keeps_the_last_window_days() -> None:
    today = dt.date(2026, 5, 20)
    entries = [
        ("msg:H:a", seen_value(today - dt.timedelta(days=3), "f/0/1")),
        ("msg:H:b", seen_value(today - dt.timedelta(days=4), "f/0/2")),
        ("msg:H:c", b"f/0/3"),
    ]
    plan = plan_expiry([(key, accepted_day(value)) for key, value in entries], today, window_days=3)
    assert plan.expired == ["msg:H:b"]
    assert plan.undated == ["msg:H:c"]
    with pytest.raises(ValueError, match="at least one day"):
        plan_expiry([], today, window_days=0)
