"""What the command line does: catch up with the topics once, then list or decide (D-review-3:
the command line never prints identifying data), or unseal one dead letter for a case, audited
first (D35). The command line is the steward's: it runs as the ``steward`` principal, which is
the account its decisions and audit events name (D35)."""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from biostream.contract import Outbound
from biostream.envelopes import dead_letter_sealer
from biostream.kit import tool_principal
from biostream.logs import configure_logging
from biostream.restore import READ_SETTING, ReadStalled
from biostream.sealing import SealError, SealingKeys
from biostream.web_auth import hash_password
from prometheus_client import CollectorRegistry

from review.adapters.dead_letters import find_dead_letter
from review.adapters.stream import Publisher, StreamFollower, utc_now
from review.bootstrap import build_steward_handler
from review.domain.steward import STEWARD_ROLE, NotASteward, case_reference, command_line_steward
from review.handlers import ReviewHandler, UnknownTask
from review.settings import ReviewSettings

T = TypeVar("T")


def list_tasks(hospital: str | None) -> None:
    """``review tasks``: the open tasks as JSON lines (references, scores and codes only)."""
    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    for line in _read_through(open_tasks(settings, hospital)):
        typer.echo(json.dumps(line, ensure_ascii=False))


def decide(task_id: str, decision: str, reason: str, candidate: str | None) -> None:
    """``review decide``: one decision recorded in the name of the steward account the Kafka
    credentials authenticate (D35), or exit 2 naming why it was refused."""
    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    try:
        steward = _steward(settings)
        _read_through(record_decision(settings, task_id, decision, reason, steward, candidate))
    except (LookupError, ValueError, NotASteward) as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(
        json.dumps(
            {"task_id": task_id, "decision": decision, "reviewer": steward, "recorded": True}
        )
    )


def unseal_dead_letter(dead_letter_id: str, case: str) -> None:
    """``review unseal-dead-letter``: D35. The letter's original is shown only after its audit
    event (letter, case, steward; never the bytes) is acknowledged by the broker on the steward's
    audit topic. Exit 1: no such letter, or it does not open with the key (nothing audited,
    nothing shown); 2: unusable request; 3: the topic could not be read to its end; 4: the audit
    event could not be written (nothing shown)."""
    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    try:
        case = case_reference(case)
        steward = _steward(settings)
        keys = dead_letter_sealer(settings)
    except (ValueError, NotASteward) as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(2) from error
    handler = build_steward_handler(settings, CollectorRegistry())
    letter = _read_through(
        find_dead_letter(
            settings.kafka, handler.codec, handler.topics.dead_letters, dead_letter_id,
            settings.read_timeout_s,
        )
    )  # fmt: skip
    if letter is None:
        typer.echo(f"error: no dead letter {dead_letter_id}", err=True)
        raise typer.Exit(1)
    try:
        original = opened(letter, keys)
    except SealError as error:
        typer.echo(f"error: the original does not open: {error}", err=True)
        raise typer.Exit(1) from None
    event = handler.unsealed(dead_letter_id, case, steward, letter["hospital"], utc_now())
    try:
        asyncio.run(_publish(settings, [event]))
    except Exception as error:  # any failure to record: fail closed, show nothing
        typer.echo(
            f"error: the audit event could not be written ({type(error).__name__}); "
            "nothing is shown",
            err=True,
        )
        raise typer.Exit(4) from None
    line: dict[str, Any] = {
        "dead_letter_id": dead_letter_id,
        "case": case,
        "audit_event_id": event.key.decode() if event.key else None,
    }
    try:
        line["original"] = original.decode("utf-8")
    except UnicodeDecodeError:
        line["original_base64"] = base64.b64encode(original).decode()
    typer.echo(json.dumps(line, ensure_ascii=False))


def opened(letter: dict[str, Any], keys: SealingKeys | None) -> bytes:
    """The original bytes of a dead letter: unsealed with the key version its ``seal_key_id``
    names (D33), bound to its id, or as kept when the service wrote it in clear (development
    only, D12)."""
    sealed = letter.get("sealed_original")
    if sealed is None:
        return bytes(letter["original"])
    if keys is None:
        raise SealError("the letter is sealed and no dead-letter key is set")
    return keys.unseal(sealed, str(letter["dead_letter_id"]), letter.get("seal_key_id"))


def _steward(settings: ReviewSettings) -> str:
    return command_line_steward(tool_principal(settings, STEWARD_ROLE), settings.topic_prefix)


def users_file_line(account: str) -> None:
    """``review hash-password``: a users-file line, the password read from the terminal."""
    password = getpass.getpass("password: ")
    typer.echo(f"{account}:{hash_password(password)}")


def _read_through(command: Coroutine[Any, Any, T]) -> T:
    """D26: the commands act on the topics read to their end offsets, or stop (exit 3)."""
    try:
        return asyncio.run(command)
    except ReadStalled as stall:
        typer.echo(f"error: could not read the desk's topics to their end: {stall}", err=True)
        raise typer.Exit(3) from None


async def _caught_up(settings: ReviewSettings) -> ReviewHandler:
    handler = build_steward_handler(settings, CollectorRegistry())
    client = f"{settings.topic_prefix}review-cli"
    follower = StreamFollower(
        settings.kafka, client, handler, limit_s=settings.read_timeout_s, setting=READ_SETTING,
        topics=handler.steward_topics,
    )  # fmt: skip
    await follower.run(asyncio.Event(), until_caught_up=True)
    return handler


async def open_tasks(settings: ReviewSettings, hospital: str | None) -> list[dict[str, Any]]:
    handler = await _caught_up(settings)
    now = utc_now()
    return [task.summary(now) for task in handler.desk.open_tasks(hospital)]


async def record_decision(
    settings: ReviewSettings,
    task_id: str,
    decision: str,
    reason: str,
    steward: str,
    candidate: str | None,
) -> None:
    handler = await _caught_up(settings)
    try:
        messages = handler.decide(task_id, decision, reason, steward, utc_now(), candidate)
    except UnknownTask as error:
        raise LookupError(f"task {task_id} is closed or unknown") from error
    await _publish(settings, messages)


async def _publish(settings: ReviewSettings, messages: list[Outbound]) -> None:
    """Every message acknowledged by the broker (acks=all), or the error."""
    publisher = Publisher(settings.kafka, f"{settings.topic_prefix}review-cli")
    await publisher.start()
    try:
        await publisher.publish(messages)
    finally:
        await publisher.stop()
