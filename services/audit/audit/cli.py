"""What the audit commands do: the ledger read (live, to its end, D26; or from an export), then
verified, exported, proved, traced, reported or reconciled.

Exit codes of the checking commands: 0 intact / holds / complete, 1 a problem was found (named on
stderr), 2 unusable input (unreadable file, not a ledger, no key; or a live topic that could not
be read to its end, D26: nothing is checked on part of the ledger), 3 not authorised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from biostream.codec import AvroCodec, default_codec
from biostream.contracts import AuditEvent, LedgerCheckpoint, LedgerEntry
from biostream.logs import mask_identifiers
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.adapters.signing_keys import load_keyring
from audit.domain.chain import EventsOf
from audit.domain.chain import verify as verify_chain
from audit.domain.checkpoint import (
    key_id_of,
    public_key_from_text,
    public_key_hex,
    public_key_pem,
)
from audit.domain.export import (
    ExportFormatError,
    checkpoint_to_json,
    entry_to_json,
    public_key_path,
    read_export,
)
from audit.domain.lineage import Logged
from audit.domain.proof import EventView
from audit.domain.rotation import KeyPeriod, walk_keys
from audit.settings import AuditSettings

CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
# What pipeline references look like (source positions, record, decision and curated ids,
# pseudonyms): anything else, a name in Hangul say, must not reach the ledger via a trace event.
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,199}$")
T = TypeVar("T")


def _read_live(reading: Coroutine[Any, Any, T]) -> T:
    """D26: a live read either reaches the end offsets it took at its start or stops the command
    (exit 2) naming where it stopped; no command reports on part of a topic."""
    from biostream.restore import ReadStalled

    try:
        return asyncio.run(reading)
    except ReadStalled as stall:
        typer.echo(f"error: could not read the live topics to their end: {stall}", err=True)
        typer.echo("error: nothing was checked or reported on a partial read", err=True)
        raise typer.Exit(2) from None


def _codec() -> AvroCodec:
    return default_codec()


async def _live(settings: AuditSettings) -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    from biostream.topics import Topics

    from audit.adapters.ledger_reader import read_checkpoints, read_ledger

    topics = Topics(settings.topic_prefix)
    codec = _codec()
    # Checkpoints first: every checkpoint read then covers only entries already committed.
    limit_s = settings.read_timeout_s
    checkpoints = await read_checkpoints(settings.kafka, topics.audit_checkpoints, codec, limit_s)
    entries = [
        entry async for entry in read_ledger(settings.kafka, topics.audit_ledger, codec, limit_s)
    ]
    return entries, checkpoints


def _file(path: Path) -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        typer.echo(f"error: cannot read {path}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        return read_export(lines)
    except ExportFormatError as error:
        typer.echo(f"error: {path}: {error}", err=True)
        raise typer.Exit(2) from None


def _ledger(input_file: Path | None) -> tuple[list[LedgerEntry], list[LedgerCheckpoint]]:
    return _file(input_file) if input_file else _read_live(_live(AuditSettings()))


def _public_key(path: Path | None) -> Ed25519PublicKey | None:
    if path is None:
        return None
    try:
        return public_key_from_text(path.read_text(encoding="ascii"))
    except (OSError, ValueError) as error:
        typer.echo(f"error: {path}: not an Ed25519 public key ({type(error).__name__})", err=True)
        raise typer.Exit(2) from None


def _verification_key(
    given: Path | None, input_file: Path | None
) -> tuple[Ed25519PublicKey | None, str]:
    """D23b: the key given, else the one published beside the export (``<export>.pub``)."""
    if given is not None:
        return _public_key(given), f"{given} (given)"
    if input_file is not None:
        beside = public_key_path(input_file)
        if beside.is_file():
            return _public_key(beside), f"{beside} (found beside the export)"
    return None, ""


def _events(entries: list[LedgerEntry]) -> list[Logged]:
    from biostream.envelopes import ledger_events

    return ledger_events(_codec(), entries)


def _events_of(codec: Any) -> EventsOf:
    """How to split an entry's payload into its events' bytes (D23a)."""
    from biostream.envelopes import audit_event_items

    return lambda payload: audit_event_items(codec, payload)


def _event_view(codec: Any) -> EventView:
    """The JSON view of exactly one encoded AuditEvent; ValueError (DecodeError) otherwise."""
    from biostream.contracts import AUDIT_EVENT

    def view(payload: bytes) -> dict[str, Any]:
        event = codec.decode(payload, AUDIT_EVENT)
        return {**event, "occurred_at": event["occurred_at"].isoformat()}

    return view


def verify(
    input_file: Path | None, public_key_file: Path | None, expected_length: int | None
) -> None:
    """``audit verify``: the hash chain, every entry's events root and every signed checkpoint
    (D-audit-4, D23a); the key given, else the one beside the export (D23b)."""
    entries, checkpoints = _ledger(input_file)
    key, source = _verification_key(public_key_file, input_file)
    if checkpoints and key is None:
        beside = f" (no {public_key_path(input_file)} beside the export)" if input_file else ""
        typer.echo(f"error: the ledger has signed checkpoints: give --public-key{beside}", err=True)
        raise typer.Exit(2)
    if key is not None:
        typer.echo(f"public key: {source}, key id {key_id_of(key)}")
    result = verify_chain(entries, expected_length, checkpoints, key, _events_of(_codec()))
    _echo_key_history(result.keys)
    if result.ok:
        typer.echo(
            f"ledger intact: {result.entries} entries, {result.checkpoints_checked} signed "
            f"checkpoints verified, {result.covered} entries covered by the latest"
        )
        if not checkpoints:
            typer.echo("warning: no signed checkpoint: a cut tail cannot be detected", err=True)
        return
    if result.first_bad_sequence is None:
        typer.echo(f"ledger BROKEN: forged checkpoint: {result.problem}", err=True)
    else:
        typer.echo(
            f"ledger BROKEN at entry {result.first_bad_sequence}: {result.problem}", err=True
        )
    raise typer.Exit(1)


def _echo_key_history(keys: tuple[KeyPeriod, ...]) -> None:
    """D34: the signing keys the verification walked, from the trusted first key."""
    for period in keys[1:]:
        typer.echo(
            f"signing key {period.key_id} ({period.version}) trusted through the hand-over "
            f"signed by key {keys[keys.index(period) - 1].key_id} at size {period.handover_size}"
        )


def export(output: Path, public_key_file: Path | None) -> None:
    """``audit export``: the live ledger as JSON lines, its public key beside it (D23b)."""
    settings = AuditSettings()
    candidates = _export_keys(settings, public_key_file)
    entries, checkpoints = _read_live(_live(settings))
    # D34: the key published is the ledger's first signing key; every later one is reached from
    # it through the signed hand-overs, which the export carries.
    first = min(checkpoints, key=lambda c: c["size"])["key_id"] if checkpoints else None
    key = next((k for k in candidates if key_id_of(k) == first), candidates[0])
    walk = walk_keys(checkpoints, key)
    if not walk.ok:
        typer.echo(
            f"error: the checkpoints do not verify from the key to publish ({key_id_of(key)}): "
            f"{walk.problem}: give the ledger's own first --public-key",
            err=True,
        )
        raise typer.Exit(2)
    with output.open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(entry_to_json(entry) + "\n")
        for checkpoint in checkpoints:
            handle.write(checkpoint_to_json(checkpoint) + "\n")
    published = public_key_path(output)
    published.write_text(public_key_pem(key), encoding="ascii")
    typer.echo(f"exported {len(entries)} entries and {len(checkpoints)} checkpoints to {output}")
    typer.echo(f"public key: {published} (key id {key_id_of(key)})")


def _export_keys(settings: AuditSettings, given: Path | None) -> list[Ed25519PublicKey]:
    """D23b, D34: the keys that may be published with an export: the one given, else the public
    halves of the configured signing keys, oldest version first (the private keys themselves are
    never written anywhere)."""
    key = _public_key(given)
    if key is not None:
        return [key]
    if (
        settings.ledger_signing_key is not None
        or settings.ledger_signing_key_file is not None
        or settings.ledger_signing_keys_dir is not None
    ):
        try:
            keyring = load_keyring(settings)
        except (OSError, ValueError) as error:
            typer.echo(
                f"error: the ledger signing key is unusable ({type(error).__name__})", err=True
            )
            raise typer.Exit(2) from None
        return [keyring.signers[v].public_key for v in keyring.versions]
    typer.echo(
        "error: an export is published with its public key: give --public-key (the file "
        "`audit public-key` writes) or configure BIOSTREAM_LEDGER_SIGNING_KEY_FILE",
        err=True,
    )
    raise typer.Exit(2)


def public_key(pem: bool) -> None:
    """``audit public-key``: the public half of the configured signing key."""
    settings = AuditSettings()
    key = load_keyring(settings).active.public_key
    typer.echo(public_key_pem(key).rstrip("\n") if pem else public_key_hex(key))


def prove(
    sequence: int | None,
    event_id: str | None,
    consistency: tuple[int, int] | None,
    input_file: Path | None,
    output: Path | None,
) -> None:
    """``audit prove``: the proof of one event, not of its batch (D23a), or a consistency proof
    between two signed checkpoints (D-audit-3)."""
    from audit.domain.proof import ProofError, build_consistency_proof, build_event_proof

    entries, checkpoints = _ledger(input_file)
    if consistency is not None:
        by_size = {c["size"]: c for c in checkpoints}
        if consistency[0] not in by_size or consistency[1] not in by_size:
            typer.echo("error: no signed checkpoints of those sizes", err=True)
            raise typer.Exit(1)
        try:
            document = build_consistency_proof(
                entries, by_size[consistency[0]], by_size[consistency[1]], checkpoints
            )
        except ProofError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        _write_proof(document, output)
        return
    if (sequence is None) == (event_id is None):
        typer.echo("error: give exactly one of --sequence or --event-id", err=True)
        raise typer.Exit(2)
    codec = _codec()
    found = (
        _find_event(codec, entries, event_id)
        if event_id is not None
        else _single_event_of(codec, entries, sequence)
    )
    try:
        proof = build_event_proof(entries, checkpoints, *found, _event_view(codec))
    except ProofError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    _write_proof(proof, output)


def _items(codec: Any, entry: LedgerEntry) -> list[bytes]:
    from biostream.codec import DecodeError
    from biostream.envelopes import audit_event_items

    try:
        return audit_event_items(codec, entry["event_payload"])
    except DecodeError:
        typer.echo(
            f"error: entry {entry['sequence']} holds no audit event: run `audit verify`", err=True
        )
        raise typer.Exit(1) from None


def _find_event(
    codec: Any, entries: list[LedgerEntry], event_id: str
) -> tuple[int, list[bytes], int]:
    """(entry sequence, the entry's events, the event's place among them) of an event id; an
    entry's own id (a batch id) only when that entry is one event: a proof names one event."""
    from biostream.contracts import AUDIT_EVENT

    for entry in entries:
        items = _items(codec, entry)
        for index, item in enumerate(items):
            if codec.decode(item, AUDIT_EVENT)["event_id"] == event_id:
                return entry["sequence"], items, index
    for entry in entries:
        if entry["event_id"] == event_id:
            return _single_event_of(codec, entries, entry["sequence"])
    typer.echo(f"error: no audit event {event_id} in the ledger", err=True)
    raise typer.Exit(1)


def _single_event_of(
    codec: Any, entries: list[LedgerEntry], sequence: int | None
) -> tuple[int, list[bytes], int]:
    assert sequence is not None
    if not 0 <= sequence < len(entries):
        typer.echo(
            f"error: entry {sequence} is not in the ledger ({len(entries)} entries)", err=True
        )
        raise typer.Exit(1)
    items = _items(codec, entries[sequence])
    if len(items) != 1:
        typer.echo(
            f"error: entry {sequence} is a batch of {len(items)} events and a proof names one "
            "event: give --event-id (`audit trace` lists the ids)",
            err=True,
        )
        raise typer.Exit(2)
    return sequence, items, 0


def _write_proof(proof: dict[str, Any], output: Path | None) -> None:
    text = json.dumps(proof, indent=2, sort_keys=True)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"proof written to {output}")
    else:
        typer.echo(text)


def check_proof(proof_file: Path, public_key_file: Path | None, event_id: str | None) -> None:
    """``audit check-proof``: a proof checked with only the proof and the public key (D23a)."""
    from audit.domain.proof import check_proof as check

    key = _public_key(public_key_file)
    if key is None:
        typer.echo("error: give --public-key", err=True)
        raise typer.Exit(2)
    try:
        proof = json.loads(proof_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        typer.echo(f"error: cannot read proof {proof_file} ({type(error).__name__})", err=True)
        raise typer.Exit(2) from None
    if not isinstance(proof, dict):
        proof = {}
    problem = check(proof, key, _event_view(_codec()), event_id)
    if problem:
        typer.echo(f"proof INVALID: {problem}", err=True)
        raise typer.Exit(1)
    if "old" in proof:
        typer.echo(
            f"proof valid: the signed ledger of {proof['new']['size']} entries extends the one "
            f"of {proof['old']['size']}"
        )
        return
    signed = (
        f"the ledger of {proof['tree_size']} entries signed by key {proof['checkpoint']['key_id']}"
    )
    if "event" not in proof:  # a whole-entry proof from before D23a, of a one-event entry
        typer.echo(
            f"proof valid: entry {proof['leaf_index']} (event {proof['entry']['event_id']}) is "
            f"in {signed}"
        )
        return
    event = proof["event"]
    typer.echo(
        f"proof valid: event {proof['event_id']} ({event['action']}, hospital "
        f"{event['hospital']}) is event {proof['event_index'] + 1} of "
        f"{proof['entry']['event_count']} in entry {proof['leaf_index']} of {signed}"
    )


def trace(
    auditor: str,
    case: str,
    reference: str | None,
    pseudonym: str | None,
    dataset: str | None,
    input_file: Path | None,
) -> None:
    """``audit trace``: for authorised auditors only, and audited before anything is shown
    (D-audit-5)."""
    from biostream.envelopes import Envelopes
    from biostream.topics import Topics

    from audit.adapters.ledger_reader import curated_ids_of, publish
    from audit.domain.lineage import trace as trace_events

    settings = AuditSettings()
    if auditor not in settings.auditors():
        typer.echo(f"error: {auditor!r} is not an authorised auditor", err=True)
        raise typer.Exit(3)
    if not CASE_REF.match(case) or not CASE_REF.match(auditor):
        typer.echo(
            "error: --case and --auditor take a reference (letters, digits, ._:/-)", err=True
        )
        raise typer.Exit(2)
    if (reference is None) == (pseudonym is None) or (pseudonym is not None and not dataset):
        typer.echo("error: give --reference, or --pseudonym with --dataset", err=True)
        raise typer.Exit(2)
    subject = reference if reference is not None else f"pseudonym:{dataset}/{pseudonym}"
    if not REFERENCE.match(subject) or mask_identifiers(subject) != subject:
        typer.echo("error: that is not a pipeline reference (refusing to record it)", err=True)
        raise typer.Exit(2)
    topics = Topics(settings.topic_prefix)
    codec = _codec()
    now = dt.datetime.now(dt.UTC)
    # Recorded before anything is shown: no trace without its own audit event.
    # D31: the event names the principal the credentials authenticate; the auditor's own
    # account name (checked against the authorised list above) is one of its inputs.
    from biostream.kit import tool_principal

    principal = tool_principal(settings, "auditor")
    event = Envelopes("audit", principal, codec, topics).audit(
        "audit.traced",
        [subject, f"auditor:{auditor}", f"requested-at:{now.isoformat()}"],
        [],
        now,
        purpose=case,
    )
    assert event.key is not None and event.value is not None
    asyncio.run(publish(settings.kafka, event.topic, event.key, event.value))
    starts = [reference] if reference is not None else []
    if pseudonym is not None and dataset is not None:
        starts = _read_live(
            curated_ids_of(
                settings.kafka, topics.curated(dataset), codec, pseudonym, settings.read_timeout_s
            )
        )
    entries, _ = _ledger(input_file)
    events = _events(entries)
    # An entry (sequence) can hold several events (a service's batch): keep each event once.
    found_by_id = {
        (s, e["event_id"]): (s, e) for start in starts for s, e in trace_events(events, start)
    }
    hits = sorted(found_by_id.values(), key=lambda hit: hit[0])
    for sequence, found in hits:
        typer.echo(json.dumps(_event_json(sequence, found), ensure_ascii=False, sort_keys=True))
    typer.echo(f"{len(hits)} events about {subject}", err=True)


def _event_json(sequence: int, event: AuditEvent) -> dict[str, Any]:
    return {
        "sequence": sequence,
        **{k: v for k, v in event.items() if k != "occurred_at"},
        "occurred_at": event["occurred_at"].isoformat(),
    }


def report(input_file: Path | None, policies: Path | None, dataset: str | None) -> None:
    """``audit report``: per dataset, per policy version the ledger says was in force (D23c),
    and the approvals behind it (D47)."""
    from audit.domain.lineage import processing_records

    known: dict[str, dict[str, Any]] = {}
    if policies is not None:
        for path in sorted(policies.glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(raw, dict) and isinstance(raw.get("dataset"), str):
                known[raw["dataset"]] = raw
    entries, _ = _ledger(input_file)
    reports = processing_records(_events(entries), known)
    selected = [r for name, r in reports.items() if dataset in (None, name)]
    typer.echo(json.dumps(selected, indent=2, ensure_ascii=False))
    for record in selected:
        for note in record["notes"]:
            typer.echo(f"note: {record['dataset']}: {note}", err=True)


def fhir(output: Path, input_file: Path | None, hospital: str | None) -> None:
    """``audit fhir``: audit events as FHIR R4 AuditEvent resources (NDJSON)."""
    from audit.domain.fhir import to_fhir

    entries, _ = _ledger(input_file)
    hashes = {e["sequence"]: e["entry_hash"] for e in entries}
    count = 0
    with output.open("w", encoding="utf-8") as handle:
        for sequence, event in _events(entries):
            if hospital is not None and event["hospital"] != hospital:
                continue
            resource = to_fhir(event, sequence, hashes[sequence])
            handle.write(json.dumps(resource, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    typer.echo(f"wrote {count} AuditEvent resources to {output}")


def reconcile(input_file: Path | None, show: int) -> None:
    """``audit reconcile``: every published feed message accounted for by source position
    (D-audit-6); exit 1 if any is not."""
    from biostream.topics import Topics

    from audit.adapters.ledger_reader import feed_retention_starts, published_positions
    from audit.domain.lineage import reconcile as reconcile_events

    settings = AuditSettings()
    pattern = Topics(settings.topic_prefix).feed_pattern
    positions = _read_live(published_positions(settings.kafka, pattern, settings.read_timeout_s))
    for partition, first in asyncio.run(feed_retention_starts(settings.kafka, pattern)).items():
        typer.echo(
            f"note: {partition}: offsets below {first} are past the feed's retention; "
            f"reconciled from offset {first}",
            err=True,
        )
    entries, _ = _ledger(input_file)
    result = reconcile_events(positions, _events(entries))
    typer.echo(json.dumps(result.counts(), sort_keys=True))
    for source, why in list(result.unaccounted.items())[:show]:
        typer.echo(f"unaccounted {source}: {why}", err=True)
    if not result.complete:
        raise typer.Exit(1)
