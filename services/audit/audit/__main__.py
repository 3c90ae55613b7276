"""``audit run | verify | export``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from biostream.contracts import LedgerEntry
from biostream.logs import configure_logging
from biostream.service import run_until_stopped

from audit.domain.chain import verify
from audit.domain.export import ExportFormatError, entry_from_json, entry_to_json
from audit.settings import AuditSettings

app = typer.Typer(
    help="Audit events in: a tamper-evident, hash-chained ledger out.", no_args_is_help=True
)


@app.command()
def run() -> None:
    """Run the audit service until SIGTERM."""
    from audit.bootstrap import build

    settings = AuditSettings()
    configure_logging("audit", settings.log_level, settings.instance_id)
    asyncio.run(run_until_stopped(build(settings)))


async def _live_entries(settings: AuditSettings) -> list[LedgerEntry]:
    from biostream.codec import AvroCodec
    from biostream.schemas import SchemaRegistry
    from biostream.topics import Topics

    from audit.adapters.ledger_reader import read_ledger

    topic = Topics(settings.topic_prefix).audit_ledger
    return [
        entry async for entry in read_ledger(settings.kafka, topic, AvroCodec(SchemaRegistry()))
    ]


def _file_entries(path: Path) -> list[LedgerEntry]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        typer.echo(f"error: cannot read {path}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        return [entry_from_json(line, n) for n, line in enumerate(lines, start=1) if line.strip()]
    except ExportFormatError as error:
        typer.echo(f"error: {path}: {error}", err=True)
        raise typer.Exit(2) from None


@app.command(name="verify")
def verify_command(
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Exported ledger (JSON lines)")
    ] = None,
    expected_length: Annotated[
        int | None, typer.Option(help="Entries a checkpoint says exist")
    ] = None,
) -> None:
    """Check the ledger's hash chain; exit 1 naming the first bad entry."""
    entries = (
        _file_entries(input_file) if input_file else asyncio.run(_live_entries(AuditSettings()))
    )
    result = verify(entries, expected_length)
    if result.ok:
        typer.echo(f"ledger intact: {result.entries} entries")
        return
    typer.echo(f"ledger BROKEN at entry {result.first_bad_sequence}: {result.problem}", err=True)
    raise typer.Exit(1)


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", help="JSON-lines file to write")],
) -> None:
    """Write the live ledger as JSON lines."""
    entries = asyncio.run(_live_entries(AuditSettings()))
    with output.open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(entry_to_json(entry) + "\n")
    typer.echo(f"exported {len(entries)} entries to {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
