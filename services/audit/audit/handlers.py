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

from audit.domain.checkpoint import check_signature
from audit.domain.ledger import CheckpointPolicy, LedgerState
from audit.domain.principals import principal_refusal
from audit.domain.rotation import (
    HandoverPlan,
    Keyring,
    check_handover,
    handover_plan,
    previous_signer_id,
)

SERVICE = "audit"
LEDGER_KEY = "ledger"
# D34: the key id that signed the last checkpoint (absent in states written before D34).
SIGNER_KEY = "signer"


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
        keyring: Keyring,
        policy: CheckpointPolicy,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.metrics = metrics
        self.keyring = keyring
        self.policy = policy
        self._log = get_logger("audit.handlers")
        # Parsed form of the state value last written; reused while the store still holds exactly
        # that bytes object (a rolled-back message restores the old object, so the cache misses).
        self._cached: tuple[bytes, LedgerState] | None = None
        self._handover_blocked_logged = False
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
            return [self.envelopes.dead_letter(message, "AUDIT_PRINCIPAL_MISMATCH", refusal, now)]
        payload = message.value or b""
        ledger = self._load(state)
        # D34: after a key change the hand-over comes before anything the new key would cover.
        out = self._checkpoint_if_due(ledger, state, now, handover_only=True)
        entry = ledger.append(entry_id, payload, now, events)
        out.append(
            Outbound(
                self.topics.audit_ledger,
                self.codec.encode(LEDGER_ENTRY, entry),
                key=entry["sequence"].to_bytes(8, "big"),
            )
        )
        out.extend(self._checkpoint_if_due(ledger, state, now))
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
        out = self._checkpoint_if_due(ledger, state, now)
        if out:
            self._save(state, ledger)
        return out

    def _checkpoint_if_due(
        self, ledger: LedgerState, state: StateStore, now: dt.datetime, handover_only: bool = False
    ) -> list[Outbound]:
        """D-audit-1 and D34: a checkpoint when one is due, and at once when the active signing
        key has changed (the hand-over checkpoint, signed by the old key, comes first);
        ``handover_only``: only that hand-over, if one is pending."""
        recorded = state.get(SIGNER_KEY)
        previous = previous_signer_id(
            None if recorded is None else recorded.decode("ascii"),
            self.keyring,
            ledger.checkpoint_at is not None,
        )
        plan = handover_plan(previous, self.keyring)
        if isinstance(plan, str):
            # Entries still chain; only signing waits until the old key is back (D34). Said once
            # per process, not at every message and idle tick; the gauge stays 0 meanwhile.
            self.metrics.verification_ok.set(0)
            if self._handover_blocked_logged:
                return []
            self._handover_blocked_logged = True
            self._log.error(
                "ledger checkpoint not signed: no hand-over possible",
                reason_code="LEDGER_HANDOVER_KEY_MISSING",
                old_key_id=previous,
                new_key_id=self.keyring.active.key_id,
            )
            return []
        if plan is None and (handover_only or not ledger.checkpoint_due(self.policy, now)):
            return []
        out = self._checkpoint(ledger, now, plan)
        active = self.keyring.active.key_id
        if recorded != active.encode("ascii"):
            state.put(SIGNER_KEY, active.encode("ascii"))
        if plan is not None:
            self._log.info(
                "ledger signing key handed over",
                old_key_id=plan.old.key_id,
                new_key_id=plan.new.key_id,
                key_version=plan.new_version,
                sequence=ledger.size,
            )
        return [out]

    def _checkpoint(
        self, ledger: LedgerState, now: dt.datetime, plan: HandoverPlan | None
    ) -> Outbound:
        checkpoint = ledger.checkpoint(self.keyring.active, now, plan)
        self._self_check(ledger, checkpoint, plan)
        self.metrics.checkpoints.inc()
        self.metrics.last_checkpoint_timestamp.set(checkpoint["checkpoint_at"].timestamp())
        self.metrics.last_checkpoint_size.set(checkpoint["size"])
        return Outbound(
            self.topics.audit_checkpoints,
            self.codec.encode(LEDGER_CHECKPOINT, checkpoint),
            key=checkpoint["size"].to_bytes(8, "big"),
        )

    def _self_check(
        self, ledger: LedgerState, checkpoint: LedgerCheckpoint, plan: HandoverPlan | None
    ) -> None:
        """What the service can check of its own work without re-reading the ledger: the state's
        tip and Merkle frontier agree, and the new checkpoint (and its hand-over, D34) verifies
        under the public key of the key that signed it."""
        signer = self.keyring.active if plan is None else plan.old
        problem = check_signature(checkpoint, signer.public_key)
        if problem is None and plan is not None:
            problem = check_handover(checkpoint, signer.public_key)
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
