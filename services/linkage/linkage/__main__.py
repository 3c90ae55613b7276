"""``linkage run``, ``linkage evaluate``, ``linkage train``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from biostream.logs import configure_logging
from biostream.service import run_until_stopped

from linkage.settings import LinkageSettings

app = typer.Typer(
    help="Identity records in: link decisions (person ids) out.", no_args_is_help=True
)

# Person ids of an evaluation run are keyed hashes; a fixed default key keeps reruns comparable.
_EVALUATE_KEY = b"biostream-linkage-evaluate"


def _key() -> bytes:
    value = os.environ.get("BIOSTREAM_PERSON_KEY")
    return value.encode() if value else _EVALUATE_KEY


@app.command()
def run() -> None:
    """Run the linkage service until SIGTERM."""
    from linkage.bootstrap import build

    settings = LinkageSettings()
    configure_logging("linkage", settings.log_level, settings.instance_id)
    asyncio.run(run_until_stopped(build(settings)))


@app.command()
def evaluate(
    input_path: Annotated[Path, typer.Option("--input", help="JSON lines, one record each")],
    output: Annotated[Path, typer.Option("--output", help='{"record_id","person_id"} lines')],
    truth: Annotated[
        Path | None, typer.Option("--truth", help='{"record_id","entity_id"} lines')
    ] = None,
    params: Annotated[
        Path | None, typer.Option("--params", help="m/u parameters from `linkage train`")
    ] = None,
    no_training: Annotated[
        bool, typer.Option("--no-training", help="use --params or the defaults as they are")
    ] = False,
) -> None:
    """Link the records in file order through the service's engine; score them against a truth."""
    from linkage.domain.weights import Params
    from linkage.evaluate import evaluate_file

    loaded = Params.from_json(params.read_text(encoding="utf-8")) if params else None
    result = evaluate_file(input_path, output, _key(), truth, loaded, trained=not no_training)
    rate = len(result.order) / result.seconds if result.seconds > 0 else 0.0
    summary: dict[str, object] = {
        "records": len(result.order),
        "persons": len(set(result.assignments.values())),
        "outcomes": result.outcomes,
        "records_per_second": round(rate, 1),
    }
    if result.scores is not None:
        summary["scores"] = result.scores.as_dict()
    typer.echo(json.dumps(summary, indent=1))


@app.command()
def train(
    input_path: Annotated[Path, typer.Option("--input", help="JSON lines sample, no labels")],
    output: Annotated[Path, typer.Option("--output", help="parameter file (JSON)")],
) -> None:
    """Estimate m/u probabilities and term frequencies without labels (EM) on a sample."""
    from linkage.adapters.jsonl import read_records
    from linkage.domain.profile import make_profile
    from linkage.evaluate import train as estimate

    profiles = [make_profile(identity, _key()) for identity, _ in read_records(input_path)]
    output.write_text(estimate(profiles).to_json(), encoding="utf-8")
    typer.echo(f"{len(profiles)} records; parameters written to {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
