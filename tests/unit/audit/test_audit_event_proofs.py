"""D23a: a proof is the proof of one audit event: its path inside the entry's batch, the entry's
header and the entry's place under a signed checkpoint; never the other events of the batch."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from audit.domain.chain import ChainTip, append, entry_hash, events_root, verify
from audit.domain.checkpoint import Signer
from audit.domain.ledger import LedgerState
from audit.domain.merkle import Frontier
from audit.domain.proof import ProofError, build_event_proof, check_proof
from audit.handlers import LEDGER_KEY
from biostream.contract import Inbound
from biostream.contracts import AUDIT_EVENT, LedgerCheckpoint, LedgerEntry
from biostream.envelopes import audit_event_items
from biostream.state import StateStore
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ...support import strings
from .conftest import CODEC, T0, SignedLedger, _env, audit
from .test_audit_handler import make, split

SIGNER = Signer(Ed25519PrivateKey.generate())
KEY = SIGNER.public_key


def view(payload: bytes) -> dict[str, Any]:
    event = CODEC.decode(payload, AUDIT_EVENT)
    return {**event, "occurred_at": event["occurred_at"].isoformat()}


def released(hospital: str, n: int) -> bytes:
    """A release event about one record of one hospital (references only)."""
    record = f"{hospital}/MSG-{n:04d}/1"
    event = _env("pseudonymizer").audit(
        "pseudonymizer.released", [record], [f"cur-{hospital}-{n}"], T0,
        hospital=hospital, dataset="cohort-demo", purpose="cohort-demo@1",
    )  # fmt: skip
    return event.value or b""


def mixed_batches() -> list[list[bytes]]:
    """One pseudonymizer transaction released records of two hospitals: batches mix them."""
    return [
        [released(h, n) for n in range(k, k + 3) for h in ("H001", "H002")] for k in (0, 10, 20)
    ]


def batched(batches: list[list[bytes]]) -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    state = LedgerState()
    entries = []
    for items in batches:
        [batch] = _env("pseudonymizer").pack_audit(items, now=T0)
        assert batch.key is not None and batch.value is not None
        entries.append(state.append(batch.key.decode(), batch.value, T0, items))
    return entries, [state.checkpoint(SIGNER, T0)]


def prove(entries: list[LedgerEntry], checkpoints: list[LedgerCheckpoint], sequence: int,
          index: int) -> dict[str, Any]:  # fmt: skip
    items = audit_event_items(CODEC, entries[sequence]["event_payload"])
    return json.loads(
        json.dumps(build_event_proof(entries, checkpoints, sequence, items, index, view))
    )


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_every_event_of_a_batch_of_any_size_has_a_proof_that_checks(size: int) -> None:
    items = [released("H001", n) for n in range(size)]
    entries, checkpoints = batched([items, items[:1]])
    assert entries[0]["hash_version"] == 2 and entries[0]["event_count"] == size
    assert verify(entries, checkpoints=checkpoints, public_key=KEY,
                  events_of=lambda p: audit_event_items(CODEC, p)).ok  # fmt: skip
    for index in range(size):
        proof = prove(entries, checkpoints, 0, index)
        assert check_proof(proof, KEY, view) is None
        assert proof["event_id"] == view(items[index])["event_id"]
        # log2 of the batch's size at most: the proof grows with the batch only logarithmically.
        assert len(proof["event_path"]) <= (size - 1).bit_length()


def test_the_audit_service_writes_version_2_entries_whose_root_covers_the_batch() -> None:
    items = [released("H001", n) for n in range(4)]
    [batch] = _env("pseudonymizer").pack_audit(items, now=T0)
    entries: list[Any] = []
    state = StateStore()
    split(make()(Inbound(batch.topic, 0, 0, None, batch.value, (), 0), state, T0),
          entries, [])  # fmt: skip
    [entry] = entries
    assert (entry["hash_version"], entry["event_count"]) == (2, 4)
    assert entry["events_root"] == events_root(items)
    assert state.get(LEDGER_KEY) is not None


def test_a_proof_for_one_hospital_holds_nothing_of_another_hospitals_events(
    tmp_path: Path,
) -> None:
    batches = mixed_batches()
    entries, checkpoints = batched(batches)
    ledger = SignedLedger(entries, checkpoints, SIGNER).write(tmp_path / "l.jsonl")
    theirs = [view(item) for items in batches for item in items if view(item)["hospital"] == "H002"]
    mine = next(view(item) for item in batches[1] if view(item)["hospital"] == "H001")
    made = audit("prove", "--input", ledger, "--event-id", mine["event_id"],
                 "--output", tmp_path / "p.json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    proof = json.loads((tmp_path / "p.json").read_text())
    assert proof["event"]["inputs"] == mine["inputs"]
    found = "\n".join(strings(proof))
    for event in theirs:
        for reference in (event["event_id"], *event["inputs"], *event["outputs"]):
            assert reference not in found


def test_an_altered_event_is_refused() -> None:
    entries, checkpoints = batched(mixed_batches())
    proof = prove(entries, checkpoints, 1, 2)
    shown = {**proof, "event": {**proof["event"], "hospital": "H009"}}
    assert "not the event proven" in (check_proof(shown, KEY, view) or "")
    # Other bytes (a neighbour's event, shown and named as itself) are not on the path.
    other = json.loads(json.dumps(prove(entries, checkpoints, 1, 3)))
    swapped = {**proof, "event_payload": other["event_payload"], "event": other["event"],
               "event_id": other["event_id"]}  # fmt: skip
    assert "is not in entry 1" in (check_proof(swapped, KEY, view) or "")
    path = {**proof, "event_path": ["00" * 32, *proof["event_path"][1:]]}
    assert "is not in entry 1" in (check_proof(path, KEY, view) or "")


def test_an_altered_entry_header_is_refused() -> None:
    entries, checkpoints = batched(mixed_batches())
    proof = prove(entries, checkpoints, 1, 0)
    for field, value in (
        ("appended_at", (T0 + dt.timedelta(seconds=1)).isoformat()),
        ("event_id", "pseudonymizer-forged"),
        ("payload_sha256", "11" * 32),
    ):
        altered = {**proof, "entry": {**proof["entry"], field: value}}
        assert "does not hash to its entry_hash" in (check_proof(altered, KEY, view) or "")


def test_a_proof_whose_entry_does_not_hold_the_named_event_is_refused() -> None:
    entries, checkpoints = batched(mixed_batches())
    of_entry_0, of_entry_2 = prove(entries, checkpoints, 0, 1), prove(entries, checkpoints, 2, 1)
    # Entry 2's header and place in the ledger, with an event of entry 0.
    moved = {**of_entry_2, **{k: of_entry_0[k] for k in ("event_id", "event", "event_payload")}}
    assert "is not in entry 2" in (check_proof(moved, KEY, view) or "")
    renamed = {**of_entry_0, "event_id": of_entry_2["event_id"]}
    assert "names event" in (check_proof(renamed, KEY, view) or "")
    wanted = of_entry_2["event_id"]
    assert "not for event" in (check_proof(of_entry_0, KEY, view, wanted) or "")
    assert check_proof(of_entry_0, KEY, view, of_entry_0["event_id"]) is None


@pytest.mark.parametrize("where", ["proof", "entry", "batch-as-event"])
def test_a_proof_smuggling_other_events_is_refused(where: str) -> None:
    batches = mixed_batches()
    entries, checkpoints = batched(batches)
    proof = prove(entries, checkpoints, 0, 0)
    payload = base64.b64encode(entries[0]["event_payload"]).decode()
    if where == "proof":
        proof["events"] = [base64.b64encode(e).decode() for e in batches[0]]
        expected = "never has (events)"
    elif where == "entry":
        proof["entry"]["event_payload"] = payload
        expected = "never has (event_payload)"
    else:  # the whole batch passed off as the event
        proof["event_payload"] = payload
        expected = "not one audit event"
    assert expected in (check_proof(proof, KEY, view) or "")


def whole_entry_proof(entries: list[LedgerEntry], checkpoint: LedgerCheckpoint,
                      sequence: int) -> dict[str, Any]:  # fmt: skip
    """A proof in the format `audit prove` wrote before D23a (one whole entry)."""
    from audit.domain.export import checkpoint_to_dict
    from audit.domain.merkle import inclusion_proof, leaf_hash

    entry = entries[sequence]
    leaves = [leaf_hash(e["entry_hash"]) for e in entries[: checkpoint["size"]]]
    return {
        "format": "biostream-inclusion-proof-v1",
        "entry": {
            "sequence": sequence, "appended_at": entry["appended_at"].isoformat(),
            "event_id": entry["event_id"],
            "event_payload": base64.b64encode(entry["event_payload"]).decode(),
            "prev_hash": entry["prev_hash"].hex(), "entry_hash": entry["entry_hash"].hex(),
        },
        "leaf_index": sequence, "tree_size": checkpoint["size"],
        "audit_path": [h.hex() for h in inclusion_proof(sequence, leaves)],
        "checkpoint": checkpoint_to_dict(checkpoint),
    }  # fmt: skip


def version_1_ledger(payloads: list[bytes]) -> tuple[list[LedgerEntry], Frontier, ChainTip]:
    """Entries as the audit service wrote them before D23a."""
    tip, frontier, entries = ChainTip(), Frontier(), []
    for n, payload in enumerate(payloads):
        new_hash = entry_hash(n, tip.last_hash, payload)
        entries.append(
            LedgerEntry(
                sequence=n, appended_at=T0, event_id=f"old-{n}", event_payload=payload,
                prev_hash=tip.last_hash, entry_hash=new_hash, hash_version=1, event_count=0,
                events_root=None,
            )
        )  # fmt: skip
        tip = ChainTip(n + 1, new_hash)
        frontier.append(new_hash)
    return entries, frontier, tip


def test_an_old_ledger_still_verifies_and_grows_with_version_2_entries(tmp_path: Path) -> None:
    [batch] = _env("ingest").pack_audit([released("H001", 1), released("H002", 2)], now=T0)
    single, payload = released("H001", 3), batch.value or b""
    items = audit_event_items(CODEC, payload)
    old, frontier, tip = version_1_ledger([payload, single])
    state = LedgerState(tip=tip, frontier=frontier)
    new = [state.append("new-0", single, T0), state.append("new-1", payload, T0, items)]
    entries = [*old, *new]
    checkpoints = [state.checkpoint(SIGNER, T0)]
    assert [e["hash_version"] for e in entries] == [1, 1, 2, 2]
    ledger = SignedLedger(entries, checkpoints, SIGNER)
    path = ledger.write(tmp_path / "l.jsonl")
    key = ledger.public_key_file(tmp_path / "k")
    verified = audit("verify", "--input", path, "--public-key", key)
    assert verified.returncode == 0, verified.stderr
    # A version 1 entry of one event can still be proved alone; a version 1 batch cannot.
    one = view(single)["event_id"]
    made = audit("prove", "--input", path, "--sequence", "1", "--output", tmp_path / "p.json")
    assert made.returncode == 0, made.stderr
    checked = audit("check-proof", "--proof", tmp_path / "p.json", "--public-key", key,
                    "--event-id", one)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    inside = view(items[0])["event_id"]
    refused = audit("prove", "--input", path, "--event-id", inside)
    assert refused.returncode == 1 and "hash version 1" in refused.stderr
    with pytest.raises(ProofError, match="whole batch of 2 events"):
        build_event_proof(entries, checkpoints, 0, items, 0, view)
    # The same events in a version 2 entry: provable one by one.
    assert check_proof(prove(entries, checkpoints, 3, 1), KEY, view) is None


def test_verify_catches_an_events_root_that_is_not_the_payloads() -> None:
    items = [released("H001", n) for n in range(3)]
    [batch] = _env("pseudonymizer").pack_audit(items, now=T0)
    # Consistently hashed, but its root claims only two of the three events.
    entry, _ = append(ChainTip(), batch.key.decode() if batch.key else "", batch.value or b"",
                      T0, items[:2])  # fmt: skip
    assert verify([entry]).ok  # the hash alone holds ...
    result = verify([entry], events_of=lambda p: audit_event_items(CODEC, p))
    assert not result.ok and "events_root does not match" in (result.problem or "")


def test_check_proof_refuses_a_whole_batch_proof_and_names_the_event_it_proves(
    tmp_path: Path,
) -> None:
    batches = mixed_batches()
    entries, checkpoints = batched(batches)
    ledger = SignedLedger(entries, checkpoints, SIGNER)
    key = ledger.public_key_file(tmp_path / "k")
    (tmp_path / "whole.json").write_text(json.dumps(whole_entry_proof(entries, checkpoints[0], 1)))
    whole = audit("check-proof", "--proof", tmp_path / "whole.json", "--public-key", key)
    assert whole.returncode == 1 and "not one event" in whole.stderr

    path = ledger.write(tmp_path / "l.jsonl")
    wanted = view(batches[2][3])
    made = audit("prove", "--input", path, "--event-id", wanted["event_id"],
                 "--output", tmp_path / "p.json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    ok = audit("check-proof", "--proof", tmp_path / "p.json", "--public-key", key,
               "--event-id", wanted["event_id"])  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert f"event {wanted['event_id']} (pseudonymizer.released, hospital H002)" in ok.stdout
    assert "is event 4 of 6 in entry 2" in ok.stdout
    other = view(batches[2][0])["event_id"]
    wrong = audit("check-proof", "--proof", tmp_path / "p.json", "--public-key", key,
                  "--event-id", other)  # fmt: skip
    assert wrong.returncode == 1 and f"not for event {other}" in wrong.stderr

    # A batch entry by sequence (or by its batch id) names no single event.
    for how, value in (("--sequence", "2"), ("--event-id", entries[2]["event_id"])):
        batch = audit("prove", "--input", path, how, value)
        assert batch.returncode == 2 and "a batch of 6 events" in batch.stderr
