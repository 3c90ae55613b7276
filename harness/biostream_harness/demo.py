"""The main job: the whole pipeline on a local broker with synthetic (or given) hospital feeds.

Starts a broker and the four services as separate processes, publishes the feeds, waits until
every message is accounted for at every stage, prints a summary and stops everything it started,
also on Ctrl-C or failure.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.domain.chain import verify
from audit.domain.checkpoint import key_id_of, public_key_from_hex, public_key_pem
from audit.domain.export import checkpoint_to_json, entry_to_json, public_key_path
from biostream.codec import default_codec
from biostream.envelopes import audit_event_items, ledger_events
from biostream.kafka import ensure_topics
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access, broker
from biostream_dev.observer import Interrupted, PipelineObserver, PipelineView
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage, split_feed
from ingest.domain.messages import FeedFormat
from rich.console import Console
from rich.table import Table

from biostream_harness.pipeline import DEFAULT_POLICY, LocalPipeline

# The demo's reads of whole topics fail after this long without progress (D26; the default of
# BIOSTREAM_READ_TIMEOUT_S).
READ_LIMIT_S = 120.0

FORMAT_BY_SUFFIX: dict[str, FeedFormat] = {".ndjson": "fhir", ".json": "fhir", ".csv": "csv"}


@dataclass(frozen=True)
class DemoOptions:
    run_dir: Path
    records: int = 2000
    feed: Path | None = None
    summary: Path | None = None
    curated_export: Path | None = None
    ledger_export: Path | None = None
    seed: int = 42
    settle_timeout_s: float = 600


def feed_messages(feed_dir: Path) -> dict[str, list[FeedMessage]]:
    """One sub-folder per hospital; FHIR as .ndjson/.json, CSV as .csv."""
    hospitals: dict[str, list[FeedMessage]] = {}
    for folder in sorted(p for p in feed_dir.iterdir() if p.is_dir()):
        messages: list[FeedMessage] = []
        for path in sorted(folder.iterdir()):
            fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
            if fmt is not None:
                messages.extend(split_feed(fmt, path.read_bytes()))
        if messages:
            hospitals[folder.name] = messages
    if not hospitals:
        raise ValueError(f"{feed_dir}: no hospital sub-folder with .ndjson, .json or .csv files")
    return hospitals


def persons_for_records(records: int) -> int:
    # The generator writes about 3.1 messages per person (several visits, some people at two or
    # three hospitals, identity updates); aim the person count so the feed holds ~`records` messages.
    return max(1, round(records / 3.1))


async def run_demo(options: DemoOptions, console: Console) -> dict[str, Any]:
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    run_dir = options.run_dir
    if run_dir.exists():
        broker.stop_broker(run_dir / "broker")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)

    feed_dir = options.feed
    truth_path: Path | None = None
    if feed_dir is None:
        from biostream_dev.synth import generate_feed

        feed_dir = run_dir / "feed"
        generate_feed(feed_dir, persons=persons_for_records(options.records), seed=options.seed)
        truth_path = feed_dir / "truth.jsonl"
    hospitals = feed_messages(feed_dir)
    published = sum(len(m) for m in hospitals.values())
    console.print(f"feed: {published} messages from {len(hospitals)} hospitals ({feed_dir})")

    console.print("starting Kafka broker ...")
    broker_started = time.monotonic()
    info = broker.start_broker(run_dir / "broker", authentication=True)
    broker_start_s = time.monotonic() - broker_started
    console.print(
        f"broker ready at {info.bootstrap} in {broker_start_s:.1f}s "
        "(SCRAM over TLS, certificates generated for this run; ACLs on)"
    )
    admin = broker.admin_settings(run_dir / "broker", info.bootstrap)
    topics = Topics()
    policy = json.loads(DEFAULT_POLICY.read_text())
    datasets = [policy["dataset"]]
    # Checkpoints every 2 s (the service's default is 30 s) so the demo ends with its tail signed.
    pipeline = LocalPipeline(
        info.bootstrap,
        run_dir,
        admin=admin,
        extra_env={"BIOSTREAM_CHECKPOINT_EVERY_SECONDS": "2"},
    )
    observer = PipelineObserver(admin, topics, default_codec(), datasets)
    try:
        if stop.is_set():
            raise Interrupted("stopped while the broker started")
        await ensure_topics(admin, topics.pipeline_specs(sorted(hospitals), datasets))
        # Hospitals publish as themselves: each may write its own feed topic and nothing else.
        principals = access.render(access.load_matrix(), hospitals=sorted(hospitals))
        hospital_roles = {h: f"hospital-{h}".lower() for h in hospitals}
        publishers = await asyncio.to_thread(
            access.apply, admin, {role: principals[role] for role in hospital_roles.values()}
        )
        await access.wait_until_usable(publishers)
        console.print("starting ingest, linkage, pseudonymizer, audit ...")
        await asyncio.to_thread(pipeline.start_all)
        await observer.start()
        publish_started = time.monotonic()
        for hospital, messages in hospitals.items():
            if stop.is_set():
                raise Interrupted("stopped while publishing")
            await publish_messages(
                publishers.settings(hospital_roles[hospital]), topics.feed(hospital), messages
            )
        console.print(
            f"published {published} messages in {time.monotonic() - publish_started:.1f}s"
        )
        last_print = [0.0]

        def progress(line: str) -> None:
            pipeline.assert_alive()
            if time.monotonic() - last_print[0] >= 2:
                console.print(f"  {line}", highlight=False, soft_wrap=True)
                last_print[0] = time.monotonic()

        view = await observer.wait_until_settled(
            published, options.settle_timeout_s, progress, stop
        )
        # The audit service signs the uncovered tail on an idle tick; wait for that checkpoint
        # (bounded) so the summary's verification also covers the last entries.
        for _ in range(100):
            if view.checkpoints and view.checkpoints[-1]["size"] >= len(view.ledger):
                break
            await observer.poll(timeout_ms=200)
        reconciliation = await _reconcile(admin, topics, view)
    finally:
        console.print("stopping services and broker ...")
        await observer.stop()
        pipeline.stop_all()
        broker.stop_broker(run_dir / "broker")

    elapsed = time.monotonic() - started
    public_key = pipeline.ledger_public_key_file.read_text()
    summary = summarise(view, published, hospitals, truth_path, elapsed, broker_start_s, public_key)
    summary["reconciliation"] = reconciliation
    summary["ledger_key_id"] = key_id_of(public_key_from_hex(public_key))
    # D23b: the key the export is verified with goes with it (the run directory does not last).
    summary["ledger_public_key_file"] = str(
        _write_exports(view, options, public_key) or pipeline.ledger_public_key_file
    )
    if options.summary:
        options.summary.parent.mkdir(parents=True, exist_ok=True)
        options.summary.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print_summary(summary, console)
    return summary


async def _reconcile(kafka: KafkaSettings, topics: Topics, view: PipelineView) -> dict[str, int]:
    """`audit reconcile`'s accounting of every published feed message, from the ledger's events."""
    from audit.adapters.ledger_reader import published_positions
    from audit.domain.lineage import reconcile

    codec = default_codec()
    positions = await published_positions(kafka, topics.feed_pattern, READ_LIMIT_S)
    return reconcile(positions, ledger_events(codec, view.ledger)).counts()


def summarise(
    view: PipelineView,
    published: int,
    hospitals: dict[str, list[FeedMessage]],
    truth_path: Path | None,
    elapsed: float,
    broker_start_s: float,
    ledger_public_key: str,
) -> dict[str, Any]:
    # The chain, every entry's events root, and every signed checkpoint under the run's public
    # key (a cut tail would show).
    codec = default_codec()
    verification = verify(
        _ledger_entries(view),
        checkpoints=view.checkpoints,  # type: ignore[arg-type]
        public_key=public_key_from_hex(ledger_public_key),
        events_of=lambda payload: audit_event_items(codec, payload),
    )
    summary: dict[str, Any] = {
        "records_published": published,
        "dead_letters": len(view.dead_letters),
        "identity_records": len(view.identity),
        "clinical_records": len(view.clinical),
        "persons": view.persons(),
        "curated_records": len(view.curated),
        "audit_events": len(view.audit_events),
        "audit_messages": view.audit_messages,
        "audit_entries": len(view.ledger),
        "audit_verified": verification.ok,
        "audit_checkpoints": verification.checkpoints_checked,
        "audit_covered": verification.covered,
        "elapsed_s": round(elapsed, 1),
        "broker_start_s": round(broker_start_s, 1),
        "hospitals": {h: len(m) for h, m in hospitals.items()},
        "dead_letters_by_reason": dict(Counter(d["reason_code"] for d in view.dead_letters)),
        "link_outcomes": dict(Counter(d["outcome"] for d in view.decisions)),
        "withheld_by_policy": view.audit_actions()["pseudonymizer.withheld"],
        "duplicates_ignored": view.audit_actions()["ingest.duplicate"],
        # D31: who the ledger's events name; each is the principal Kafka authenticated for the
        # audit topic the event was read from (an event claiming another is dead-lettered).
        "audit_principals": _ledger_principals(view),
    }
    if truth_path is not None and truth_path.exists():
        truth = [json.loads(line) for line in truth_path.read_text().splitlines() if line.strip()]
        summary["true_persons"] = len(
            {t["entity_id"] for t in truth if t.get("entity_id") and not t.get("malformed")}
        )
        summary["truth_malformed_messages"] = sum(1 for t in truth if t.get("malformed"))
    return summary


def _ledger_entries(view: PipelineView) -> list[Any]:
    return [
        {
            k: entry[k]
            for k in (
                "sequence",
                "appended_at",
                "event_id",
                "event_payload",
                "prev_hash",
                "entry_hash",
                "hash_version",
                "event_count",
                "events_root",
            )
        }
        for entry in view.ledger
    ]


def _write_exports(view: PipelineView, options: DemoOptions, public_key: str) -> Path | None:
    """The curated and ledger exports asked for; the ledger's public key (PEM) beside the
    ledger export, ``<export>.pub``, where `audit verify --input` finds it (D23b). Returns that
    key file, if written."""
    if options.curated_export:
        options.curated_export.parent.mkdir(parents=True, exist_ok=True)
        with options.curated_export.open("w", encoding="utf-8") as handle:
            for record in view.curated:
                handle.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
    if options.ledger_export:
        options.ledger_export.parent.mkdir(parents=True, exist_ok=True)
        with options.ledger_export.open("w", encoding="utf-8") as handle:
            for entry in _ledger_entries(view):
                handle.write(entry_to_json(entry) + "\n")
            for checkpoint in view.checkpoints:
                handle.write(checkpoint_to_json(checkpoint) + "\n")  # type: ignore[arg-type]
        published = public_key_path(options.ledger_export)
        published.write_text(public_key_pem(public_key_from_hex(public_key)), encoding="ascii")
        return published
    return None


def _json_default(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _ledger_principals(view: PipelineView) -> dict[str, int]:
    by_id = {event["event_id"]: event["principal"] for event in view.audit_events}
    chained = view.ledger_event_ids()
    return dict(sorted(Counter(by_id[i] for i in chained.elements() if i in by_id).items()))


def print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="biostream demo summary", show_header=False)
    for key in (
        "records_published", "dead_letters", "truth_malformed_messages", "identity_records",
        "clinical_records", "persons", "true_persons", "curated_records", "withheld_by_policy", "audit_events", "audit_messages", "audit_entries",
        "audit_checkpoints", "audit_covered", "audit_verified", "broker_start_s", "elapsed_s",
    ):  # fmt: skip
        if key in summary:
            table.add_row(key, str(summary[key]))
    console.print(table)
    if "ledger_key_id" in summary:
        # One unwrapped line, so the path can be copied (D23b).
        console.print(
            f"ledger public key: {summary['ledger_public_key_file']} "
            f"(key id {summary['ledger_key_id']})",
            soft_wrap=True,
            highlight=False,
        )
    if summary.get("audit_principals"):
        named = ", ".join(f"{k} {v}" for k, v in summary["audit_principals"].items())
        console.print(f"audit events by authenticated principal: {named}", highlight=False)
    if summary["dead_letters_by_reason"]:
        reasons = ", ".join(
            f"{k}: {v}" for k, v in sorted(summary["dead_letters_by_reason"].items())
        )
        console.print(f"dead letters by reason: {reasons}")
    if "reconciliation" in summary:
        counts = summary["reconciliation"]
        console.print(
            "reconciliation: "
            + ", ".join(f"{k} {v}" for k, v in counts.items() if k != "published")
            + f" of {counts['published']} published"
        )
    ok = (
        summary["audit_verified"]
        and summary["audit_entries"] == summary["audit_messages"]
        and summary.get("reconciliation", {}).get("unaccounted", 0) == 0
    )
    console.print("[green]pipeline OK[/green]" if ok else "[red]pipeline NOT OK[/red]")


def main(options: DemoOptions) -> int:
    console = Console()
    # Ctrl-C and SIGTERM set run_demo's stop event; it unwinds through its finally blocks, which
    # stop every process it started. Before the loop runs, they raise KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        summary = asyncio.run(run_demo(options, console))
    except (KeyboardInterrupt, Interrupted):
        console.print("[yellow]interrupted: everything started was stopped[/yellow]")
        return 130
    except Exception as error:
        console.print(f"[red]demo failed: {error}[/red]")
        return 1
    return 0 if summary["audit_verified"] else 1
