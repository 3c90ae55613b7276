"""The ledger state the service keeps: compact, exact across a restore, checkpoints when due."""

from __future__ import annotations

import datetime as dt

from audit.domain.chain import verify
from audit.domain.checkpoint import Signer, check_signature
from audit.domain.ledger import CheckpointPolicy, LedgerState
from audit.domain.merkle import leaf_hash, root_of
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
SIGNER = Signer(Ed25519PrivateKey.generate())


def test_state_round_trips_through_bytes_at_every_size() -> None:
    ledger = LedgerState()
    for n in range(40):
        restored = LedgerState.from_bytes(ledger.to_bytes())
        assert restored.size == ledger.size == n
        assert restored.tip == ledger.tip
        assert restored.frontier.root() == ledger.frontier.root()
        assert len(ledger.to_bytes()) == 57 + 32 * bin(n).count("1")
        ledger.append(f"e{n}", f"p{n}".encode(), T0)
    ledger.checkpoint(SIGNER, T0)
    restored = LedgerState.from_bytes(ledger.to_bytes())
    assert (restored.checkpoint_size, restored.checkpoint_at) == (40, T0)


def test_a_restored_state_continues_the_same_chain_and_tree() -> None:
    straight, resumed = LedgerState(), LedgerState()
    a, b = [], []
    for n in range(25):
        a.append(straight.append(f"e{n}", f"p{n}".encode(), T0))
        resumed = LedgerState.from_bytes(resumed.to_bytes())  # a restart before every append
        b.append(resumed.append(f"e{n}", f"p{n}".encode(), T0))
    assert a == b
    assert resumed.frontier.root() == root_of([leaf_hash(e["entry_hash"]) for e in a])


def test_checkpoint_every_n_entries() -> None:
    policy = CheckpointPolicy(every_entries=3, every_seconds=3600)
    ledger = LedgerState()
    due = []
    for n in range(7):
        ledger.append(f"e{n}", b"x", T0)
        if ledger.checkpoint_due(policy, T0):
            due.append(ledger.checkpoint(SIGNER, T0)["size"])
    assert due == [3, 6]


def test_checkpoint_after_t_seconds_on_append_or_tick_and_never_when_nothing_is_new() -> None:
    policy = CheckpointPolicy(every_entries=1000, every_seconds=10)
    ledger = LedgerState()
    assert not ledger.checkpoint_due(policy, T0 + dt.timedelta(hours=1))  # empty ledger
    ledger.append("e0", b"x", T0)
    assert not ledger.checkpoint_due(policy, T0 + dt.timedelta(seconds=9))
    assert ledger.checkpoint_due(policy, T0 + dt.timedelta(seconds=10))  # an idle tick
    checkpoint = ledger.checkpoint(SIGNER, T0 + dt.timedelta(seconds=10))
    assert checkpoint["size"] == 1
    assert not ledger.checkpoint_due(policy, T0 + dt.timedelta(hours=1))  # nothing uncovered
    ledger.append("e1", b"x", T0 + dt.timedelta(seconds=15))
    assert not ledger.checkpoint_due(policy, T0 + dt.timedelta(seconds=19))
    assert ledger.checkpoint_due(policy, T0 + dt.timedelta(seconds=20))


def test_checkpoints_sign_what_the_entries_prove() -> None:
    ledger = LedgerState()
    entries = [ledger.append(f"e{n}", f"p{n}".encode(), T0) for n in range(9)]
    checkpoint = ledger.checkpoint(SIGNER, T0)
    assert check_signature(checkpoint, SIGNER.public_key) is None
    assert checkpoint["tip_hash"] == entries[-1]["entry_hash"]
    result = verify(entries, checkpoints=[checkpoint], public_key=SIGNER.public_key)
    assert result.ok and result.checkpoints_checked == 1 and result.covered == 9
