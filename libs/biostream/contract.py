"""The handler contract every stream service is written against: what a handler receives
(``Inbound``), what it returns (``Outbound``), its signature, and the correlation id that follows
one feed message through every service. No Kafka here: engines (``biostream.processor``) and the
test driver (``biostream.testing``) both speak it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from biostream.state import StateStore

Headers = tuple[tuple[str, bytes], ...]


# NamedTuples, not frozen dataclasses: just as immutable, and built in a quarter of the time
# (a frozen dataclass sets each field through object.__setattr__); several are made per record.
class Inbound(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @property
    def source_ref(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @classmethod
    def of(cls, record: Any) -> Inbound:
        """The message of an aiokafka consumer record."""
        return cls(
            record.topic, record.partition, record.offset, record.key, record.value,
            tuple(record.headers or ()), record.timestamp,
        )  # fmt: skip


class Outbound(NamedTuple):
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()


# The id an operator follows one record by through every service's logs: the source reference of
# the message that entered the pipeline (feed topic/partition/offset: it names a hospital's feed
# position, never a person). The first service sets it from its input; every service copies it
# from its input message to all outputs and binds it into the log context while handling.
CORRELATION_HEADER = "correlation-id"
# A header from outside (a hospital's producer) is only trusted if it has the same harmless shape;
# anything else could carry personal data into logs, so it is replaced by this hop's source ref.
_CORRELATION_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,249}/\d{1,6}/\d{1,19}")


# D33: a clinical record's refs under older patient-ref key versions (comma-separated), repeated
# from its ``previous_patient_refs`` field as a hint for the pseudonymizer's hold-back, which
# decides from the key and headers without decoding; the field stays what the handler acts on.
PREVIOUS_REFS_HEADER = "previous-patient-refs"


def previous_refs_hint(message: Inbound) -> list[str]:
    for name, value in message.headers:
        if name == PREVIOUS_REFS_HEADER:
            return [ref for ref in value.decode("ascii", errors="replace").split(",") if ref]
    return []


# A message that carries several records' audit events (an ``AuditEventBatch``) names all their
# correlation ids, comma-separated, so the audit service's log lines can still be followed.
CORRELATIONS_HEADER = "correlation-ids"


def correlation_ids(message: Inbound) -> list[str]:
    """The ids of a message that speaks for several records (empty for any other message)."""
    for name, value in message.headers:
        if name == CORRELATIONS_HEADER:
            text = value.decode("ascii", errors="replace")
            return [part for part in text.split(",") if _CORRELATION_SHAPE.fullmatch(part)]
    return []


def correlation_of(out: Outbound) -> str | None:
    for name, value in out.headers:
        if name == CORRELATION_HEADER:
            return value.decode("ascii", errors="replace")
    return None


def correlation_id(message: Inbound) -> str:
    for name, value in message.headers:
        if name == CORRELATION_HEADER:
            text = value.decode("ascii", errors="replace")
            if _CORRELATION_SHAPE.fullmatch(text):
                return text
    return message.source_ref


def with_correlation(outputs: list[Outbound], correlation: str) -> list[Outbound]:
    """Adds the header to outputs that do not carry one already."""
    header = (CORRELATION_HEADER, correlation.encode())
    return [
        out
        if any(name == CORRELATION_HEADER for name, _ in out.headers)
        else Outbound(out.topic, out.value, out.key, (*out.headers, header))
        for out in outputs
    ]


class Handler(Protocol):
    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]: ...


FailureHandler = Callable[[Inbound, BaseException, dt.datetime], list[Outbound]]


# Called when a poll returned nothing (at most every ``idle_interval_ms``): time-driven work such as
# the audit ledger's periodic checkpoint. Its outputs and state changes commit in one transaction.
IdleHandler = Callable[[StateStore, dt.datetime], list[Outbound]]
