"""Audit use case: an audit event in, the next ledger entry (and, when due, a signed checkpoint) out."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import cast

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT,
    AUDIT_EVENT_BATCH,
    LEDGER_CHECKPOINT,
    LEDGER_ENTRY,
    AuditEventBatch,
    LedgerCheckpoint,
)
from biostream.envelopes import (
    Envelopes,
    Rejected,
    Unreadable,
    check_audit_batch,
    is_audit_batch,
)
from biostream.logs import get_logger
from biostream.observability import LATENCY_BUCKETS
from biostream.state import StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from audit.domain.checkpoint import Signer, check_signature
from audit.domain.ledger import CheckpointPolicy, LedgerState
from audit.domain.principals import principal_refusal

SERVICE = "audit"
LEDGER_KEY = "ledger"


@dataclass(frozen=True)
class AuditMetrics:
    ledger_length: Gauge
    append_lag_seconds: Histogram
    checkpoints: Gauge
    last_checkpoint_timestamp: Gauge
    last_checkpoint_age_seconds: Gauge
    last_checkpoint_size: Gauge
    verification_ok: Gauge
    refused_principal: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AuditMetrics:
        last_checkpoint = Gauge(
            "biostream_audit_last_checkpoint_timestamp_seconds",
            "Time of the last signed checkpoint (epoch seconds)",
            registry=registry,
        )
        age = Gauge(
            "biostream_audit_last_checkpoint_age_seconds",
            "Seconds since the last signed checkpoint (-1 before the first)",
            registry=registry,
        )

        def _age() -> float:
            value = next(iter(last_checkpoint.collect())).samples[0].value
            return -1.0 if value <= 0 else max(0.0, time.time() - value)

        age.set_function(_age)
        return cls(
            ledger_length=Gauge(
                "biostream_audit_ledger_entries", "Entries in the audit ledger", registry=registry
            ),
            append_lag_seconds=Histogram(
                "biostream_audit_append_lag_seconds",
                "Time from an audit event's occurrence to its ledger entry",
                buckets=(*LATENCY_BUCKETS, 60, 300),
                registry=registry,
            ),
            checkpoints=Gauge(
                "biostream_audit_checkpoints_signed",
                "Checkpoints signed by this process",
                registry=registry,
            ),
            last_checkpoint_timestamp=last_checkpoint,
            last_checkpoint_age_seconds=age,
            last_checkpoint_size=Gauge(
                "biostream_audit_last_checkpoint_size",
                "Ledger entries covered by the last signed checkpoint",
                registry=registry,
            ),
            verification_ok=Gauge(
                "biostream_audit_verification_ok",
                "1 while the self-check of the ledger state and the last checkpoint passes, 0 when it failed",
                registry=registry,
            ),
            refused_principal=Counter(
                "biostream_audit_refused_principal",
                "Audit messages dead-lettered because their events claim another principal than "
                "the one that wrote them (D31)",
                registry=registry,
            ),
        )


class LedgerAppendHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        metrics: AuditMetrics,
        signer: Signer,
        policy: CheckpointPolicy,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.metrics = metrics
        self.signer = signer
        self.policy = policy
        self._log = get_logger("audit.handlers")
        # Parsed form of the state value last written; reused while the store still holds exactly
        # that bytes object (a rolled-back message restores the old object, so the cache misses).
        self._cached: tuple[bytes, LedgerState] | None = None
        self.metrics.verification_ok.set(1)

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        # An unreadable event is kept (dead letter), but never enters the chain.
        read = self.envelopes.decode_or_reject(message, self._entry_of, now, Unreadable.DEAD_LETTER)
        if isinstance(read, Rejected):
            return read.outputs
        entry_id, occurred_at, events, claimed = read
        refusal = principal_refusal(self.topics.authenticated_principal(message.topic), claimed)
        if refusal is not None:
            self.metrics.refused_principal.inc()
            return [
                self.envelopes.dead_letter(message, "AUDIT_PRINCIPAL_MISMATCH", refusal, now)
            ]
        payload = message.value or b""
        ledger = self._load(state)
        entry = ledger.append(entry_id, payload, now, events)
        out = [
            Outbound(
                self.topics.audit_ledger,
                self.codec.encode(LEDGER_ENTRY, entry),
                key=entry["sequence"].to_bytes(8, "big"),
            )
        ]
        if ledger.checkpoint_due(self.policy, now):
            out.append(self._checkpoint(ledger, now))
        self._save(state, ledger)
        self.metrics.ledger_length.set(ledger.size)
        self.metrics.append_lag_seconds.observe(max(0.0, (now - occurred_at).total_seconds()))
        return out

    def _entry_of(
        self, value: bytes | None
    ) -> tuple[str, dt.datetime, list[bytes] | None, list[str]]:
        """(entry id, when, the batch's events or None, the principals the events claim) of one
        audit message: a service's batch (one per transaction) is one entry, its id names the
        batch (D15). Raises DecodeError."""
        payload = value or b""
        if is_audit_batch(self.codec, payload):
            batch = self.codec.decode(payload, AUDIT_EVENT_BATCH)
            check_audit_batch(self.codec, cast(AuditEventBatch, batch))
            claimed = [
                self.codec.decode(item, AUDIT_EVENT)["principal"] for item in batch["events"]
            ]
            return batch["batch_id"], batch["packed_at"], batch["events"], claimed
        event = self.codec.decode(payload, AUDIT_EVENT)
        return event["event_id"], event["occurred_at"], None, [event["principal"]]

    def tick(self, state: StateStore, now: dt.datetime) -> list[Outbound]:
        """D-audit-1: idle tick: a time-due checkpoint even when no event arrives."""
        ledger = self._load(state)
        self.metrics.ledger_length.set(ledger.size)
        if not ledger.checkpoint_due(self.policy, now):
            return []
        out = [self._checkpoint(ledger, now)]
        self._save(state, ledger)
        return out

    def _checkpoint(self, ledger: LedgerState, now: dt.datetime) -> Outbound:
        checkpoint = ledger.checkpoint(self.signer, now)
        self._self_check(ledger, checkpoint)
        self.metrics.checkpoints.inc()
        self.metrics.last_checkpoint_timestamp.set(checkpoint["checkpoint_at"].timestamp())
        self.metrics.last_checkpoint_size.set(checkpoint["size"])
        return Outbound(
            self.topics.audit_checkpoints,
            self.codec.encode(LEDGER_CHECKPOINT, checkpoint),
            key=checkpoint["size"].to_bytes(8, "big"),
        )

    def _self_check(self, ledger: LedgerState, checkpoint: LedgerCheckpoint) -> None:
        """What the service can check of its own work without re-reading the ledger: the state's
        tip and Merkle frontier agree, and the new checkpoint verifies under the public key."""
        problem = check_signature(checkpoint, self.signer.public_key)
        if problem is None and not ledger.consistent():
            problem = "ledger state: Merkle frontier and chain tip disagree"
        self.metrics.verification_ok.set(0 if problem else 1)
        if problem:
            self._log.error(
                "ledger self-check failed",
                reason_code="LEDGER_SELF_CHECK_FAILED",
                sequence=ledger.size,
            )

    def _load(self, state: StateStore) -> LedgerState:
        stored = state.get(LEDGER_KEY)
        if stored is None:
            self._cached = None
            return LedgerState()
        if self._cached is not None and self._cached[0] is stored:
            ledger = self._cached[1]
        else:
            ledger = LedgerState.from_bytes(stored)
            # After a restart the gauges start from the restored state, not from zero.
            self.metrics.ledger_length.set(ledger.size)
            if ledger.checkpoint_at is not None:
                self.metrics.last_checkpoint_timestamp.set(ledger.checkpoint_at.timestamp())
                self.metrics.last_checkpoint_size.set(ledger.checkpoint_size)
        self._cached = None  # the object is about to change; cached again once saved
        return ledger

    def _save(self, state: StateStore, ledger: LedgerState) -> None:
        data = ledger.to_bytes()
        state.put(LEDGER_KEY, data)
        self._cached = (data, ledger)
