"""``pseudonymizer run | check | reidentify | risk``.

Arguments only; what each command does is ``pseudonymizer.cli``.
"""

from __future__ import annotations

import typer
from biostream.kit import run_service

from pseudonymizer import cli
from pseudonymizer.settings import PseudonymizerSettings

app = typer.Typer(
    help="Clinical records and link decisions in: curated, pseudonymized records out.",
    no_args_is_help=True,
)


@app.command()
def run() -> None:
    """Run the pseudonymizer service until SIGTERM."""
    from pseudonymizer.bootstrap import build

    # Bad policies and missing keys are refused with a clear message, exit 2.
    run_service("pseudonymizer", PseudonymizerSettings, build, check=cli.releases)


@app.command()
def check() -> None:
    """Validate the policy directory and the keys without Kafka; exit 2 naming the first problem."""
    cli.check()


@app.command()
def reidentify(
    dataset: str = typer.Option(..., help="Dataset whose pseudonym this is"),
    pseudonym: str = typer.Option(..., help="The pseudonym to re-identify"),
    approval: str = typer.Option(
        ..., help="Re-identification approval listed in the dataset's policy (D35)"
    ),
) -> None:
    """Pseudonym -> internal person id. Writes an audit event before answering. Exit 1: not
    found; 2: unusable request; 3: the state could not be read to its end (no answer, D26)."""
    cli.reidentify(dataset, pseudonym, approval)


@app.command()
def risk() -> None:
    """D48: answer the board's disclosure-risk requests (access.risk-requests) with counts-only
    reports (access.risk-reports), from the retained data, apart from the live stream."""
    cli.risk()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
