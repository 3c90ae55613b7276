"""What ``ingest check`` and ``ingest publish`` do: feed files read, split and checked locally,
then (``publish``) sent to a hospital's feed topic."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections import Counter
from pathlib import Path

import typer
from biostream.kit import tool_principal
from biostream.topics import Topics
from rich.progress import Progress

from ingest.adapters.mappings import load_mapping_file, quiet_parser_logs
from ingest.domain.csv_feed import DEFAULT_MAPPING, CsvMapping, MappingInvalid
from ingest.domain.files import FeedMessage, split_feed
from ingest.domain.messages import FEED_FORMATS, FeedFormat, parse_message
from ingest.domain.model import Rejected
from ingest.settings import IngestSettings


def check(files: list[Path], fmt: str, mapping: Path | None) -> None:
    """One JSON line per message; exit 0 all accepted, 1 some rejected, 2 a file unreadable."""
    feed_format = _feed_format(fmt)
    csv_mapping = _mapping(mapping)
    today = dt.datetime.now(dt.UTC).date()
    rejected = 0
    for path, message in _read_messages(feed_format, files, csv_mapping):
        line = _check_line(feed_format, path, message, csv_mapping, today)
        rejected += not line["accepted"]
        typer.echo(json.dumps(line, ensure_ascii=False))
    raise typer.Exit(1 if rejected else 0)


def publish(files: list[Path], hospital: str, fmt: str, mapping: Path | None) -> None:
    """Checked, then published with the rejected ones too (D-ingest-7: ingest dead-letters them,
    so the platform keeps a record), which are listed on stderr; the totals on stdout."""
    from ingest.adapters.publisher import publish_messages

    settings = IngestSettings()
    feed_format = _feed_format(fmt)
    csv_mapping = _mapping(mapping)
    try:
        topic = Topics(settings.topic_prefix).feed(hospital)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    read = _read_messages(feed_format, files, csv_mapping)
    today = dt.datetime.now(dt.UTC).date()
    reasons: Counter[str] = Counter()
    for path, message in read:
        line = _check_line(feed_format, path, message, csv_mapping, today)
        if not line["accepted"]:
            reasons[str(line["reason_code"])] += 1
            typer.echo(json.dumps(line, ensure_ascii=False), err=True)
    messages = [message for _, message in read]
    with Progress(transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"publishing to {topic}", total=len(messages))
        sent = asyncio.run(
            publish_messages(settings.kafka, topic, messages, lambda n: progress.advance(task, n))
        )
    rejected = sum(reasons.values())
    summary = {"hospital": hospital, "topic": topic, "published": sent,
               "accepted": len(messages) - rejected, "rejected": rejected,
               "rejected_by_reason": dict(sorted(reasons.items()))}  # fmt: skip
    typer.echo(json.dumps(summary))
    raise typer.Exit(1 if rejected else 0)


def _read_messages(
    fmt: FeedFormat, files: list[Path], mapping: CsvMapping
) -> list[tuple[Path, FeedMessage]]:
    """Every message of every file; exit 2 on the first file that cannot be read."""
    messages: list[tuple[Path, FeedMessage]] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as error:
            typer.echo(f"error: cannot read {path}: {error.strerror}", err=True)
            raise typer.Exit(2) from None
        messages.extend((path, message) for message in split_feed(fmt, data, mapping))
    return messages


def _check_line(
    fmt: FeedFormat, path: Path, message: FeedMessage, mapping: CsvMapping, today: dt.date
) -> dict[str, object]:
    key = message.key.decode("utf-8", "replace") if message.key else None
    try:
        parsed = parse_message(fmt, message.value, key, today, mapping)
    except Rejected as error:
        return {"file": str(path), "message_id": key, "accepted": False,
                "reason_code": error.reason_code, "message": error.message}  # fmt: skip
    # D36: a message may carry several patients; the counts are the whole message's.
    parts = parsed.parts()
    flags = list(dict.fromkeys(
        [*parsed.flags, *(f for p in parts if p.identity for f in p.identity.quality_flags)]
    ))  # fmt: skip
    events = [e for p in parts for e in p.events]
    return {"file": str(path), "message_id": parsed.message_id, "accepted": True,
            "message_type": parsed.message_type, "patients": len(parts),
            "clinical_events": len(events),
            "patient_merges": sum(len(p.merges) for p in parts),
            "consents": sum(len(p.consents) for p in parts),
            "skipped_entries": len(parsed.skipped), "quality_flags": flags,
            "event_flags": sorted({f for e in events for f in e.quality_flags})}  # fmt: skip


def _feed_format(fmt: str) -> FeedFormat:
    for candidate in FEED_FORMATS:
        if fmt == candidate:
            return candidate
    typer.echo("error: --format must be hl7, fhir or csv", err=True)
    raise typer.Exit(2)


def _mapping(path: Path | None) -> CsvMapping:
    quiet_parser_logs()
    if path is None:
        return DEFAULT_MAPPING
    try:
        return load_mapping_file(path)
    except OSError as error:
        typer.echo(f"error: cannot read {path}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    except MappingInvalid as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def consent(
    command: str,
    person_id: str | None,
    hospital: str | None,
    mrn: str | None,
    datasets: list[str],
    source: str,
) -> None:
    """``ingest consent grant|withdraw`` (D32): one consent event and its audit event, committed
    together, as the principal the environment names. Exit 2: the request is unusable (nothing
    written); 1: the broker refused or failed (nothing written); the patient number is never
    printed or logged."""
    from aiokafka.errors import KafkaError
    from biostream.kafka import PlaintextRefused
    from biostream.keyfiles import load_key_ring
    from biostream.keyring import PATIENT_REF_KEY
    from biostream.logs import configure_logging

    from ingest.adapters.consent import record_consent
    from ingest.domain.consent import (
        ConsentRefused,
        Subject,
        check_patient_number,
        consent_event,
        person_subject,
    )
    from ingest.domain.patient_refs import patient_refs

    settings = IngestSettings()
    configure_logging("ingest", settings.log_level, settings.instance_id)
    now = dt.datetime.now(dt.UTC)
    try:
        if (person_id is None) == (hospital is None and mrn is None):
            raise ConsentRefused(
                "name the participant by --person-id, or by --hospital and --mrn, not both"
            )
        if person_id is not None:
            subject = person_subject(person_id)
        else:
            if hospital is None or mrn is None:
                raise ConsentRefused("--hospital and --mrn go together")
            number = sys.stdin.readline() if mrn == "-" else mrn
            code, number = check_patient_number(hospital, number)
            try:
                ring = load_key_ring(
                    PATIENT_REF_KEY,
                    settings.patient_ref_keys_dir,
                    settings.patient_ref_key,
                    settings.patient_ref_key_file,
                )
            except (OSError, ValueError) as error:  # KeyRingError is a ValueError
                raise ConsentRefused(
                    "the patient-ref key (patient_ref_key[_file] or patient_ref_keys_dir) "
                    f"cannot be read: {error}"
                ) from None
            # D33: the ref under the version in force at the recording time, and the refs
            # under older versions, so a patient last seen before a rotation is still found.
            refs = patient_refs(ring.in_use_at(int(now.timestamp() * 1000)), code, number)
            subject = Subject(
                patient_ref=refs.current,
                hospital=code,
                previous_patient_refs=tuple(refs.previous),
            )
        event = consent_event(command, subject, datasets, now, source)
    except ConsentRefused as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    topics = Topics(settings.topic_prefix)
    principal = tool_principal(settings, "consent")
    try:
        asyncio.run(record_consent(settings.kafka, topics, principal, event, subject, now))
    except KafkaError as error:
        typer.echo(
            f"error: nothing recorded, the broker refused or failed: {type(error).__name__}"
            f" (may principal {principal} write {topics.consent_events}?)",
            err=True,
        )
        raise typer.Exit(1) from None
    except PlaintextRefused as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    line = {"event_id": event["event_id"], "kind": event["kind"], "datasets": event["datasets"],
            "person_id": event["person_id"], "patient_ref": event["patient_ref"],
            "hospital": subject.hospital, "topic": topics.consent_events}  # fmt: skip
    typer.echo(json.dumps(line))
