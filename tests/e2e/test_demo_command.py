"""The main job as a newcomer runs it: `biostream-dev demo` (what `make demo` calls)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SUMMARY_KEYS = {
    "records_published", "dead_letters", "identity_records", "persons", "curated_records",
    "audit_entries", "audit_messages", "audit_verified", "elapsed_s",
}  # fmt: skip


def demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "biostream_harness", "demo", *args]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def started_pids(run_dir: Path) -> list[int]:
    pids = [int(p.read_text()) for p in (run_dir / "logs").glob("*.pid")]
    broker = json.loads((run_dir / "broker" / "broker.json").read_text())
    return [*pids, int(broker["pid"])]


def test_demo_runs_the_pipeline_and_writes_summary_and_exports(tmp_path: Path) -> None:
    run_dir, out = tmp_path / "run", tmp_path / "out"
    result = subprocess.run(
        demo("--records", "600", "--run-dir", str(run_dir), "--summary", str(out / "summary.json"),
             "--curated-export", str(out / "curated.jsonl"), "--ledger-export", str(out / "ledger.jsonl")),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "pipeline OK" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["audit_verified"] is True
    # One ledger entry per audit message; services pack a transaction's events into one.
    assert summary["audit_entries"] == summary["audit_messages"]
    assert summary["audit_events"] > summary["audit_messages"] > 0
    # D31: every chained event names a service principal the broker authenticated.
    assert set(summary["audit_principals"]) == {
        "User:svc-ingest",
        "User:svc-linkage",
        "User:svc-pseudonymizer",
    }
    assert sum(summary["audit_principals"].values()) == summary["audit_events"]
    assert summary["dead_letters"] == summary["truth_malformed_messages"] > 0
    curated = (out / "curated.jsonl").read_text().splitlines()
    assert len(curated) == summary["curated_records"] > 0
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "entry" for r in ledger) == summary["audit_entries"]
    assert sum(r["kind"] == "checkpoint" for r in ledger) == summary["audit_checkpoints"] > 0
    assert summary["audit_covered"] == summary["audit_entries"]  # the tail is signed too
    assert summary["reconciliation"]["unaccounted"] == 0
    assert summary["reconciliation"]["published"] == summary["records_published"]
    assert summary["reconciliation"]["dead_lettered"] == summary["dead_letters"]
    # D23b: the export's public key lies beside it and is in the summary; verify needs nothing
    # else (the run directory, where the key was made, goes with the next run).
    key_file = out / "ledger.jsonl.pub"
    assert summary["ledger_public_key_file"] == str(key_file)
    assert key_file.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert f"ledger public key: {key_file} (key id {summary['ledger_key_id']})" in result.stdout
    seed = (run_dir / "secrets" / "ledger_signing.key").read_text().strip()
    written = [(out / "ledger.jsonl").read_text(), key_file.read_text(), result.stdout]
    assert not any(seed in text for text in written)
    verify = subprocess.run(
        [sys.executable, "-m", "audit", "verify", "--input", str(out / "ledger.jsonl")],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert (
        f"{key_file} (found beside the export), key id {summary['ledger_key_id']}" in verify.stdout
    )
    # The processing record over the exported ledger, with no policy file (D23c): the ledger
    # says which policy was in force, so the released record types are listed per dataset.
    report = subprocess.run(
        [sys.executable, "-m", "audit", "report", "--input", str(out / "ledger.jsonl")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    [record] = json.loads(report.stdout)
    policy = json.loads(
        (Path(__file__).resolve().parents[2] / "policies" / "cohort-demo.json").read_text()
    )
    released_types = {json.loads(line)["resource_type"] for line in curated}
    assert record["dataset"] == "cohort-demo" and record["notes"] == []
    assert set(record["items_released"]) == set(policy["record_types"]) >= released_types
    assert [p["source"] for p in record["policies"]] == ["ledger"]
    assert record["counts"]["released"] == summary["curated_records"]
    assert not any(alive(pid) for pid in started_pids(run_dir))


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        demo("--records", "40000", "--run-dir", str(run_dir)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    for line in process.stdout:  # wait until the feed is flowing through running services
        lines.append(line)
        if line.strip().startswith("published") or time.monotonic() > deadline:
            break
    assert any(line.strip().startswith("published") for line in lines), "".join(lines)
    pids = started_pids(run_dir)
    assert len(pids) == 5 and all(alive(pid) for pid in pids)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(lines) + rest
    assert "everything started was stopped" in rest
    assert not [pid for pid in pids if alive(pid)]
