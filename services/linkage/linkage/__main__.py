"""``linkage run``."""

from __future__ import annotations

import asyncio

import typer
from biostream.logs import configure_logging
from biostream.service import run_until_stopped

from linkage.settings import LinkageSettings

app = typer.Typer(
    help="Identity records in: link decisions (person ids) out.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Keeps ``run`` a named subcommand even while it is the only one."""


@app.command()
def run() -> None:
    """Run the linkage service until SIGTERM."""
    from linkage.bootstrap import build

    settings = LinkageSettings()
    configure_logging("linkage", settings.log_level, settings.instance_id)
    asyncio.run(run_until_stopped(build(settings)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
