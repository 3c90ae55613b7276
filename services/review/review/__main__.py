"""``review run``, ``review tasks``, ``review decide``, ``review unseal-dead-letter``,
``review hash-password``.

Arguments only; what each command does is ``review.cli``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from biostream.kit import run_service

from review import cli
from review.settings import ReviewSettings

app = typer.Typer(
    help="Review desk: data stewards resolve linkage's possible matches.", no_args_is_help=True
)


@app.command()
def run() -> None:
    """Serve the stewards' pages until SIGTERM."""
    from review.bootstrap import build

    run_service("review", ReviewSettings, build)


@app.command()
def tasks(
    hospital: Annotated[str | None, typer.Option(help="only this hospital's tasks")] = None,
) -> None:
    """Open tasks, oldest first, as JSON lines: references, scores and codes, never identifying
    data (that is shown only on the signed-in pages)."""
    cli.list_tasks(hospital)


@app.command()
def decide(
    task_id: Annotated[str, typer.Argument(help="task id from `review tasks`")],
    decision: Annotated[str, typer.Option(help="SAME_PERSON, DIFFERENT_PEOPLE or ESCALATE")],
    reason: Annotated[str, typer.Option(help="free-text justification")],
    candidate: Annotated[
        str | None, typer.Option(help="for SAME_PERSON: which candidate person (default: best)")
    ] = None,
) -> None:
    """Record one decision (a ReviewDecision and its audit event) in the name of the steward
    account the Kafka credentials authenticate (no flag names the reviewer, D35); fails on a
    closed task, or when the credentials are not the steward principal's."""
    cli.decide(task_id, decision, reason, candidate)


@app.command("unseal-dead-letter")
def unseal_dead_letter(
    dead_letter_id: Annotated[str, typer.Argument(help="dead_letter_id from the listing")],
    case: Annotated[str, typer.Option(help="the case (ticket, incident) this is done for")],
) -> None:
    """Show one dead letter's original bytes (JSON line) to a data steward holding the
    dead-letter key (BIOSTREAM_DEAD_LETTER_KEY_FILE), after its audit event is written on the
    steward's audit topic. Exit 1: no such letter or it does not open; 2: unusable request;
    3: the topic could not be read to its end; 4: the audit event could not be written, nothing
    shown."""
    cli.unseal_dead_letter(dead_letter_id, case)


@app.command("hash-password")
def hash_password_command(
    account: Annotated[str, typer.Argument(help="steward account id")],
) -> None:
    """Print a users-file line for ACCOUNT; the password is read from the terminal."""
    cli.users_file_line(account)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
