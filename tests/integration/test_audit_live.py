"""The audit commands against a live ledger on the real broker, after a demo-like run: verify with
signed checkpoints, export, reconcile every published message, an audited trace, a proof; every
command as the ACL matrix's auditor principal (D35)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from audit.domain.chain import verify
from audit.domain.checkpoint import (
    private_key_from_secret,
    public_key_from_hex,
    public_key_from_text,
    public_key_hex,
)
from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT
from biostream.envelopes import audit_event_items, audit_events_in
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_dev.access import kafka_environment
from biostream_dev.observer import PipelineView
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.inprocess import POLICY_DIR, Keys, running_pipeline
from ingest.adapters.publisher import publish_messages

from ..support import strings

pytestmark = pytest.mark.integration


def audit_cli(
    kafka: KafkaSettings, prefix: str, *args: str | Path, auditors: str = "", **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOSTREAM_")}
    # D35: every audit command runs as the matrix's auditor principal (``kafka`` is its).
    env.update(kafka_environment(kafka))
    env.update(
        BIOSTREAM_TOPIC_PREFIX=prefix,
        BIOSTREAM_AUTHORISED_AUDITORS=auditors,
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-m", "audit", *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


async def test_live_ledger_checkpoints_reconciliation_trace_and_proof(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=60, seed=11)
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    public_key = tmp_path / "ledger_public.key"
    public_key.write_text(
        public_key_hex(private_key_from_secret(keys.ledger_signing.encode()).public_key())
    )
    settings = {"checkpoint_every_entries": 50, "checkpoint_every_seconds": 1.0}
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {"auditor": principals["auditor"]})
    await access.wait_until_usable(credentials)
    auditor = credentials.settings("auditor")
    async with running_pipeline(
        kafka, topic_prefix, sorted(feeds), keys, audit=settings
    ) as observer:
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        view: PipelineView = await observer.wait_until_settled(published, timeout_s=180)
        # Idle ticks sign a checkpoint covering the tail within about a second.
        for _ in range(100):
            await observer.poll(timeout_ms=200)
            if view.checkpoints and view.checkpoints[-1]["size"] == len(view.ledger):
                break
        assert view.checkpoints[-1]["size"] == len(view.ledger)

        sizes = [c["size"] for c in view.checkpoints]
        assert sizes == sorted(set(sizes)), "checkpoints are neither duplicated nor out of order"
        assert len(sizes) >= len(view.ledger) // 50

        verified = audit_cli(auditor, topic_prefix, "verify", "--public-key", public_key)
        assert verified.returncode == 0, verified.stderr
        assert f"ledger intact: {len(view.ledger)} entries, {len(sizes)} signed" in verified.stdout

        # D23b: an export comes with its public key beside it, which is all `verify` needs.
        exported = tmp_path / "ledger.jsonl"
        result = audit_cli(
            auditor, topic_prefix, "export", "--output", exported, "--public-key", public_key
        )
        assert result.returncode == 0, result.stderr
        key_file = tmp_path / "ledger.jsonl.pub"
        assert public_key_from_text(key_file.read_text()) == public_key_from_hex(
            public_key.read_text()
        )
        offline = audit_cli(auditor, topic_prefix, "verify", "--input", exported)
        assert offline.returncode == 0, offline.stderr
        assert f"{key_file} (found beside the export)" in offline.stdout
        # The key to publish can come from the signing key itself; the secret goes nowhere.
        again = tmp_path / "again" / "ledger.jsonl"
        again.parent.mkdir()
        (tmp_path / "signing.key").write_text(keys.ledger_signing)
        derived = audit_cli(
            auditor, topic_prefix, "export", "--output", again,
            BIOSTREAM_LEDGER_SIGNING_KEY_FILE=str(tmp_path / "signing.key"),
        )  # fmt: skip
        assert derived.returncode == 0, derived.stderr
        assert (again.parent / "ledger.jsonl.pub").read_text() == key_file.read_text()
        written = [again.read_text(), key_file.read_text(), derived.stdout, derived.stderr]
        assert not any(keys.ledger_signing in text for text in written)
        lines = exported.read_text().splitlines()
        cut = [line for line in lines if json.loads(line).get("sequence") != len(view.ledger) - 1]
        (tmp_path / "cut.jsonl").write_text("\n".join(cut) + "\n")
        truncated = audit_cli(
            auditor, topic_prefix, "verify", "--input", tmp_path / "cut.jsonl",
            "--public-key", public_key,
        )  # fmt: skip
        assert truncated.returncode == 1 and "tail cut" in truncated.stderr

        # Every published message is accounted for: curated, withheld, linked or dead-lettered.
        reconciled = audit_cli(auditor, topic_prefix, "reconcile")
        assert reconciled.returncode == 0, reconciled.stderr
        counts = json.loads(reconciled.stdout)
        assert counts["published"] == published
        assert counts["unaccounted"] == 0
        assert counts["dead_lettered"] == len(view.dead_letters) > 0
        assert counts["curated"] > 0
        assert (
            counts["curated"] + counts["withheld"] + counts["held"] + counts["linked_only"]
            + counts["dead_lettered"] + counts["duplicates"]
        ) == published  # fmt: skip

        # The processing record (D23c): the ledger itself says which policy was in force, so the
        # report lists what was released per dataset without any policy file.
        reported = audit_cli(auditor, topic_prefix, "report")
        assert reported.returncode == 0, reported.stderr
        [record] = json.loads(reported.stdout)
        policy = json.loads((POLICY_DIR / "cohort-demo.json").read_text())
        released_types = {c["resource_type"] for c in view.curated}
        assert record["dataset"] == "cohort-demo" and record["notes"] == []
        assert set(record["items_released"]) == set(policy["record_types"]) >= released_types
        [in_force] = record["policies"]
        assert in_force["source"] == "ledger"
        assert in_force["policy_version"] == f"cohort-demo@{policy['version']}"
        assert in_force["approval_ref"] == policy["approval_ref"]
        assert in_force["items"]["fields"] == sorted(policy["fields"])
        assert in_force["released"] == record["counts"]["released"] == len(view.curated)
        assert record["purpose"] == [policy["purpose"]]

        # A trace by an authorised auditor: the record's history, and the trace itself audited.
        curated_id = view.curated[0]["curated_id"]
        traced = audit_cli(
            auditor, topic_prefix, "trace", "--reference", curated_id,
            "--auditor", "auditor-1", "--case", "DRB-2026-7", auditors="auditor-1,auditor-2",
        )  # fmt: skip
        assert traced.returncode == 0, traced.stderr
        history = [json.loads(line) for line in traced.stdout.splitlines()]
        actions = [h["action"] for h in history]
        assert actions[0] == "ingest.accepted" and "pseudonymizer.released" in actions
        assert any(curated_id in h["outputs"] for h in history)
        # By a dataset pseudonym: the history of every record released under it.
        pseudonym = view.curated[0]["pseudonym"]
        mine = {c["curated_id"] for c in view.curated if c["pseudonym"] == pseudonym}
        by_pseudonym = audit_cli(
            auditor, topic_prefix, "trace", "--pseudonym", pseudonym, "--dataset", "cohort-demo",
            "--auditor", "auditor-2", "--case", "DRB-2026-7", auditors="auditor-1,auditor-2",
        )  # fmt: skip
        assert by_pseudonym.returncode == 0, by_pseudonym.stderr
        released = {
            out
            for line in by_pseudonym.stdout.splitlines()
            if (h := json.loads(line))["action"] == "pseudonymizer.released"
            for out in h["outputs"]
        }
        assert mine <= released
        for _ in range(100):
            await observer.poll(timeout_ms=200)
            if view.audit_actions()["audit.traced"] == 2:
                break
        traced_events = [e for e in view.audit_events if e["action"] == "audit.traced"]
        # D31: the principal is the one the command connected as; the account is an input.
        assert {e["principal"] for e in traced_events} == {f"User:{topic_prefix}auditor"}
        traces = {e["inputs"][1]: e for e in traced_events}
        assert set(traces) == {"auditor:auditor-1", "auditor:auditor-2"}
        first = traces["auditor:auditor-1"]
        assert first["inputs"][0] == curated_id and first["purpose"] == "DRB-2026-7"
        assert traces["auditor:auditor-2"]["inputs"][0] == f"pseudonym:cohort-demo/{pseudonym}"

        # D23a: the proof of one event of a batch, checked with nothing but the proof and the
        # key, holds nothing of the batch's other events (other hospitals' least of all).
        codec = AvroCodec(SchemaRegistry())
        batch = max(view.ledger, key=lambda e: len(hospitals_in(codec, e)))
        events = [
            codec.decode(item, AUDIT_EVENT)
            for item in audit_event_items(codec, batch["event_payload"])
        ]
        mine = events[0]
        proof = tmp_path / "proof.json"
        made = audit_cli(
            auditor, topic_prefix, "prove", "--event-id", mine["event_id"], "--output", proof
        )
        assert made.returncode == 0, made.stderr
        document = json.loads(proof.read_text())
        assert document["event"]["inputs"] == mine["inputs"]
        assert document["entry"]["sequence"] == batch["sequence"]
        found = "\n".join(strings(document))
        others = [e for e in events if e["event_id"] != mine["event_id"]]
        assert others, "the entry is a batch"
        for other in others:
            assert other["event_id"] not in found
            if other["hospital"] != mine["hospital"]:
                assert not any(ref in found for ref in (*other["inputs"], *other["outputs"]))
        checked = audit_cli(
            auditor, topic_prefix, "check-proof", "--proof", proof, "--public-key", public_key,
            "--event-id", mine["event_id"],
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        assert f"of {len(events)} in entry {batch['sequence']}" in checked.stdout
        document["event"]["hospital"] = "H999"
        (tmp_path / "altered.json").write_text(json.dumps(document))
        altered = audit_cli(
            auditor, topic_prefix, "check-proof", "--proof", tmp_path / "altered.json",
            "--public-key", public_key,
        )  # fmt: skip
        assert altered.returncode == 1 and "not the event proven" in altered.stderr

    key = public_key_from_hex(public_key.read_text())
    assert verify(
        view.ledger,  # type: ignore[arg-type]
        checkpoints=view.checkpoints,  # type: ignore[arg-type]
        public_key=key,
        events_of=lambda payload: audit_event_items(codec, payload),
    ).ok
    assert {e["hash_version"] for e in view.ledger} == {2}


def hospitals_in(codec: AvroCodec, entry: dict[str, Any]) -> set[str | None]:
    return {e["hospital"] for e in audit_events_in(codec, entry["event_payload"])}
