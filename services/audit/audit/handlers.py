"""Audit use case: an audit event in, the next ledger entry out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from biostream.codec import AvroCodec, DecodeError
from biostream.contracts import AUDIT_EVENT, LEDGER_ENTRY
from biostream.envelopes import Envelopes
from biostream.processor import Inbound, Outbound, StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Gauge

from audit.domain.chain import ChainTip, append

SERVICE = "audit"
TIP_KEY = "tip"


@dataclass(frozen=True)
class AuditMetrics:
    ledger_length: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AuditMetrics:
        return cls(
            ledger_length=Gauge(
                "biostream_audit_ledger_entries", "Entries in the audit ledger", registry=registry
            )
        )


class LedgerAppendHandler:
    def __init__(
        self, codec: AvroCodec, topics: Topics, envelopes: Envelopes, metrics: AuditMetrics
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.metrics = metrics

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        payload = message.value or b""
        try:
            event = self.codec.decode(payload, AUDIT_EVENT)
        except DecodeError as error:
            # An unreadable event is kept (dead letter), but never enters the chain.
            return [self.envelopes.dead_letter(message, error.reason_code, str(error), now)]
        stored = state.get(TIP_KEY)
        tip = ChainTip.from_bytes(stored) if stored is not None else ChainTip()
        entry, tip = append(tip, event["event_id"], payload, now)
        state.put(TIP_KEY, tip.to_bytes())
        self.metrics.ledger_length.set(tip.next_sequence)
        return [
            Outbound(
                self.topics.audit_ledger,
                self.codec.encode(LEDGER_ENTRY, entry),
                key=entry["sequence"].to_bytes(8, "big"),
            )
        ]
