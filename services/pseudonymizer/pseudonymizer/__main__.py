"""``pseudonymizer run``."""

from __future__ import annotations

import asyncio

import typer
from biostream.logs import configure_logging
from biostream.service import run_until_stopped

from pseudonymizer.settings import PseudonymizerSettings

app = typer.Typer(
    help="Clinical records and link decisions in: curated, pseudonymized records out.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Keeps ``run`` a named subcommand even while it is the only one."""


@app.command()
def run() -> None:
    """Run the pseudonymizer service until SIGTERM."""
    from pseudonymizer.bootstrap import build

    settings = PseudonymizerSettings()
    configure_logging("pseudonymizer", settings.log_level, settings.instance_id)
    asyncio.run(run_until_stopped(build(settings)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
