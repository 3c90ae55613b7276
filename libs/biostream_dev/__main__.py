"""``biostream-dev``: developer tooling: the demo, the local broker, topic provisioning."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Developer tooling for the biostream pipeline.", no_args_is_help=True)


@app.command()
def demo(
    records: Annotated[int, typer.Option(help="About how many synthetic feed messages")] = 2000,
    feed: Annotated[
        Path | None, typer.Option(help="Publish these feeds: one sub-folder per hospital")
    ] = None,
    summary: Annotated[Path | None, typer.Option(help="Write the summary as JSON here")] = None,
    curated_export: Annotated[
        Path | None, typer.Option(help="Write curated records as JSON lines")
    ] = None,
    ledger_export: Annotated[
        Path | None, typer.Option(help="Write the audit ledger as JSON lines")
    ] = None,
    run_dir: Annotated[Path, typer.Option(help="Working folder (replaced on each run)")] = Path(
        ".run/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic feed")] = 42,
) -> None:
    """Run the whole pipeline on a local broker and print a summary."""
    from biostream_dev.demo import DemoOptions
    from biostream_dev.demo import main as demo_main

    if feed is not None and not feed.is_dir():
        typer.echo(f"error: FEED {feed} is not a directory", err=True)
        raise typer.Exit(2)
    if records < 1:
        typer.echo("error: RECORDS must be at least 1", err=True)
        raise typer.Exit(2)
    options = DemoOptions(
        run_dir=run_dir.resolve(), records=records, feed=feed, summary=summary,
        curated_export=curated_export, ledger_export=ledger_export, seed=seed,
    )  # fmt: skip
    raise typer.Exit(demo_main(options))


@app.command()
def topics(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers")],
    hospital: Annotated[list[str], typer.Option(help="Hospital codes (repeat)")],
    dataset: Annotated[list[str], typer.Option(help="Dataset names (repeat)")],
    prefix: Annotated[str, typer.Option(help="Topic name prefix")] = "",
) -> None:
    """Create the pipeline's topics (idempotent)."""
    from biostream.kafka import ensure_topics
    from biostream.settings import KafkaSettings
    from biostream.topics import Topics

    specs = Topics(prefix).pipeline_specs(hospital, dataset)
    created = asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), specs))
    typer.echo(f"created {len(created)} topics, {len(specs) - len(created)} existed")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
