"""D34: the ledger signing key rotates through a signed hand-over, and `verify` walks the keys."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from audit.adapters.signing_keys import load_keyring
from audit.domain.chain import verify
from audit.domain.checkpoint import Signer, public_key_pem
from audit.domain.export import checkpoint_from_dict, checkpoint_to_dict
from audit.domain.ledger import CheckpointPolicy, LedgerState
from audit.domain.rotation import (
    HandoverPlan,
    Keyring,
    KeyringError,
    check_handover,
    hand_over,
    handover_plan,
    previous_signer_id,
    version_number,
    walk_keys,
)
from audit.handlers import SIGNER_KEY, AuditMetrics, LedgerAppendHandler
from audit.settings import AuditSettings
from biostream.contracts import LedgerCheckpoint, LedgerEntry
from biostream.state import StateStore
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from .conftest import CODEC, T0, TOPICS, _env, audit
from .test_audit_handler import event, split

K1, K2, K3 = (Signer(Ed25519PrivateKey.generate()) for _ in range(3))


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def grow(state: LedgerState, entries: list[LedgerEntry], n: int) -> None:
    for _ in range(n):
        i = len(entries)
        payload = _env("ingest").audit("ingest.accepted", [f"in/{i}"], [f"o/{i}"], at(i)).value
        assert payload is not None
        entries.append(state.append(f"e{i}", payload, at(i)))


def rotated_ledger() -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    """k1 signs, hands over to k2, k2 signs, hands over to k3, k3 signs: two rotations."""
    state, entries, checkpoints = LedgerState(), [], []  # type: ignore[var-annotated]
    grow(state, entries, 3)
    checkpoints.append(state.checkpoint(K1, at(10)))
    grow(state, entries, 2)
    checkpoints.append(state.checkpoint(K1, at(11), HandoverPlan(K1, K2, "k2")))
    grow(state, entries, 3)
    checkpoints.append(state.checkpoint(K2, at(12)))
    checkpoints.append(state.checkpoint(K2, at(13), HandoverPlan(K2, K3, "k3")))
    grow(state, entries, 2)
    checkpoints.append(state.checkpoint(K3, at(14)))
    return entries, checkpoints


def test_a_chain_of_two_rotations_verifies_from_the_first_key() -> None:
    entries, checkpoints = rotated_ledger()
    result = verify(entries, checkpoints=checkpoints, public_key=K1.public_key)
    assert result.ok, result.problem
    assert result.covered == len(entries) == 10
    assert [(k.key_id, k.version, k.handover_size) for k in result.keys] == [
        (K1.key_id, None, None),
        (K2.key_id, "k2", 5),
        (K3.key_id, "k3", 8),
    ]
    # The hand-over is signed by the old key, names the new one, and is activated at its time.
    handover = checkpoints[1]["handover"]
    assert checkpoints[1]["key_id"] == K1.key_id
    assert handover is not None and handover["new_key_id"] == K2.key_id
    assert handover["activated_at"] == checkpoints[1]["checkpoint_at"]


def test_a_later_key_is_not_a_trust_anchor_for_the_past() -> None:
    entries, checkpoints = rotated_ledger()
    result = verify(entries, checkpoints=checkpoints, public_key=K2.public_key)
    assert not result.ok and "unknown key" in (result.problem or "")
    assert result.bad_checkpoint_size == 3


def test_a_hand_over_signed_by_a_key_that_is_not_the_trusted_one_is_forged() -> None:
    entries, checkpoints = rotated_ledger()
    intruder, accomplice = (Signer(Ed25519PrivateKey.generate()) for _ in range(2))
    state = LedgerState()
    grow(state, [], 10)
    # The intruder signs a hand-over to a key of his own where the ledger changed hands to k3.
    forged = state.checkpoint(intruder, at(13), HandoverPlan(intruder, accomplice, "k3"))
    forged_ledger = [*checkpoints[:3], forged, state.checkpoint(accomplice, at(14))]
    result = verify(entries, checkpoints=forged_ledger, public_key=K1.public_key)
    assert not result.ok
    assert result.problem == (
        f"forged hand-over at size 10: signed by key {intruder.key_id}, not by the trusted key "
        f"{K2.key_id}"
    )
    assert result.first_bad_sequence is None and result.bad_checkpoint_size == 10


def test_a_hand_over_grafted_on_a_genuine_checkpoint_is_forged() -> None:
    entries, checkpoints = rotated_ledger()
    intruder, accomplice = (Signer(Ed25519PrivateKey.generate()) for _ in range(2))
    genuine = checkpoints[0]  # k1's own checkpoint, valid signature
    grafted = hand_over(
        {**genuine, "key_id": intruder.key_id}, HandoverPlan(intruder, accomplice, "k2")
    )
    lying: LedgerCheckpoint = {**genuine, "handover": grafted["handover"]}
    assert check_handover(lying, K1.public_key) == (
        f"forged hand-over at size 3: not signed by the trusted key {K1.key_id}"
    )
    result = verify(entries, checkpoints=[lying, *checkpoints[1:]], public_key=K1.public_key)
    assert not result.ok and "forged hand-over at size 3" in (result.problem or "")


def test_a_checkpoint_signed_by_an_unknown_key_is_rejected() -> None:
    entries, checkpoints = rotated_ledger()
    # The new key starts signing without the hand-over that would introduce it.
    plain: LedgerCheckpoint = {**checkpoints[1], "handover": None}
    result = verify(entries, checkpoints=[checkpoints[0], plain, *checkpoints[2:]],
                    public_key=K1.public_key)  # fmt: skip
    assert not result.ok
    assert result.problem == (
        f"checkpoint at size 8 is signed by unknown key {K2.key_id}, not the trusted key "
        f"{K1.key_id}: no hand-over leads to it"
    )


def test_a_retired_key_cannot_sign_after_its_hand_over() -> None:
    entries, checkpoints = rotated_ledger()
    state = LedgerState()
    grow(state, [], 10)
    late = state.checkpoint(K1, at(20))  # the old key, still held by someone, signs again
    result = verify(entries, checkpoints=[*checkpoints, late], public_key=K1.public_key)
    assert not result.ok
    assert result.problem == (
        f"checkpoint at size 10 is signed by key {K1.key_id}, retired by the hand-over at size 5"
    )


def test_a_hand_over_needs_the_new_keys_countersignature_and_its_own_id() -> None:
    _, checkpoints = rotated_ledger()
    handover = checkpoints[1]["handover"]
    assert handover is not None
    bad_counter = {**checkpoints[1], "handover": {**handover, "new_key_signature": bytes(64)}}
    assert "not countersigned by the new key" in (
        check_handover(bad_counter, K1.public_key) or ""  # type: ignore[arg-type]
    )
    changed = {**checkpoints[1], "handover": {**handover, "new_key_id": K3.key_id}}
    assert "forged hand-over" in (check_handover(changed, K1.public_key) or "")  # type: ignore[arg-type]
    # Re-signed by k1 and k2 with another activation time: well signed, but not this checkpoint's.
    later = hand_over({**checkpoints[1], "checkpoint_at": at(99), "handover": None},
                      HandoverPlan(K1, K2, "k2"))  # fmt: skip
    moved = {**checkpoints[1], "handover": later["handover"]}
    assert "activated at another time" in (check_handover(moved, K1.public_key) or "")  # type: ignore[arg-type]
    walk = walk_keys([checkpoints[0], bad_counter], K1.public_key)  # type: ignore[list-item]
    assert not walk.ok and walk.bad_checkpoint_size == 5


def test_the_hand_over_is_planned_from_the_key_that_signed_last() -> None:
    ring = Keyring({"k1": K1, "k2": K2})
    assert ring.active is K2 and ring.oldest is K1
    assert handover_plan(None, ring) is None  # no checkpoint yet: the active key signs the first
    assert handover_plan(K2.key_id, ring) is None
    assert handover_plan(K1.key_id, ring) == HandoverPlan(K1, K2, "k2")
    # Versions that never signed are skipped: k1 hands over to k3 directly.
    assert handover_plan(K1.key_id, Keyring({"k1": K1, "k2": K2, "k3": K3})) == HandoverPlan(
        K1, K3, "k3"
    )
    missing = handover_plan(K1.key_id, Keyring({"k2": K2}))
    assert isinstance(missing, str) and K1.key_id in missing
    # A state from before D34 names no key: its checkpoints were signed by the oldest one held.
    assert previous_signer_id(None, ring, has_checkpoint=True) == K1.key_id
    assert previous_signer_id(None, ring, has_checkpoint=False) is None
    assert previous_signer_id(K2.key_id, ring, has_checkpoint=True) == K2.key_id
    assert version_number("k12") == 12
    for bad in ("v1", "k0", "k", "K1"):
        with pytest.raises(KeyringError):
            version_number(bad)
    with pytest.raises(KeyringError):
        Keyring({"k1": K1, "k2": K1})


def restored(state: StateStore, keys: tuple[str, ...] | None = None) -> StateStore:
    """A new process's state: everything the changelog holds (or only ``keys``)."""
    fresh = StateStore()
    for key in keys if keys is not None else list(state.keys_with_prefix("")):
        fresh.restore(key, state.get(key))
    return fresh


def make(ring: Keyring, registry: CollectorRegistry | None = None) -> LedgerAppendHandler:
    return LedgerAppendHandler(
        CODEC, TOPICS, _env("audit"), AuditMetrics.create(registry or CollectorRegistry()),
        ring, CheckpointPolicy(every_entries=4, every_seconds=60),
    )  # fmt: skip


def test_the_service_hands_over_at_once_when_restarted_with_a_new_key() -> None:
    state, entries, checkpoints = StateStore(), [], []  # type: ignore[var-annotated]
    handler = make(Keyring({"k1": K1}))
    for n in range(5):
        split(handler(event(n), state, T0 + dt.timedelta(seconds=n)), entries, checkpoints)
    assert [c["key_id"] for c in checkpoints] == [K1.key_id]
    # Restart with k2 added: the first idle tick writes the hand-over, before anything else.
    handler, state = make(Keyring({"k1": K1, "k2": K2})), restored(state)
    split(handler.tick(state, T0 + dt.timedelta(seconds=6)), entries, checkpoints)
    handover = checkpoints[-1]
    assert handover["key_id"] == K1.key_id and handover["size"] == 5
    assert handover["handover"] is not None and handover["handover"]["new_key_version"] == "k2"
    assert state.get(SIGNER_KEY) == K2.key_id.encode()
    assert handler.tick(state, T0 + dt.timedelta(seconds=7)) == []  # once
    for n in range(5, 9):
        split(handler(event(n), state, T0 + dt.timedelta(seconds=n)), entries, checkpoints)
    assert [(c["size"], c["key_id"]) for c in checkpoints] == [
        (4, K1.key_id), (5, K1.key_id), (9, K2.key_id),
    ]  # fmt: skip
    # A restart with the old key removed (after the hand-over) keeps signing with k2.
    handler, state = make(Keyring({"k2": K2})), restored(state)
    for n in range(9, 13):
        split(handler(event(n), state, T0 + dt.timedelta(seconds=n)), entries, checkpoints)
    assert checkpoints[-1]["key_id"] == K2.key_id and checkpoints[-1]["size"] == 13
    result = verify(entries, checkpoints=checkpoints, public_key=K1.public_key)
    assert result.ok, result.problem
    assert [k.key_id for k in result.keys] == [K1.key_id, K2.key_id]


def test_without_the_old_key_no_checkpoint_is_signed_but_nothing_is_lost() -> None:
    state, entries, checkpoints = StateStore(), [], []  # type: ignore[var-annotated]
    handler = make(Keyring({"k1": K1}))
    for n in range(4):
        split(handler(event(n), state, T0), entries, checkpoints)
    registry = CollectorRegistry()
    # k1 deleted before it handed over: k2 alone cannot be trusted by any verifier.
    handler, state = make(Keyring({"k2": K2}), registry), restored(state)
    for n in range(4, 9):
        split(handler(event(n), state, T0), entries, checkpoints)
    assert handler.tick(state, T0 + dt.timedelta(hours=1)) == []
    assert len(entries) == 9 and [c["size"] for c in checkpoints] == [4]
    assert registry.get_sample_value("biostream_audit_verification_ok") == 0
    # With k1 back beside k2, the hand-over is written and k2 signs from then on.
    handler, state = make(Keyring({"k1": K1, "k2": K2})), restored(state)
    split(handler.tick(state, T0 + dt.timedelta(hours=1)), entries, checkpoints)
    assert checkpoints[-1]["key_id"] == K1.key_id and checkpoints[-1]["handover"] is not None
    assert checkpoints[-1]["size"] == 9
    assert verify(entries, checkpoints=checkpoints, public_key=K1.public_key).ok


def test_a_state_from_before_d34_hands_over_from_the_oldest_key() -> None:
    state, entries, checkpoints = StateStore(), [], []  # type: ignore[var-annotated]
    handler = make(Keyring({"k1": K1}))
    for n in range(4):
        split(handler(event(n), state, T0), entries, checkpoints)
    old_state = restored(state, ("ledger",))  # a state written before D34: no signer key
    handler = make(Keyring({"k1": K1, "k2": K2}))
    split(handler.tick(old_state, T0), entries, checkpoints)
    assert checkpoints[-1]["key_id"] == K1.key_id and checkpoints[-1]["handover"] is not None
    assert verify(entries, checkpoints=checkpoints, public_key=K1.public_key).ok


def test_hand_overs_survive_avro_and_the_export(tmp_path: Path) -> None:
    entries, checkpoints = rotated_ledger()
    decoded = [
        CODEC.decode(CODEC.encode("LedgerCheckpoint", c), "LedgerCheckpoint") for c in checkpoints
    ]
    assert decoded == checkpoints
    assert [checkpoint_from_dict(checkpoint_to_dict(c)) for c in checkpoints] == checkpoints
    from audit.domain.export import checkpoint_to_json, entry_to_json

    export = tmp_path / "ledger.jsonl"
    lines = [entry_to_json(e) for e in entries] + [checkpoint_to_json(c) for c in checkpoints]
    export.write_text("".join(line + "\n" for line in lines))
    (tmp_path / "ledger.jsonl.pub").write_text(public_key_pem(K1.public_key))
    result = audit("verify", "--input", export)
    assert result.returncode == 0, result.stderr
    assert "ledger intact: 10 entries, 5 signed checkpoints verified" in result.stdout
    assert (
        f"signing key {K3.key_id} (k3) trusted through the hand-over signed by key {K2.key_id} at size 8"
        in result.stdout
    )
    # The same export with a forged hand-over in it fails, naming it.
    intruder = Signer(Ed25519PrivateKey.generate())
    state = LedgerState()
    grow(state, [], 8)
    forged = state.checkpoint(intruder, at(13), HandoverPlan(intruder, K3, "k3"))
    tampered = [checkpoint_to_json(c) for c in [*checkpoints[:3], forged, checkpoints[4]]]
    export.write_text("".join(line + "\n" for line in [*lines[:10], *tampered]))
    result = audit("verify", "--input", export)
    assert result.returncode == 1
    assert f"forged hand-over at size 8: signed by key {intruder.key_id}" in result.stderr


def _seed(signer: Signer) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return raw.hex()


def test_keys_load_from_a_directory_of_versioned_files(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    for version, signer in (("k1", K1), ("k2", K2)):
        path = keys / f"ledger.{version}.key"
        path.write_text(_seed(signer) + "\n")
        os.chmod(path, 0o600)
    ring = load_keyring(AuditSettings.model_validate({"ledger_signing_keys_dir": keys}))
    assert ring.active_version == "k2" and ring.active.key_id == K2.key_id
    assert ring.by_key_id(K1.key_id) is not None
    single = AuditSettings.model_validate({"ledger_signing_key": SecretStr(_seed(K1))})
    assert load_keyring(single).versions == ["k1"]
    both: dict[str, Any] = {
        "ledger_signing_keys_dir": keys,
        "ledger_signing_key": SecretStr(_seed(K1)),
    }
    with pytest.raises(KeyringError, match="not both"):
        load_keyring(AuditSettings.model_validate(both))
    os.chmod(keys / "ledger.k2.key", 0o640)
    with pytest.raises(KeyringError, match="group or others"):
        load_keyring(AuditSettings.model_validate({"ledger_signing_keys_dir": keys}))
    os.chmod(keys / "ledger.k2.key", 0o600)
    (keys / "ledger.v3.key").write_text(_seed(K3))
    os.chmod(keys / "ledger.v3.key", 0o600)
    with pytest.raises(KeyringError, match="k1, k2"):
        load_keyring(AuditSettings.model_validate({"ledger_signing_keys_dir": keys}))
    # The key values never appear in what the commands print.
    (keys / "ledger.v3.key").unlink()
    shown = audit("public-key", BIOSTREAM_LEDGER_SIGNING_KEYS_DIR=str(keys))
    assert shown.returncode == 0, shown.stderr
    assert _seed(K2) not in shown.stdout and _seed(K1) not in shown.stdout


def _view(payload: bytes) -> dict[str, Any]:
    decoded = CODEC.decode(payload, "AuditEvent")
    return {**decoded, "occurred_at": decoded["occurred_at"].isoformat()}


def test_proofs_under_a_later_key_carry_the_hand_overs_from_the_first_key() -> None:
    from audit.domain.proof import build_consistency_proof, build_event_proof, check_proof

    entries, checkpoints = rotated_ledger()
    payload = entries[9]["event_payload"]
    proof = build_event_proof(entries, checkpoints, 9, [payload], 0, _view)
    assert proof["checkpoint"]["key_id"] == K3.key_id
    assert [h["size"] for h in proof["key_handovers"]] == [5, 8]
    assert check_proof(proof, K1.public_key, _view) is None
    # Without the hand-overs, or from a key that is not the first, the proof does not hold.
    stripped = {k: v for k, v in proof.items() if k != "key_handovers"}
    assert "unknown key" in (check_proof(stripped, K1.public_key, _view) or "")
    assert "forged hand-over at size 5" in (check_proof(proof, K2.public_key, _view) or "")
    # An entry under k1's first checkpoint needs no hand-over: the proof is as before D34.
    early = build_event_proof(entries, checkpoints, 0, [entries[0]["event_payload"]], 0, _view)
    assert "key_handovers" not in early and check_proof(early, K1.public_key, _view) is None
    # A consistency proof across both rotations.
    across = build_consistency_proof(entries, checkpoints[0], checkpoints[-1], checkpoints)
    assert check_proof(across, K1.public_key, _view) is None
    forged = {**across, "key_handovers": []}
    assert "unknown key" in (check_proof(forged, K1.public_key, _view) or "")
