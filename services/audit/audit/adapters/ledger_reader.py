"""Reads the audit topics from Kafka (read_committed, no consumer group), oldest first."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from biostream.codec import AvroCodec
from biostream.contracts import (
    LEDGER_CHECKPOINT,
    LEDGER_ENTRY,
    LedgerCheckpoint,
    LedgerEntry,
)
from biostream.kafka import admin_client, plain_producer, reader, topic_partitions
from biostream.settings import KafkaSettings


async def _records(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> AsyncIterator[tuple[TopicPartition, int, bytes | None]]:
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    end = await consumer.end_offsets(partitions)
    for partition in partitions:
        idle = 0
        while await consumer.position(partition) < end[partition] and idle < 10:
            batch = await consumer.getmany(partition, timeout_ms=500, max_records=5000)
            idle = 0 if batch else idle + 1
            for record in batch.get(partition, []):
                yield partition, record.offset, record.value


async def read_ledger(
    kafka: KafkaSettings, topic: str, codec: AvroCodec
) -> AsyncIterator[LedgerEntry]:
    consumer = reader(kafka, "audit-ledger-reader")
    await consumer.start()
    try:
        async for _, _, value in _records(consumer, [TopicPartition(topic, 0)]):
            decoded = codec.decode(value, LEDGER_ENTRY)
            yield {
                "sequence": decoded["sequence"],
                "appended_at": decoded["appended_at"],
                "event_id": decoded["event_id"],
                "event_payload": decoded["event_payload"],
                "prev_hash": decoded["prev_hash"],
                "entry_hash": decoded["entry_hash"],
                "hash_version": decoded["hash_version"],
                "event_count": decoded["event_count"],
                "events_root": decoded["events_root"],
            }
    finally:
        await consumer.stop()


async def read_checkpoints(
    kafka: KafkaSettings, topic: str, codec: AvroCodec
) -> list[LedgerCheckpoint]:
    consumer = reader(kafka, "audit-checkpoint-reader")
    await consumer.start()
    checkpoints: list[LedgerCheckpoint] = []
    try:
        async for _, _, value in _records(consumer, [TopicPartition(topic, 0)]):
            decoded = codec.decode(value, LEDGER_CHECKPOINT)
            checkpoints.append(
                {
                    "size": decoded["size"],
                    "root_hash": decoded["root_hash"],
                    "tip_hash": decoded["tip_hash"],
                    "checkpoint_at": decoded["checkpoint_at"],
                    "key_id": decoded["key_id"],
                    "signature": decoded["signature"],
                }
            )
    finally:
        await consumer.stop()
    return checkpoints


async def published_positions(kafka: KafkaSettings, feed_pattern: str) -> list[str]:
    """topic/partition/offset of every committed message on the hospital feed topics.

    Only positions are kept: the message bytes (identifying data) are never decoded or stored.
    """
    admin = admin_client(kafka, "audit-reconcile")
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if re.match(feed_pattern, t))
    finally:
        await admin.close()
    if not names:
        return []
    consumer = reader(kafka, "audit-reconcile-reader")
    await consumer.start()
    positions: list[str] = []
    try:
        partitions = await topic_partitions(kafka, names)
        async for tp, offset, _ in _records(consumer, partitions):
            positions.append(f"{tp.topic}/{tp.partition}/{offset}")
    finally:
        await consumer.stop()
    return positions


async def feed_retention_starts(kafka: KafkaSettings, feed_pattern: str) -> dict[str, int]:
    """``topic/partition`` -> first offset still on the broker, for feed partitions whose start
    has passed the feed's retention (D21): reconcile can only account for what remains."""
    admin = admin_client(kafka, "audit-reconcile-starts")
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if re.match(feed_pattern, t))
    finally:
        await admin.close()
    if not names:
        return {}
    consumer = reader(kafka, "audit-reconcile-starts")
    await consumer.start()
    try:
        first = await consumer.beginning_offsets(await topic_partitions(kafka, names))
    finally:
        await consumer.stop()
    return {f"{tp.topic}/{tp.partition}": offset for tp, offset in sorted(first.items()) if offset}


async def publish(kafka: KafkaSettings, topic: str, key: bytes, value: bytes) -> None:
    """One message, acknowledged by the broker before this returns."""
    producer = plain_producer(kafka, "audit-cli")
    await producer.start()
    try:
        await (await producer.send(topic, value, key=key))
    finally:
        await producer.stop()


async def curated_ids_of(
    kafka: KafkaSettings, topic: str, codec: AvroCodec, pseudonym: str
) -> list[str]:
    """Curated ids of one pseudonym's records on a dataset's curated topic."""
    from biostream.contracts import CURATED_RECORD

    consumer = reader(kafka, "audit-trace-curated")
    await consumer.start()
    found: list[str] = []
    try:
        partitions = await topic_partitions(kafka, [topic])
        async for _, _, value in _records(consumer, partitions):
            record = codec.decode(value, CURATED_RECORD)
            if record["pseudonym"] == pseudonym:
                found.append(record["curated_id"])
    finally:
        await consumer.stop()
    return found
