"""biostream.testing.drive: the engine's per-message step without a broker."""

from __future__ import annotations

import datetime as dt

import pytest
from biostream.contract import CORRELATION_HEADER, Inbound, Outbound, correlation_of
from biostream.state import StateStore
from biostream.testing import drive, inbound

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def counting_handler(message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
    """Counts messages per key; a value of b"boom" fails after changing the state."""
    key = (message.key or b"").decode()
    count = int(state.get(key) or b"0") + 1
    state.put(key, str(count).encode())
    if message.value == b"boom":
        raise ValueError("bad message")
    return [Outbound("out", str(count).encode(), message.key)]


def dead_letter(message: Inbound, error: BaseException, now: dt.datetime) -> list[Outbound]:
    return [Outbound("dead", type(error).__name__.encode(), message.key)]


def test_outputs_carry_the_correlation_id_of_their_input() -> None:
    messages = [inbound("feed.H1", b"x", b"a", offset=n) for n in range(3)]
    driven = drive(counting_handler, messages, NOW)
    assert [o.value for o in driven.on("out")] == [b"1", b"2", b"3"]
    assert [correlation_of(o) for o in driven.outputs] == [f"feed.H1/0/{n}" for n in range(3)]
    upstream = Inbound("next", 0, 9, b"a", b"x", ((CORRELATION_HEADER, b"feed.H1/0/7"),), 0)
    [out] = drive(counting_handler, [upstream], NOW).outputs
    assert correlation_of(out) == "feed.H1/0/7"


def test_a_failed_message_leaves_no_state_and_becomes_the_failure_handlers_output() -> None:
    state = StateStore()
    messages = [inbound("t", b"x", b"a"), inbound("t", b"boom", b"a", offset=1)]
    driven = drive(counting_handler, messages, NOW, state, on_failure=dead_letter)
    assert [(o.topic, o.value) for o in driven.outputs] == [("out", b"1"), ("dead", b"ValueError")]
    assert state.get("a") == b"1"  # the failed message's increment was rolled back
    assert [len(outs) for _, outs in driven.per_message] == [1, 1]


def test_without_a_failure_handler_the_error_reaches_the_test() -> None:
    with pytest.raises(ValueError, match="bad message"):
        drive(counting_handler, [inbound("t", b"boom", b"a")], NOW)


def test_time_can_be_given_per_message() -> None:
    seen: list[dt.datetime] = []

    def clocked(message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        seen.append(now)
        return []

    messages = [inbound("t", b"", offset=n) for n in range(2)]
    drive(clocked, messages, lambda m: NOW + dt.timedelta(days=m.offset))
    assert seen == [NOW, NOW + dt.timedelta(days=1)]
