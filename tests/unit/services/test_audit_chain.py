"""Every kind of tampering with the ledger is detected, in memory and through `audit verify`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from audit.domain.chain import ChainTip, append, verify
from audit.domain.export import entry_from_json, entry_to_json
from biostream.codec import AvroCodec
from biostream.contracts import LedgerEntry
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.topics import Topics

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def ledger(n: int = 6) -> list[LedgerEntry]:
    """Entries of real audit events (`audit verify` checks each entry holds audit events)."""
    envelopes = Envelopes("ingest", "User:svc-ingest", AvroCodec(SchemaRegistry()), Topics("u."))
    tip, entries = ChainTip(), []
    for i in range(n):
        event = envelopes.audit("ingest.accepted", [f"u.feed.H001/0/{i}"], [f"H001/M{i}/0"], NOW)
        entry, tip = append(tip, f"e{i}", event.value or b"", NOW)
        entries.append(entry)
    return entries


def test_an_untouched_ledger_verifies() -> None:
    result = verify(ledger())
    assert result.ok and result.entries == 6


def test_one_changed_byte_is_detected() -> None:
    entries = ledger()
    entries[3] = {**entries[3], "event_payload": b"payload-X"}
    result = verify(entries)
    assert not result.ok and result.first_bad_sequence == 3


def test_a_deleted_entry_is_detected() -> None:
    entries = ledger()
    del entries[2]
    assert verify(entries).first_bad_sequence == 2


def test_an_inserted_entry_is_detected() -> None:
    entries = ledger()
    forged, _ = append(ChainTip(2, entries[1]["entry_hash"]), "forged", b"forged", NOW)
    entries.insert(2, forged)
    assert verify(entries).first_bad_sequence == 3


def test_two_swapped_entries_are_detected() -> None:
    entries = ledger()
    entries[1], entries[2] = entries[2], entries[1]
    assert verify(entries).first_bad_sequence == 1


def test_a_recomputed_chain_after_a_change_still_breaks_at_the_next_original() -> None:
    entries = ledger()
    # Rewriting one entry consistently (new hash) breaks the link to the untouched entry after it.
    rewritten, _ = append(ChainTip(2, entries[1]["entry_hash"]), "e2", b"changed", NOW)
    entries[2] = rewritten
    assert verify(entries).first_bad_sequence == 3


def test_a_cut_tail_is_detected_against_the_expected_length() -> None:
    entries = ledger()[:4]
    assert verify(entries).ok  # a chain alone cannot see a cut tail ...
    result = verify(entries, expected_length=6)  # ... a checkpoint's length can
    assert not result.ok and result.first_bad_sequence == 4


def write(path: Path, entries: list[LedgerEntry]) -> Path:
    path.write_text("".join(entry_to_json(e) + "\n" for e in entries))
    return path


def audit_verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", "verify", "--input", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_export_round_trips() -> None:
    entries = ledger()
    assert [entry_from_json(entry_to_json(e), 1) for e in entries] == entries


def test_audit_verify_cli_exit_codes(tmp_path: Path) -> None:
    good = audit_verify(write(tmp_path / "good.jsonl", ledger()))
    assert good.returncode == 0, good.stderr
    assert "6 entries" in good.stdout
    entries = ledger()
    entries[4] = {**entries[4], "event_id": "e4", "event_payload": b"tampered"}
    bad = audit_verify(write(tmp_path / "bad.jsonl", entries))
    assert bad.returncode == 1
    assert "entry 4" in bad.stderr


@pytest.mark.parametrize("content", ["not json\n", '{"sequence": 0}\n'])
def test_audit_verify_cli_rejects_a_file_that_is_not_a_ledger(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    result = audit_verify(path)
    assert result.returncode == 2
    assert "line 1" in result.stderr


def test_audit_verify_cli_names_an_unreadable_file(tmp_path: Path) -> None:
    result = audit_verify(tmp_path / "missing.jsonl")
    assert result.returncode == 2
    assert "cannot read" in result.stderr
