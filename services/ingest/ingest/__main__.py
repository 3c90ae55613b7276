"""``ingest run | check | publish``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from biostream.logs import configure_logging
from biostream.service import run_until_stopped
from biostream.topics import Topics
from rich.progress import Progress

from ingest.domain.files import FeedMessage, split_feed
from ingest.domain.messages import FeedFormat, parse_message
from ingest.domain.model import Rejected
from ingest.settings import IngestSettings

app = typer.Typer(
    help="Hospital feeds in: validated identity and clinical records out.", no_args_is_help=True
)


@app.command()
def run() -> None:
    """Run the ingest service until SIGTERM."""
    from ingest.bootstrap import build

    settings = IngestSettings()
    configure_logging("ingest", settings.log_level, settings.instance_id)
    asyncio.run(run_until_stopped(build(settings)))


def _read_messages(fmt: FeedFormat, files: list[Path]) -> list[tuple[Path, FeedMessage]]:
    messages: list[tuple[Path, FeedMessage]] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as error:
            typer.echo(f"error: cannot read {path}: {error.strerror}", err=True)
            raise typer.Exit(2) from None
        messages.extend((path, message) for message in split_feed(fmt, data))
    return messages


@app.command()
def check(
    files: list[Path],
    fmt: Annotated[str, typer.Option("--format", help="fhir or csv")] = "fhir",
) -> None:
    """Parse and validate feed files locally, without Kafka: one JSON line per message."""
    feed_format = _feed_format(fmt)
    today = dt.datetime.now(dt.UTC).date()
    rejected = 0
    for path, message in _read_messages(feed_format, files):
        key = message.key.decode() if message.key else None
        try:
            parsed = parse_message(feed_format, message.value, key, today)
            line = {"file": str(path), "message_id": parsed.message_id, "accepted": True,
                    "clinical_events": len(parsed.events), "quality_flags": list(parsed.identity.quality_flags)}  # fmt: skip
        except Rejected as error:
            rejected += 1
            line = {"file": str(path), "message_id": key, "accepted": False,
                    "reason_code": error.reason_code, "message": error.message}  # fmt: skip
        typer.echo(json.dumps(line, ensure_ascii=False))
    raise typer.Exit(1 if rejected else 0)


@app.command()
def publish(
    files: list[Path],
    hospital: Annotated[str, typer.Option(help="Hospital code, e.g. H001")],
    fmt: Annotated[str, typer.Option("--format", help="fhir or csv")] = "fhir",
) -> None:
    """Publish feed files to the hospital's feed topic, with a progress bar."""
    from ingest.adapters.publisher import publish_messages

    settings = IngestSettings()
    feed_format = _feed_format(fmt)
    try:
        topic = Topics(settings.topic_prefix).feed(hospital)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    messages = [message for _, message in _read_messages(feed_format, files)]
    with Progress(transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"publishing to {topic}", total=len(messages))
        sent = asyncio.run(
            publish_messages(settings.kafka, topic, messages, lambda n: progress.advance(task, n))
        )
    typer.echo(json.dumps({"hospital": hospital, "topic": topic, "published": sent}))


def _feed_format(fmt: str) -> FeedFormat:
    if fmt not in ("fhir", "csv"):
        typer.echo("error: --format must be fhir or csv", err=True)
        raise typer.Exit(2)
    return "fhir" if fmt == "fhir" else "csv"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
