"""A test driver for handlers: messages in, outputs out, no broker (in the spirit of bytewax's
testing sources and sinks).

``drive`` runs each message through the same per-message step as the engine
(``biostream.step.handle_message``: correlation ids, rollback of a failed message's state, the
failure handler's dead letters), so a unit test, a benchmark or a tool sees exactly the outputs
the running service would produce for the same inputs and state. What the driver does not do is
the engine's transaction: outputs are returned, state changes stay in ``state`` (read them with
``state.drain_changes()``), and held-back inputs (``HoldForReady``) are not modelled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from biostream.contract import FailureHandler, Handler, Inbound, Outbound
from biostream.state import StateStore
from biostream.step import handle_message


def raise_failure(message: Inbound, error: BaseException, now: dt.datetime) -> list[Outbound]:
    """The default failure handler of the driver: a test should see a handler's exception."""
    raise error


@dataclass
class Driven:
    """What a drive produced: every output in order, and per input the outputs it made."""

    outputs: list[Outbound] = field(default_factory=list)
    per_message: list[tuple[Inbound, list[Outbound]]] = field(default_factory=list)

    def on(self, topic: str) -> list[Outbound]:
        return [out for out in self.outputs if out.topic == topic]


def drive(
    handler: Handler,
    messages: Iterable[Inbound],
    now: dt.datetime | Callable[[Inbound], dt.datetime],
    state: StateStore | None = None,
    on_failure: FailureHandler = raise_failure,
) -> Driven:
    """Handles ``messages`` in order against ``state`` (a new store if None) at ``now`` (a time,
    or a function of the message)."""
    store = state if state is not None else StateStore()
    driven = Driven()
    for message in messages:
        at = now(message) if callable(now) else now
        outputs = handle_message(handler, on_failure, store, message, at)
        driven.outputs += outputs
        driven.per_message.append((message, outputs))
    return driven


def inbound(
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes], ...] = (),
    offset: int = 0,
    partition: int = 0,
    timestamp_ms: int = 0,
) -> Inbound:
    """An input message as the engine would hand it over (for tests and tools)."""
    return Inbound(topic, partition, offset, key, value, headers, timestamp_ms)
