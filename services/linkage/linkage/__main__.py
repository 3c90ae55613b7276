"""``linkage run``, ``evaluate``, ``train``, ``shadow``, ``params list|activate``.

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
    input_path: Annotated[
        Path | None, typer.Option("--input", help="JSON lines sample, no labels")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="parameter file (JSON), with --input")
    ] = None,
    from_topic: Annotated[
        bool,
        typer.Option(
            "--from-topic",
            help="train on the retained identity records and publish a PROPOSED version",
        ),
    ] = False,
    max_records: Annotated[
        int | None, typer.Option("--max-records", help="with --from-topic: the newest N only")
    ] = None,
    match_threshold: Annotated[
        float | None,
        typer.Option("--match-threshold", help="with --from-topic: the version's match threshold"),
    ] = None,
    review_threshold: Annotated[
        float | None,
        typer.Option("--review-threshold", help="with --from-topic: its review threshold"),
    ] = None,
    shadow: Annotated[
        bool,
        typer.Option("--shadow", help="with --from-topic: shadow the new version at once"),
    ] = False,
) -> None:
    """Estimate m/u probabilities and term frequencies without labels (EM): on a sample file
    (--input, --output), or on the identity topic as a new parameter version (--from-topic,
    D41)."""
    if from_topic:
        if input_path is not None or output is not None:
            raise typer.BadParameter("--from-topic reads the topic: no --input/--output")
        cli.train_from_topic(max_records, match_threshold, review_threshold, shadow)
        return
    if input_path is None or output is None:
        raise typer.BadParameter("--input and --output (or --from-topic)")
    cli.train(input_path, output)


@app.command()
def shadow(
    version: Annotated[int, typer.Option("--version", help="parameter version to shadow")],
) -> None:
    """Replay the retained identity records under the active parameters and under version N;
    publish the counts of what would change with the version (D41)."""
    cli.shadow(version)


params_app = typer.Typer(help="Parameter versions on linkage.params (D41).", no_args_is_help=True)
app.add_typer(params_app, name="params")


@params_app.command("list")
def params_list() -> None:
    """Every parameter version, its state and shadow report (JSON lines)."""
    cli.params_list()


@params_app.command("activate")
def params_activate(
    version: Annotated[int, typer.Argument(help="a shadowed parameter version")],
) -> None:
    """Switch a shadowed version on (a steward's command; the running service applies it)."""
    cli.params_activate(version)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
