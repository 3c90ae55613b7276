"""``linkage run``, ``linkage evaluate``, ``linkage train``.

Arguments only; what each command does is ``linkage.cli``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from biostream.kit import run_service

from linkage import cli
from linkage.settings import LinkageSettings

app = typer.Typer(
    help="Identity records in: link decisions (person ids) out.", no_args_is_help=True
)


@app.command()
def run() -> None:
    """Run the linkage service until SIGTERM."""
    from linkage.bootstrap import build

    run_service("linkage", LinkageSettings, build)


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
    cli.evaluate(input_path, output, truth, params, trained=not no_training)


@app.command()
def train(
    input_path: Annotated[Path, typer.Option("--input", help="JSON lines sample, no labels")],
    output: Annotated[Path, typer.Option("--output", help="parameter file (JSON)")],
) -> None:
    """Estimate m/u probabilities and term frequencies without labels (EM) on a sample."""
    cli.train(input_path, output)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
