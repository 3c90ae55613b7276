"""The audit handler with in-memory state: checkpoints in the same output as the entries, idle
ticks, restores and rolled-back messages keep one exact chain and tree; metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from audit.domain.chain import verify
from audit.domain.checkpoint import Signer
from audit.domain.ledger import CheckpointPolicy
from audit.domain.rotation import Keyring
from audit.handlers import AuditMetrics, LedgerAppendHandler
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.envelopes import audit_events_in
from biostream.state import StateStore
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from .conftest import CODEC, T0, TOPICS, _env

SIGNER = Signer(Ed25519PrivateKey.generate())


def make(
    codec: AvroCodec = CODEC, registry: CollectorRegistry | None = None
) -> LedgerAppendHandler:
    return LedgerAppendHandler(
        codec, TOPICS, _env("audit"), AuditMetrics.create(registry or CollectorRegistry()),
        Keyring({"k1": SIGNER}), CheckpointPolicy(every_entries=4, every_seconds=60),
    )  # fmt: skip


def event(n: int) -> Inbound:
    value = _env("ingest").audit("ingest.accepted", [f"in/{n}"], [f"out/{n}"], T0).value
    return Inbound(TOPICS.audit_events_of("svc-ingest"), 0, n, None, value, (), 0)


def split(out: list[Outbound], entries: list[Any], checkpoints: list[Any]) -> None:
    for o in out:
        if o.topic == TOPICS.audit_ledger:
            entries.append(CODEC.decode(o.value, "LedgerEntry"))
        elif o.topic == TOPICS.audit_checkpoints:
            checkpoints.append(CODEC.decode(o.value, "LedgerCheckpoint"))


def restored(state: StateStore) -> StateStore:
    fresh = StateStore()
    for key, value in state.drain_changes().items():
        fresh.restore(key, value)
    return fresh


def test_checkpoints_every_n_with_restarts_in_between() -> None:
    state, entries, checkpoints = StateStore(), [], []  # type: ignore[var-annotated]
    handler = make()
    for n in range(10):
        if n in (3, 4, 7):  # a restart: new process, state from the changelog
            handler, state = make(), restored(state)
        split(handler(event(n), state, T0 + dt.timedelta(seconds=n)), entries, checkpoints)
    assert [c["size"] for c in checkpoints] == [4, 8]
    result = verify(entries, checkpoints=checkpoints, public_key=SIGNER.public_key)
    assert result.ok and result.covered == 8


def test_an_idle_tick_signs_the_uncovered_tail_once_t_has_passed() -> None:
    handler, state = make(), StateStore()
    entries, checkpoints = [], []  # type: ignore[var-annotated]
    split(handler(event(0), state, T0), entries, checkpoints)
    assert handler.tick(state, T0 + dt.timedelta(seconds=59)) == []
    split(handler.tick(state, T0 + dt.timedelta(seconds=60)), entries, checkpoints)
    assert [c["size"] for c in checkpoints] == [1]
    assert handler.tick(state, T0 + dt.timedelta(hours=1)) == []  # nothing new to cover
    assert verify(entries, checkpoints=checkpoints, public_key=SIGNER.public_key).covered == 1


class FailingOnce(AvroCodec):
    def __init__(self) -> None:
        super().__init__(CODEC.registry)
        self.fail = False

    def encode(self, contract_name: str, record: Any) -> bytes:
        if contract_name == "LedgerEntry" and self.fail:
            self.fail = False
            raise RuntimeError("boom")
        return super().encode(contract_name, record)


def test_a_message_that_fails_halfway_leaves_no_trace_in_chain_or_tree() -> None:
    codec = FailingOnce()
    handler, state = make(codec), StateStore()
    entries, checkpoints = [], []  # type: ignore[var-annotated]
    split(handler(event(0), state, T0), entries, checkpoints)
    codec.fail = True
    state.begin_message()
    with pytest.raises(RuntimeError):
        handler(event(1), state, T0)
    state.rollback_message()  # what the processor does before dead-lettering
    for n in range(1, 8):
        state.begin_message()
        split(handler(event(n), state, T0), entries, checkpoints)
    assert [e["sequence"] for e in entries] == list(range(8))
    assert verify(entries, checkpoints=checkpoints, public_key=SIGNER.public_key).covered == 8


def test_metrics_ledger_length_lag_checkpoint_and_self_check() -> None:
    registry = CollectorRegistry()
    handler, state = make(registry=registry), StateStore()
    for n in range(5):
        handler(event(n), state, T0 + dt.timedelta(seconds=2))

    def value(name: str) -> float | None:
        return registry.get_sample_value(name)

    assert value("biostream_audit_ledger_entries") == 5
    assert value("biostream_audit_append_lag_seconds_count") == 5
    assert value("biostream_audit_append_lag_seconds_sum") == pytest.approx(10)
    assert value("biostream_audit_last_checkpoint_size") == 4
    assert (
        value("biostream_audit_last_checkpoint_timestamp_seconds")
        == (T0 + dt.timedelta(seconds=2)).timestamp()
    )
    assert (value("biostream_audit_last_checkpoint_age_seconds") or 0) > 0
    assert value("biostream_audit_verification_ok") == 1


def test_a_restarted_handler_reports_the_restored_checkpoint() -> None:
    handler, state = make(), StateStore()
    for n in range(5):
        handler(event(n), state, T0)
    registry = CollectorRegistry()
    restarted, state = make(registry=registry), restored(state)
    assert restarted.tick(state, T0) == []  # nothing due; the state is read
    assert registry.get_sample_value("biostream_audit_ledger_entries") == 5
    assert registry.get_sample_value("biostream_audit_last_checkpoint_size") == 4
    assert registry.get_sample_value("biostream_audit_last_checkpoint_timestamp_seconds") == (
        T0.timestamp()
    )


def packed(numbers: range) -> Inbound:
    """One ingest transaction's events, packed as the processor packs them."""
    env = _env("ingest")
    events = [event(n).value or b"" for n in numbers]
    [batch] = env.pack_audit(events, now=T0)
    return Inbound(
        TOPICS.audit_events_of("svc-ingest"), 0, 100 + numbers[0], batch.key, batch.value, (), 0
    )


def test_a_services_batch_of_events_is_one_entry_and_keeps_every_event() -> None:
    state, entries, checkpoints = StateStore(), [], []  # type: ignore[var-annotated]
    handler = make()
    split(handler(event(0), state, T0), entries, checkpoints)  # a single event (CLI, desk)
    split(handler(packed(range(1, 6)), state, T0), entries, checkpoints)
    split(handler(packed(range(6, 9)), state, T0), entries, checkpoints)
    assert [e["sequence"] for e in entries] == [0, 1, 2]
    assert verify(entries, checkpoints=checkpoints, public_key=SIGNER.public_key).ok
    events = [ev for e in entries for ev in audit_events_in(CODEC, e["event_payload"])]
    assert [ev["inputs"] for ev in events] == [[f"in/{n}"] for n in range(9)]
    assert entries[1]["event_id"].startswith("ingest-")


def test_a_batch_holding_something_else_than_audit_events_is_dead_lettered() -> None:
    batch = _env("ingest").pack_audit([event(1).value or b"", CODEC.encode(
        "PatientMerge", {"merge_id": "m", "hospital": "H001", "message_id": "x",
                         "received_at": T0, "surviving_patient_ref": "pr_a",
                         "retired_patient_ref": "pr_b"})], now=T0)[0]  # fmt: skip
    state = StateStore()
    [out] = make()(
        Inbound(TOPICS.audit_events_of("svc-ingest"), 0, 7, None, batch.value, (), 0), state, T0
    )
    assert out.topic == TOPICS.dead_letters
    assert CODEC.decode(out.value, "DeadLetter")["reason_code"] == "AUDIT_BATCH_ITEM_INVALID"
    assert state.get("ledger") is None


def test_packing_splits_by_size_and_ids_follow_the_content() -> None:
    env = _env("ingest")
    events = [event(n).value or b"" for n in range(3000)]
    batches = env.pack_audit(events, now=T0)
    assert len(batches) > 1
    assert all(len(b.value or b"") < 256 * 1024 for b in batches)
    unpacked = [ev for b in batches for ev in audit_events_in(CODEC, b.value or b"")]
    assert [ev["inputs"] for ev in unpacked] == [[f"in/{n}"] for n in range(3000)]
    assert [b.key for b in env.pack_audit(events, now=T0)] == [b.key for b in batches]
    assert env.pack_audit(events[1:], now=T0)[0].key != batches[0].key
