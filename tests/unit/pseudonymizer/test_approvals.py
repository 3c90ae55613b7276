"""D46: signed policy versions from access.policies start, renew and stop datasets in the running
handler; refused ones change nothing; a dataset started mid-stream is given its history by the
replay path, without a gap or a duplicate at the junction. No Kafka, no clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    CURATED_RECORD,
    DATASET_NOTICE,
    DEAD_LETTER,
    LINK_DECISION,
    RELEASE_POLICY_VERSION,
    ReleasePolicyVersion,
)
from biostream.envelopes import Envelopes
from biostream.release_policies import (
    BoardKey,
    TrustedBoardKeys,
    policy_version,
    sign,
    withdrawal_of,
)
from biostream.settings import KafkaSettings
from biostream.state import StateStore
from biostream.testing import drive
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry
from pseudonymizer.adapters import broker_access
from pseudonymizer.adapters.keys import KeyStore, derived_key
from pseudonymizer.approvals import KeySource
from pseudonymizer.domain.pseudonyms import curated_id
from pseudonymizer.handlers import PseudonymizerHandler, PseudonymizerMetrics

from tests.unit.pseudonymizer.test_handler import CODEC, KEY_A, TOPICS, Keyed, policy

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
DAY_MS = 86_400_000
BOARD = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ROOT = b"r" * 32
LATE = {
    "dataset": "cohort-late", "version": "1", "approval_ref": "DRB-2026-014",
    "purpose": "diabetes outcomes", "pseudonym_domain": "cohort-late", "key_version": "k1",
    "record_types": ["Condition"], "fields": ["hospital", "code_system", "code"],
}  # fmt: skip


def make_handler(store_keys: KeyStore | None = None) -> PseudonymizerHandler:
    keys = store_keys or KeyStore({}, ROOT)
    return PseudonymizerHandler(
        CODEC,
        TOPICS,
        Envelopes("pseudonymizer", "User:svc-pseudonymizer", CODEC, TOPICS),
        [Keyed(policy(), KEY_A)],
        PseudonymizerMetrics.create(CollectorRegistry()),
        TrustedBoardKeys([BoardKey("k1", BOARD.public_key())]),
        KeySource(keys.has, keys.key),
    )


def version(n: int = 1, valid_days: float = 365, **document: Any) -> ReleasePolicyVersion:
    return policy_version(
        {**LATE, **document},
        version=n,
        application_id="APP-7",
        principal="User:project-cohort-late",
        valid_from_ms=NOW_MS - 1000,
        valid_until_ms=NOW_MS + int(valid_days * DAY_MS),
        issued_at_ms=NOW_MS,
    )


def on_policy_topic(
    record: ReleasePolicyVersion, offset: int = 0, key: bytes | None = None
) -> Inbound:
    value = CODEC.encode(RELEASE_POLICY_VERSION, record)
    key = key or record["dataset"].encode()
    return Inbound(TOPICS.access_policies, 0, offset, key, value, (), NOW_MS)


def clinical(record_id: str, offset: int, ref: str = "pr_a") -> Inbound:
    record = {
        "record_id": record_id, "patient_ref": ref, "hospital": "H001", "message_id": "M",
        "source_format": "CSV", "received_at": NOW, "resource_type": "Condition",
        "event_date": dt.date(2026, 2, 1), "code_system": "kcd", "code": "E11.9",
        "code_version": "9", "value_number": None, "value_unit": None, "value_text": None,
        "specimen_refs": [], "quality_flags": [], "previous_patient_refs": [],
    }  # fmt: skip
    value = CODEC.encode(CLINICAL_RECORD, record)
    return Inbound(TOPICS.clinical_records, 0, offset, ref.encode(), value, (), NOW_MS)


def decision(person_id: str, ref: str = "pr_a") -> Inbound:
    record = {
        "decision_id": f"{ref}/0", "patient_ref": ref, "record_id": "H001/M/0",
        "hospital": "H001", "person_id": person_id, "previous_person_id": None,
        "outcome": "NEW_PERSON", "score": 0.0, "rule": "rrn-exact", "sequence": 0,
        "decided_at": NOW, "birth_year": 1990, "sex": "F", "province_code": "11",
        "birth_month": 6, "postal_prefix": "481", "district_code": None,
    }  # fmt: skip
    value = CODEC.encode(LINK_DECISION, record)
    return Inbound(TOPICS.link_decisions, 0, 0, ref.encode(), value, (), NOW_MS)


def late_records(out: list[Outbound]) -> list[str]:
    """The clinical record ids released into cohort-late (recognised by their curated ids)."""
    key = derived_key(ROOT, "cohort-late/k1")
    by_id = {curated_id(key, f"r{n}"): f"r{n}" for n in range(10)}
    return [
        by_id[CODEC.decode(o.value, CURATED_RECORD)["curated_id"]]
        for o in out
        if o.topic == TOPICS.curated("cohort-late")
    ]


def late_notices(out: list[Outbound]) -> list[dict[str, Any]]:
    return [
        CODEC.decode(o.value, DATASET_NOTICE)
        for o in out
        if o.topic == TOPICS.notices("cohort-late")
    ]


def actions(out: list[Outbound]) -> list[str]:
    return [
        CODEC.decode(o.value, AUDIT_EVENT)["action"]
        for o in out
        if o.topic == TOPICS.audit_events_of("svc-pseudonymizer")
    ]


def replay_all(
    handler: PseudonymizerHandler, store: StateStore, history: list[Inbound]
) -> list[Outbound]:
    """What the engine does (``biostream.processor.Replay``), in one go."""
    out: list[Outbound] = []
    wanted = handler.replay_wanted(store)
    for message in history:
        first, end = wanted.get(message.partition, (0, 0))
        if first <= message.offset < end:
            out += handler.replay(message, store, NOW)
    positions = {p: end for p, (_, end) in wanted.items()}
    return out + handler.replayed_to(store, positions, NOW)


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (version(), "UNSIGNED"),
        (sign(version(), Ed25519PrivateKey.generate()), "UNKNOWN_KEY"),
        ({**sign(version(), BOARD), "principal": "User:someone-else"}, "BAD_SIGNATURE"),
        (sign(version(fields=["name"]), BOARD), "POLICY_INVALID"),
        (sign(version(target_topic="curated.other"), BOARD), "POLICY_INVALID"),
        ({**sign(version(), BOARD), "dataset": "cohort-other"}, "POLICY_MALFORMED"),
    ],
)
def test_a_refused_version_is_dead_lettered_audited_and_changes_nothing(
    record: ReleasePolicyVersion, code: str
) -> None:
    handler, store = make_handler(), StateStore()
    message = on_policy_topic(record)  # type: ignore[arg-type]
    out = drive(handler, [decision("P1"), message, clinical("r1", 0)], NOW, store).outputs
    dead = [CODEC.decode(o.value, DEAD_LETTER) for o in out if o.topic == TOPICS.dead_letters]
    assert [d["reason_code"] for d in dead] == [code]
    assert dead[0]["original"] == message.value
    assert "pseudonymizer.policy_refused" in actions(out)
    assert late_records(out) == [] and store.get("apol:cohort-late") is None


def test_a_version_keyed_by_another_dataset_is_refused() -> None:
    message = on_policy_topic(sign(version(), BOARD), key=b"cohort-other")
    out = drive(make_handler(), [message], NOW).outputs
    dead = [CODEC.decode(o.value, DEAD_LETTER) for o in out if o.topic == TOPICS.dead_letters]
    assert [d["reason_code"] for d in dead] == ["POLICY_MALFORMED"]


def test_a_policy_file_dataset_is_not_taken_over_from_the_topic() -> None:
    document = {**LATE, "dataset": "proj-a", "pseudonym_domain": "proj-a"}
    record = sign(policy_version(
        document, version=1, application_id="A", principal="User:project-proj-a",
        valid_from_ms=0, valid_until_ms=NOW_MS + DAY_MS, issued_at_ms=NOW_MS,
    ), BOARD)  # fmt: skip
    out = drive(make_handler(), [on_policy_topic(record)], NOW).outputs
    dead = [CODEC.decode(o.value, DEAD_LETTER) for o in out if o.topic == TOPICS.dead_letters]
    assert [d["reason_code"] for d in dead] == ["DATASET_FROM_FILE"]


def test_an_approved_dataset_gets_its_history_then_the_live_stream_once_each() -> None:
    handler, store = make_handler(), StateStore()
    history = [clinical("r0", 0), clinical("r1", 1)]
    before = drive(handler, [decision("P1"), *history], NOW, store).outputs
    assert late_records(before) == []
    started = drive(handler, [on_policy_topic(sign(version(), BOARD))], NOW, store).outputs
    assert actions(started)[:2] == ["pseudonymizer.policy_applied", "pseudonymizer.dataset_started"]
    assert "pseudonymizer.policy_in_force" in actions(started)
    live = drive(handler, [clinical("r2", 2)], NOW, store).outputs
    assert late_records(live) == ["r2"]
    assert handler.replay_wanted(store) == {0: (0, 2)}  # the junction: offset 2 came live
    replayed = replay_all(handler, store, [*history, clinical("r2", 2)])
    assert late_records(replayed) == ["r0", "r1"]
    assert actions(replayed)[-1] == "pseudonymizer.history_released"
    assert handler.replay_wanted(store) == {}


def test_a_patient_parked_at_the_start_reaches_the_dataset_once_when_decided() -> None:
    handler, store = make_handler(), StateStore()
    drive(handler, [clinical("r0", 0, ref="pr_b")], NOW, store)  # no decision yet: parked
    drive(handler, [on_policy_topic(sign(version(), BOARD))], NOW, store)
    decided = drive(handler, [decision("P2", ref="pr_b")], NOW, store).outputs
    assert late_records(decided) == ["r0"]
    assert late_records(replay_all(handler, store, [clinical("r0", 0, ref="pr_b")])) == []


def test_withdrawal_and_expiry_stop_the_dataset_with_a_notice() -> None:
    handler, store = make_handler(), StateStore()
    active = sign(version(), BOARD)
    drive(handler, [decision("P1"), on_policy_topic(active)], NOW, store)
    withdrawn = sign(withdrawal_of(active, "REVOKED", NOW_MS), BOARD)
    out = drive(handler, [on_policy_topic(withdrawn, 1), clinical("r5", 5)], NOW, store).outputs
    assert late_records(out) == []
    assert [(n["kind"], n["reason"]) for n in late_notices(out)] == [
        ("DATASET_WITHDRAWN", "REVOKED")
    ]
    repeated = drive(handler, [on_policy_topic(withdrawn, 2)], NOW, store).outputs
    assert repeated == []  # the same version again (a publisher's retry): nothing happens
    again = drive(handler, [on_policy_topic(active, 2)], NOW, store).outputs  # an old version
    dead = [CODEC.decode(o.value, DEAD_LETTER) for o in again if o.topic == TOPICS.dead_letters]
    assert [d["reason_code"] for d in dead] == ["STALE_VERSION"]

    short, clock = make_handler(), StateStore()
    drive(short, [decision("P1"), on_policy_topic(sign(version(valid_days=1), BOARD))], NOW, clock)
    later = NOW + dt.timedelta(days=1, seconds=1)
    expired = short.on_idle(clock, later)
    assert [n["reason"] for n in late_notices(expired)] == ["EXPIRED"]
    assert late_records(drive(short, [clinical("r9", 9)], later, clock).outputs) == []


def test_a_renewal_keeps_the_pseudonyms_and_a_restart_keeps_the_datasets() -> None:
    handler, store = make_handler(), StateStore()
    first = sign(version(), BOARD)
    out = drive(handler, [decision("P1"), on_policy_topic(first), clinical("r0", 0)], NOW, store)
    before = [o for o in out.outputs if o.topic == TOPICS.curated("cohort-late")]
    renewal = sign(version(2, valid_days=730), BOARD)
    drive(handler, [on_policy_topic(renewal, 1)], NOW, store)
    restored = StateStore()
    for key, value in store.drain_changes().items():
        restored.restore(key, value)
    again = make_handler()  # a restarted or standby process: the state alone says what runs
    after = drive(again, [clinical("r1", 1)], NOW, restored).outputs
    pseudonyms = {
        CODEC.decode(o.value, CURATED_RECORD)["pseudonym"]
        for o in [*before, *after]
        if o.topic == TOPICS.curated("cohort-late")
    }
    assert late_records(after) == ["r1"] and len(pseudonyms) == 1
    assert "pseudonymizer.policy_in_force" not in actions(after)  # announced already


def test_a_runtime_dataset_key_is_derived_per_domain_and_version() -> None:
    keys = KeyStore({"cohort-demo/k1": b"f" * 32}, ROOT)
    assert keys.key("cohort-demo/k1") == b"f" * 32  # a provisioned file wins
    assert keys.key("cohort-late/k1") == derived_key(ROOT, "cohort-late/k1")
    assert len({keys.key("cohort-late/k1"), keys.key("cohort-late/k2"), ROOT}) == 3
    assert not KeyStore({}).has("cohort-late/k1")


def test_a_replay_interrupted_halfway_resumes_from_the_state_without_a_duplicate() -> None:
    handler, store = make_handler(), StateStore()
    history = [clinical(f"r{n}", n) for n in range(6)]
    drive(handler, [decision("P1"), *history], NOW, store)
    drive(handler, [on_policy_topic(sign(version(), BOARD))], NOW, store)
    assert handler.replay_wanted(store) == {0: (0, 6)}
    first = [out for m in history[:3] for out in handler.replay(m, store, NOW)]
    first += handler.replayed_to(store, {0: 3}, NOW)  # one committed replay batch
    restored = StateStore()  # then a crash: the next process has the committed state only
    for key, value in store.drain_changes().items():
        restored.restore(key, value)
    again = make_handler()
    assert again.replay_wanted(restored) == {0: (3, 6)}
    rest = replay_all(again, restored, history)
    assert late_records(first) == ["r0", "r1", "r2"] and late_records(rest) == ["r3", "r4", "r5"]


def test_a_version_valid_from_later_starts_the_dataset_when_its_time_comes() -> None:
    handler, store = make_handler(), StateStore()
    later = version()
    later["valid_from_ms"] = NOW_MS + 60_000
    drive(handler, [decision("P1"), on_policy_topic(sign(later, BOARD))], NOW, store)
    assert late_records(drive(handler, [clinical("r0", 0)], NOW, store).outputs) == []
    soon = NOW + dt.timedelta(minutes=1)
    started = handler.on_idle(store, soon)
    assert "pseudonymizer.dataset_started" in actions(started)
    assert handler.replay_wanted(store) == {0: (0, 1)}  # r0 came before: it is history


async def test_broker_access_follows_the_grants_and_moves_them_to_a_new_principal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, bool]] = []

    def apply(_admin: object, bindings: list[Any], *, grant: bool) -> None:
        calls.append((bindings[0].principal, grant))

    monkeypatch.setattr(broker_access, "apply_bindings", apply)
    access = broker_access.BrokerAccess(KafkaSettings(), TOPICS)
    for wanted in (
        {"cohort-late": ("User:project-a", True)},
        {"cohort-late": ("User:project-b", True)},  # a renewal naming another principal
        {"cohort-late": ("User:project-b", False)},  # withdrawn
    ):
        access.want(wanted)
        assert access._task is not None
        await access._task
    assert calls == [
        ("User:project-a", True),
        ("User:project-a", False),
        ("User:project-b", True),
        ("User:project-b", False),
    ]
    access.want({"cohort-late": ("User:project-b", False)})  # nothing to change: no call
    assert len(calls) == 4 and access.settled
