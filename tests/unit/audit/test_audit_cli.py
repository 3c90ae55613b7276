"""`audit verify`, `prove`, `check-proof`, `report` and `fhir` on exported files, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from audit.domain.chain import ChainTip, append
from audit.domain.checkpoint import Signer
from audit.domain.fhir import structural_problems
from biostream.contracts import LedgerEntry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .conftest import T0, SignedLedger, audit


def flip(entry: LedgerEntry) -> LedgerEntry:
    payload = bytearray(entry["event_payload"])
    payload[-1] ^= 0x01
    return {**entry, "event_payload": bytes(payload)}


def tampered(kind: str, entries: list[LedgerEntry]) -> tuple[list[LedgerEntry], int]:
    e = list(entries)
    if kind == "byte":
        e[4] = flip(e[4])
        return e, 4
    if kind == "delete":
        del e[6]
        return e, 6
    if kind == "insert":
        # A well-formed entry (a real event, chained to entry 2): the next original breaks.
        forged, _ = append(ChainTip(3, e[2]["entry_hash"]), "forged", e[0]["event_payload"], T0)
        e.insert(3, forged)
        return e, 4
    if kind == "swap":
        e[7], e[8] = e[8], e[7]
        return e, 7
    assert kind == "cut"
    return e[:8], 8


def test_an_intact_export_verifies(signed_ledger: SignedLedger, tmp_path: Path) -> None:
    key = signed_ledger.public_key_file(tmp_path / "pub.key")
    result = audit(
        "verify", "--input", signed_ledger.write(tmp_path / "l.jsonl"), "--public-key", key
    )
    assert result.returncode == 0, result.stderr
    assert "13 entries, 2 signed checkpoints verified, 10 entries covered" in result.stdout


@pytest.mark.parametrize("kind", ["byte", "delete", "insert", "swap", "cut"])
def test_each_kind_of_tampering_fails_naming_the_first_bad_entry(
    signed_ledger: SignedLedger, tmp_path: Path, kind: str
) -> None:
    entries, first_bad = tampered(kind, signed_ledger.entries)
    path = signed_ledger.write(tmp_path / "l.jsonl", entries)
    result = audit(
        "verify", "--input", path, "--public-key", signed_ledger.public_key_file(tmp_path / "k")
    )
    assert result.returncode == 1
    assert f"BROKEN at entry {first_bad}:" in result.stderr


@pytest.mark.parametrize("forgery", ["bad-signature", "other-key"])
def test_a_forged_checkpoint_fails(
    signed_ledger: SignedLedger, tmp_path: Path, forgery: str
) -> None:
    checkpoints = list(signed_ledger.checkpoints)
    if forgery == "bad-signature":
        checkpoints[0] = {**checkpoints[0], "size": 3}
    else:
        c = checkpoints[1]
        other = Signer(Ed25519PrivateKey.generate())
        checkpoints[1] = other.checkpoint(c["size"], c["root_hash"], c["tip_hash"], T0)
    path = signed_ledger.write(tmp_path / "l.jsonl", checkpoints=checkpoints)
    result = audit(
        "verify", "--input", path, "--public-key", signed_ledger.public_key_file(tmp_path / "k")
    )
    assert result.returncode == 1
    assert "forged checkpoint" in result.stderr


def test_checkpoints_without_a_public_key_are_refused(
    signed_ledger: SignedLedger, tmp_path: Path
) -> None:
    result = audit("verify", "--input", signed_ledger.write(tmp_path / "l.jsonl"))
    assert result.returncode == 2 and "--public-key" in result.stderr


def test_prove_and_check_proof_with_only_the_proof_and_the_public_key(
    signed_ledger: SignedLedger, tmp_path: Path
) -> None:
    ledger = signed_ledger.write(tmp_path / "l.jsonl")
    key = signed_ledger.public_key_file(tmp_path / "pub.key")
    event_id = signed_ledger.entries[7]["event_id"]
    made = audit(
        "prove", "--input", ledger, "--event-id", event_id, "--output", tmp_path / "p.json"
    )
    assert made.returncode == 0, made.stderr
    proof = json.loads((tmp_path / "p.json").read_text())
    assert proof["leaf_index"] == 7 and proof["tree_size"] == 10
    ledger.unlink()  # the check needs nothing but the proof and the key
    ok = audit("check-proof", "--proof", tmp_path / "p.json", "--public-key", key)
    assert ok.returncode == 0, ok.stderr
    assert "entry 7" in ok.stdout

    proof["audit_path"][0] = "00" * 32
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    bad = audit("check-proof", "--proof", tmp_path / "bad.json", "--public-key", key)
    assert bad.returncode == 1 and "not included" in bad.stderr

    other = Signer(Ed25519PrivateKey.generate())
    SignedLedger([], [], other).public_key_file(tmp_path / "other.key")
    wrong = audit(
        "check-proof", "--proof", tmp_path / "p.json", "--public-key", tmp_path / "other.key"
    )
    assert wrong.returncode == 1 and "not the trusted key" in wrong.stderr


def test_prove_refuses_an_entry_no_checkpoint_covers_yet(
    signed_ledger: SignedLedger, tmp_path: Path
) -> None:
    result = audit(
        "prove", "--input", signed_ledger.write(tmp_path / "l.jsonl"), "--sequence", "11"
    )
    assert result.returncode == 1 and "no signed checkpoint covers entry 11" in result.stderr


def test_report_and_fhir_export(signed_ledger: SignedLedger, tmp_path: Path) -> None:
    ledger = signed_ledger.write(tmp_path / "l.jsonl")
    policies = Path(__file__).resolve().parents[3] / "policies"
    result = audit("report", "--input", ledger, "--policies", policies)
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["dataset"] == "cohort-demo" and record["counts"]["released"] == 3
    assert record["recipients"] == ["research project approved under DRB-DEMO-2026-001"]
    # The conftest ledger predates D23c: the demo's policy file (same version) fills the items,
    # and the report says so.
    demo_policy = json.loads((policies / "cohort-demo.json").read_text())
    assert record["items_released"] == sorted(demo_policy["record_types"]) != []
    assert record["policies"][0]["source"] == "policy-file"
    assert "not announced in the ledger (written before D23c)" in result.stderr
    without = audit("report", "--input", ledger)
    assert without.returncode == 0, without.stderr
    [unknown] = json.loads(without.stdout)
    assert unknown["items_released"] == [] and unknown["policies"][0]["source"] == "unknown"

    out = audit("fhir", "--input", ledger, "--hospital", "H001", "--output", tmp_path / "f.ndjson")
    assert out.returncode == 0, out.stderr
    resources = [json.loads(line) for line in (tmp_path / "f.ndjson").read_text().splitlines()]
    assert len(resources) == 13
    assert all(structural_problems(r) == [] for r in resources)
    none = audit("fhir", "--input", ledger, "--hospital", "H999", "--output", tmp_path / "g.ndjson")
    assert none.returncode == 0 and (tmp_path / "g.ndjson").read_text() == ""


def test_trace_refuses_who_is_not_an_authorised_auditor(
    signed_ledger: SignedLedger, tmp_path: Path
) -> None:
    result = audit(
        "trace", "--input", signed_ledger.write(tmp_path / "l.jsonl"),
        "--reference", "H001/M0/0", "--auditor", "mallory", "--case", "C-1",
    )  # fmt: skip
    assert result.returncode == 3 and "not an authorised auditor" in result.stderr
    assert result.stdout == ""


def test_consistency_proof_between_two_checkpoints(
    signed_ledger: SignedLedger, tmp_path: Path
) -> None:
    ledger = signed_ledger.write(tmp_path / "l.jsonl")
    key = signed_ledger.public_key_file(tmp_path / "pub.key")
    made = audit(
        "prove", "--input", ledger, "--consistency", "5", "10", "--output", tmp_path / "c.json"
    )
    assert made.returncode == 0, made.stderr
    ok = audit("check-proof", "--proof", tmp_path / "c.json", "--public-key", key)
    assert ok.returncode == 0, ok.stderr
    assert "of 10 entries extends the one of 5" in ok.stdout
    proof = json.loads((tmp_path / "c.json").read_text())
    proof["proof"][-1] = "11" * 32
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    bad = audit("check-proof", "--proof", tmp_path / "bad.json", "--public-key", key)
    assert bad.returncode == 1 and "does not extend" in bad.stderr


@pytest.mark.parametrize("reference", ["홍길동", "9710139019902", "010-1234-5678", "a b"])
def test_trace_refuses_to_record_what_is_not_a_reference(tmp_path: Path, reference: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "audit", "trace", "--reference", reference,
         "--auditor", "auditor-1", "--case", "C-1", "--input", str(tmp_path / "none.jsonl")],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "BIOSTREAM_AUTHORISED_AUDITORS": "auditor-1",
             # Nothing listens here: the refusal must come before any Kafka connection.
             "BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9"},
    )  # fmt: skip
    assert result.returncode == 2 and "not a pipeline reference" in result.stderr


def test_a_ledger_of_batches_reports_proves_and_exports_every_event(
    signed_ledger: SignedLedger, batched_ledger: SignedLedger, tmp_path: Path
) -> None:
    """D15: readers unpack batch entries, so what they say about the events is unchanged."""
    single = signed_ledger.write(tmp_path / "single.jsonl")
    batched = batched_ledger.write(tmp_path / "batched.jsonl")
    assert len(batched_ledger.entries) < len(signed_ledger.entries)
    verified = audit(
        "verify", "--input", batched,
        "--public-key", batched_ledger.public_key_file(tmp_path / "b.key"),
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr

    policies = Path(__file__).resolve().parents[3] / "policies"
    reports = [audit("report", "--input", f, "--policies", policies) for f in (single, batched)]
    assert all(r.returncode == 0 for r in reports), [r.stderr for r in reports]
    assert json.loads(reports[0].stdout) == json.loads(reports[1].stdout)

    exported = []
    for name, ledger in (("single", single), ("batched", batched)):
        out = audit("fhir", "--input", ledger, "--hospital", "H001", "--output", tmp_path / name)
        assert out.returncode == 0, out.stderr
        exported.append(
            {json.loads(line)["id"] for line in (tmp_path / name).read_text().splitlines()}
        )
    assert exported[0] == exported[1] and len(exported[0]) == 13

    # An event inside a batch: its path inside the batch, then the entry that holds it (D23a).
    event_id = signed_ledger.entries[6]["event_id"]
    made = audit("prove", "--input", batched, "--event-id", event_id,
                 "--output", tmp_path / "p.json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    proof = json.loads((tmp_path / "p.json").read_text())
    assert proof["leaf_index"] == 6 // 4 and proof["event_index"] == 6 % 4
    assert proof["event_id"] == event_id and "event_payload" not in proof["entry"]
