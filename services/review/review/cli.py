"""What the command line does: catch up with the topics once, then list or decide (D-review-3:
the command line never prints identifying data)."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from biostream.logs import configure_logging
from biostream.restore import READ_SETTING, ReadStalled
from prometheus_client import CollectorRegistry

from review.adapters.stream import Publisher, StreamFollower, utc_now
from review.bootstrap import build_handler
from review.domain.auth import hash_password
from review.handlers import ReviewHandler, UnknownTask
from review.settings import ReviewSettings

T = TypeVar("T")


def list_tasks(hospital: str | None) -> None:
    """``review tasks``: the open tasks as JSON lines (references, scores and codes only)."""
    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    for line in _read_through(open_tasks(settings, hospital)):
        typer.echo(json.dumps(line, ensure_ascii=False))


def decide(task_id: str, decision: str, reason: str, reviewer: str, candidate: str | None) -> None:
    """``review decide``: one decision recorded, or exit 2 naming why it was refused."""
    settings = ReviewSettings()
    configure_logging("review", settings.log_level, settings.instance_id)
    try:
        _read_through(record_decision(settings, task_id, decision, reason, reviewer, candidate))
    except (LookupError, ValueError) as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(json.dumps({"task_id": task_id, "decision": decision, "recorded": True}))


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
    handler = build_handler(settings, CollectorRegistry())
    client = f"{settings.topic_prefix}review-cli"
    follower = StreamFollower(
        settings.kafka, client, handler, limit_s=settings.read_timeout_s, setting=READ_SETTING
    )
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
    reviewer: str,
    candidate: str | None,
) -> None:
    handler = await _caught_up(settings)
    try:
        messages = handler.decide(task_id, decision, reason, reviewer, utc_now(), candidate)
    except UnknownTask as error:
        raise LookupError(f"task {task_id} is closed or unknown") from error
    publisher = Publisher(settings.kafka, f"{settings.topic_prefix}review-cli")
    await publisher.start()
    try:
        await publisher.publish(messages)
    finally:
        await publisher.stop()
