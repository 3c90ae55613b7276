"""Publishes feed files to a hospital's feed topic (idempotent producer, acks=all)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from biostream.kafka import plain_producer
from biostream.settings import KafkaSettings

from ingest.domain.files import FeedMessage


async def publish_messages(
    kafka: KafkaSettings,
    topic: str,
    messages: Sequence[FeedMessage],
    on_sent: Callable[[int], None] = lambda _n: None,
) -> int:
    producer = plain_producer(kafka, "ingest-publish")
    await producer.start()
    try:
        pending = []
        for message in messages:
            pending.append(
                await producer.send(
                    topic,
                    message.value,
                    key=message.key,
                    headers=[("content-type", message.content_type.encode())],
                )
            )
            if len(pending) >= 1000:
                for future in pending:
                    await future
                on_sent(len(pending))
                pending.clear()
        for future in pending:
            await future
        on_sent(len(pending))
    finally:
        await producer.stop()
    return len(messages)
