"""``review run``, ``review tasks``, ``review decide``, ``review hash-password``."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from biostream.logs import configure_logging

from review.settings import ReviewSettings

app = typer.Typer(
    help="Review desk: data stewards resolve linkage's possible matches.", no_args_is_help=True
)


T = TypeVar("T")


def _caught_up(command: Coroutine[Any, Any, T]) -> T:
    """D26: the commands act on the topics read to their end offsets, or stop (exit 3)."""
    from biostream.restore import ReadStalled

    try:
        return asyncio.run(command)
    except ReadStalled as stall:
        typer.echo(f"error: could not read the desk's topics to their end: {stall}", err=True)
        raise typer.Exit(3) from None


@app.command()
def run() -> None:
    """Serve the stewards' pages until SIGTERM."""
    from review.bootstrap import build, run_until_signalled

    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    asyncio.run(run_until_signalled(build(settings)))


@app.command()
def tasks(
    hospital: Annotated[str | None, typer.Option(help="only this hospital's tasks")] = None,
) -> None:
    """Open tasks, oldest first, as JSON lines: references, scores and codes, never identifying
    data (that is shown only on the signed-in pages)."""
    from review.cli import open_tasks

    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    for line in _caught_up(open_tasks(settings, hospital)):
        typer.echo(json.dumps(line, ensure_ascii=False))


@app.command()
def decide(
    task_id: Annotated[str, typer.Argument(help="task id from `review tasks`")],
    decision: Annotated[str, typer.Option(help="SAME_PERSON, DIFFERENT_PEOPLE or ESCALATE")],
    reason: Annotated[str, typer.Option(help="free-text justification")],
    reviewer: Annotated[str, typer.Option(help="the steward's account id")],
    candidate: Annotated[
        str | None, typer.Option(help="for SAME_PERSON: which candidate person (default: best)")
    ] = None,
) -> None:
    """Record one decision (a ReviewDecision and its audit event); fails on a closed task."""
    from review.cli import record_decision

    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    try:
        _caught_up(record_decision(settings, task_id, decision, reason, reviewer, candidate))
    except (LookupError, ValueError) as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(json.dumps({"task_id": task_id, "decision": decision, "recorded": True}))


@app.command("hash-password")
def hash_password_command(
    account: Annotated[str, typer.Argument(help="steward account id")],
) -> None:
    """Print a users-file line for ACCOUNT; the password is read from the terminal."""
    from review.domain.auth import hash_password

    password = getpass.getpass("password: ")
    typer.echo(f"{account}:{hash_password(password)}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
