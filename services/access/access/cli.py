"""What the command line does (D45): sign the account in (its password against the accounts
file), replay ``access.events`` to its end, decide the command, and write its events and audit
events in one transaction; a refused command writes its audit event and exits 1 with the reason.

Exit codes: 1 refused by the rules (audited); 2 an unusable request (bad form, unknown account or
wrong password, no such application); 3 ``access.events`` could not be read to its end; 4 the
transaction could not be written (nothing recorded).
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from biostream.logs import configure_logging
from biostream.restore import READ_SETTING, ReadStalled
from biostream.web_auth import hash_password, verify_password
from prometheus_client import CollectorRegistry

from access.adapters.stream import EventFollower, utc_now
from access.bootstrap import build_handler, build_visa_signer, build_writer, load_users
from access.domain.application import VisaIssued
from access.domain.board import BoardError
from access.domain.commands import Submit
from access.handlers import (
    AccessHandler,
    BadRequest,
    Decided,
    application_view,
    new_application_id,
    read_command,
    read_create,
)
from access.settings import AccessSettings


def fail(code: int, text: str) -> typer.Exit:
    typer.echo(text, err=True)
    return typer.Exit(code)


def _settings() -> AccessSettings:
    settings = AccessSettings()
    configure_logging("access", settings.log_level, settings.instance_id)
    return settings


def _signed_in(settings: AccessSettings, account: str) -> str:
    """The account, once its password (``BIOSTREAM_PASSWORD`` or the terminal) verifies."""
    try:
        users = load_users(settings)
    except (OSError, ValueError) as error:
        raise fail(2, f"error: {error}") from None
    password = (
        settings.password.get_secret_value()
        if settings.password is not None
        else getpass.getpass(f"password for {account}: ")
    )
    stored = users.get(account)
    if stored is None or not verify_password(password, stored):
        raise fail(2, "error: unknown account or wrong password")
    return account


async def _replayed(settings: AccessSettings) -> AccessHandler:
    handler = build_handler(settings, CollectorRegistry())
    follower = EventFollower(
        settings.kafka, f"{settings.topic_prefix}access-cli", handler,
        settings.read_timeout_s, READ_SETTING,
    )  # fmt: skip
    await follower.run(asyncio.Event(), until_caught_up=True)
    return handler


def _handler(settings: AccessSettings) -> AccessHandler:
    try:
        return asyncio.run(_replayed(settings))
    except BoardError as error:
        raise fail(2, f"error: {error}") from None
    except ReadStalled as stall:
        raise fail(3, f"error: could not read access.events to its end: {stall}") from None


async def _write(settings: AccessSettings, decided: Decided) -> None:
    writer = build_writer(settings, "cli")
    await writer.start()
    try:
        await writer.write(decided.messages)
    finally:
        await writer.stop()


def _record(settings: AccessSettings, decided: Decided) -> None:
    try:
        asyncio.run(_write(settings, decided))
    except Exception as error:  # any failure to record: say so, and that nothing was
        raise fail(
            4, f"error: nothing recorded, the transaction failed ({type(error).__name__})"
        ) from None
    if decided.refusal is not None:
        raise fail(1, f"refused ({decided.refusal.code}): {decided.refusal.reason}")
    typer.echo(
        json.dumps(
            {
                "application_id": decided.application_id,
                "events": [e.event_id for e in decided.events],
                "status": decided.events[-1].type if decided.events else None,
            }
        )
    )


def json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise fail(2, f"error: {path}: cannot read {what} ({type(error).__name__})") from None
    if not isinstance(value, dict):
        raise fail(2, f"error: {path}: {what} is a JSON object")
    return value


def _known(handler: AccessHandler, application_id: str, account: str) -> None:
    application = handler.applications.get(application_id)
    if application is None or not handler.may_see(account, application):
        raise fail(2, f"error: no application {application_id}")


def new_application(account: str, form_file: Path, kind: str, continues: str | None = None) -> None:
    """``access submit --form`` / ``access renew``: a new application, created and submitted
    in one transaction."""
    settings = _settings()
    actor = _signed_in(settings, account)
    body: dict[str, Any] = {
        "kind": kind, "form": json_file(form_file, "the form"), "continues": continues,
    }  # fmt: skip
    handler = _handler(settings)
    application_id = new_application_id()
    try:
        create = read_create(handler, application_id, actor, body)
    except BadRequest as error:
        raise fail(2, f"error: {error}") from None
    _record(settings, handler.decide_all(application_id, [create, Submit(actor)], utc_now()))


def command(
    account: str,
    application_id: str,
    name: str,
    body: dict[str, Any],
    then_submit: bool = False,
) -> None:
    """One command on an existing application (``submit`` of a draft or returned one, with
    ``--form`` an edit first; ``review``, ``vote``, ``decide``, ``withdraw``, ``revoke``,
    ``close-out``)."""
    settings = _settings()
    actor = _signed_in(settings, account)
    handler = _handler(settings)
    _known(handler, application_id, actor)
    try:
        commands = [read_command(name, actor, body)]
    except BadRequest as error:
        raise fail(2, f"error: {error}") from None
    if then_submit:
        commands.append(Submit(actor))
    _record(settings, handler.decide_all(application_id, commands, utc_now()))


def visa(account: str, application_id: str) -> None:
    """D47: ``access visa``: the member's visa for an approved application; its event and audit
    event are committed before the token is signed and printed (as JSON: the token, its id and
    end). Exit 1 refused (not a member, not approved, ended), 2 no visa key configured."""
    settings = _settings()
    actor = _signed_in(settings, account)
    handler = _handler(settings)
    try:
        signer = build_visa_signer(settings, handler.rules)
    except (OSError, ValueError) as error:
        raise fail(2, f"error: {error}") from None
    if signer is None:
        raise fail(2, "error: no visa key configured (BIOSTREAM_VISA_KEY_FILE)")
    _known(handler, application_id, actor)
    try:
        command = read_command("visa", actor, {})
    except BadRequest as error:
        raise fail(2, f"error: {error}") from None
    decided = handler.decide(application_id, command, utc_now())
    try:
        asyncio.run(_write(settings, decided))
    except Exception as error:  # any failure to record: no visa without its event
        raise fail(
            4, f"error: nothing recorded, the transaction failed ({type(error).__name__})"
        ) from None
    if decided.refusal is not None:
        raise fail(1, f"refused ({decided.refusal.code}): {decided.refusal.reason}")
    handler.applied(decided.events)
    issued = decided.events[0]
    assert isinstance(issued, VisaIssued)
    token = signer.token(handler.applications[application_id], issued)
    typer.echo(
        json.dumps(
            {"application_id": application_id, "jti": issued.jti,
             "expires_at": issued.expires_at.isoformat(), "visa": token}
        )
    )  # fmt: skip


def show(account: str, application_id: str) -> None:
    settings = _settings()
    actor = _signed_in(settings, account)
    handler = _handler(settings)
    _known(handler, application_id, actor)
    view = application_view(handler.applications[application_id], handler.rules)
    typer.echo(json.dumps(view, ensure_ascii=False, indent=2))


def list_applications(account: str, status: str | None) -> None:
    settings = _settings()
    actor = _signed_in(settings, account)
    handler = _handler(settings)
    for application in sorted(handler.applications.values(), key=lambda a: a.created_at):
        if handler.may_see(actor, application) and status in (None, application.status):
            typer.echo(json.dumps(application.summary(), ensure_ascii=False))


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise fail(2, f"error: {path}: cannot read ({type(error).__name__})") from None


def answers(items: list[str]) -> dict[str, bool]:
    """``--answer item=yes`` (or ``=no``) lines as the checklist's answers."""
    found: dict[str, bool] = {}
    for item in items:
        name, _, value = item.partition("=")
        if value.lower() not in ("yes", "no"):
            raise fail(2, f"error: --answer {name}=yes or {name}=no")
        found[name] = value.lower() == "yes"
    return found


def users_file_line(account: str, read: Callable[[str], str] = getpass.getpass) -> None:
    """``access hash-password``: an accounts-file line, the password read from the terminal."""
    typer.echo(f"{account}:{hash_password(read('password: '))}")
