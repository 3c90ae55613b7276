"""What the command line does: catch up with the topics once, then list or decide."""

from __future__ import annotations

import asyncio
from typing import Any

from biostream.restore import READ_SETTING
from prometheus_client import CollectorRegistry

from review.adapters.stream import Publisher, StreamFollower, utc_now
from review.bootstrap import build_handler
from review.handlers import ReviewHandler, UnknownTask
from review.settings import ReviewSettings


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
