"""``access run``, ``submit``, ``renew``, ``show``, ``list``, ``review``, ``vote``, ``decide``,
``withdraw``, ``revoke``, ``close-out``, ``visa``, ``hash-password``.

Arguments only; what each command does is ``access.cli``. Every command but ``run`` and
``hash-password`` acts as ``--account``, signed in with its password (``BIOSTREAM_PASSWORD``, or
asked on the terminal) against the accounts file (``BIOSTREAM_USERS_FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from biostream.kit import run_service

from access import cli
from access.settings import AccessSettings

app = typer.Typer(
    help="Access: the shared data review board's applications, reviews and decisions.",
    no_args_is_help=True,
)
Account = Annotated[str, typer.Option(help="the account acting (applicant or board member)")]
ApplicationId = Annotated[str, typer.Argument(help="application id (APP-...)")]


@app.command()
def run() -> None:
    """Replay access.events, then serve the JSON API and expire approvals until SIGTERM."""
    from access.bootstrap import build

    run_service("access", AccessSettings, build)


@app.command()
def submit(
    account: Account,
    application_id: Annotated[
        str | None, typer.Argument(help="a draft or returned application; none: a new one")
    ] = None,
    form: Annotated[Path | None, typer.Option(help="the application form (JSON)")] = None,
    kind: Annotated[str, typer.Option(help="dataset or reidentification")] = "dataset",
) -> None:
    """Submit a new application (--form), or a draft or returned one (with --form: edited
    first)."""
    if application_id is None:
        if form is None:
            raise cli.fail(2, "error: a new application needs --form")
        cli.new_application(account, form, kind)
        return
    body: dict[str, Any] = {}
    if form is not None:
        body = {"form": cli.json_file(form, "the form")}
        cli.command(account, application_id, "edit", body, then_submit=True)
    else:
        cli.command(account, application_id, "submit", body)


@app.command()
def renew(
    account: Account,
    application_id: Annotated[str, typer.Argument(help="the approved or expired application")],
    form: Annotated[Path, typer.Option(help="the renewal's form (JSON), the same dataset")],
) -> None:
    """Apply to continue an approved or expired dataset (its pseudonyms too)."""
    cli.new_application(account, form, "renewal", continues=application_id)


@app.command()
def show(account: Account, application_id: ApplicationId) -> None:
    """One application as JSON: its form, reviews, votes, decision and policy."""
    cli.show(account, application_id)


@app.command("list")
def list_command(
    account: Account,
    status: Annotated[str | None, typer.Option(help="only applications in this state")] = None,
) -> None:
    """The applications the account may see, as JSON lines."""
    cli.list_applications(account, status)


@app.command()
def review(
    account: Account,
    application_id: ApplicationId,
    answer: Annotated[list[str], typer.Option(help="ITEM=yes or ITEM=no, every checklist item")],
    note: Annotated[str, typer.Option(help="the reviewer's note")] = "",
) -> None:
    """Complete the board's checklist for an application (before voting)."""
    cli.command(account, application_id, "review", {"answers": cli.answers(answer), "note": note})


@app.command()
def vote(
    account: Account,
    application_id: ApplicationId,
    choice: Annotated[str, typer.Option("--vote", help="approve, reject or abstain")],
) -> None:
    """Vote on an application under review (after the checklist)."""
    cli.command(account, application_id, "vote", {"vote": choice})


@app.command()
def decide(
    account: Account,
    application_id: ApplicationId,
    outcome: Annotated[str, typer.Option(help="approve, reject or return (for changes)")],
    reason: Annotated[str, typer.Option(help="why (required to reject or return)")] = "",
    conditions: Annotated[
        str | None,
        typer.Option(help='conditions as JSON, e.g. {"min_k": 10, "expires_in_months": 12}'),
    ] = None,
) -> None:
    """The chair records the board's decision, when the voting rule is met."""
    try:
        parsed = json.loads(conditions) if conditions else {}
    except ValueError:
        raise cli.fail(2, "error: --conditions is not JSON") from None
    body = {"outcome": outcome, "reason": reason, "conditions": parsed}
    cli.command(account, application_id, "decide", body)


@app.command()
def withdraw(
    account: Account, application_id: ApplicationId, reason: Annotated[str, typer.Option()] = ""
) -> None:
    """The applicant withdraws an application not yet decided."""
    cli.command(account, application_id, "withdraw", {"reason": reason})


@app.command()
def revoke(
    account: Account, application_id: ApplicationId, reason: Annotated[str, typer.Option()]
) -> None:
    """The chair revokes an approval in force."""
    cli.command(account, application_id, "revoke", {"reason": reason})


@app.command("close-out")
def close_out(
    account: Account,
    application_id: ApplicationId,
    attestation: Annotated[
        Path, typer.Option(help="the signed attestation that the data was destroyed")
    ],
) -> None:
    """The applicant closes an approved, expired or revoked application: the SHA-256 of the
    destruction attestation is recorded (the document stays with the applicant)."""
    body = {"destruction_sha256": cli.file_sha256(attestation)}
    cli.command(account, application_id, "close-out", body)


@app.command()
def visa(
    account: Account,
    application_id: Annotated[str, typer.Option("--application", help="the approved application")],
) -> None:
    """Your GA4GH Passport visa (ControlledAccessGrants, a signed JWT) for an approved
    application you apply for or are a team member of (D47)."""
    cli.visa(account, application_id)


@app.command("hash-password")
def hash_password_command(
    account: Annotated[str, typer.Argument(help="account id")],
) -> None:
    """Print an accounts-file line for ACCOUNT; the password is read from the terminal."""
    cli.users_file_line(account)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
