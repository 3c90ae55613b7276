"""Reads the audit topics from Kafka (read_committed, no consumer group), oldest first: every
topic to its end offsets as of the start of the read, or ``ReadStalled`` (D26)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiokafka import TopicPartition
from biostream.codec import AvroCodec
from biostream.contracts import (
    LEDGER_CHECKPOINT,
    LEDGER_ENTRY,
    LedgerCheckpoint,
    LedgerEntry,
)
from biostream.kafka import admin_client, plain_producer, reader, topic_partitions
from biostream.restore import read_from_start
from biostream.settings import KafkaSettings


async def _records(
    kafka: KafkaSettings, client_id: str, topics: list[str], limit_s: float
) -> AsyncIterator[tuple[TopicPartition, int, bytes | None]]:
    """Every committed record of ``topics`` up to their end offsets at the start, or
    ``ReadStalled`` (D26): a check must never run on part of the ledger."""
    async for batch in read_from_start(kafka, client_id, topics, limit_s):
        for partition, records in batch.items():
            for record in records:
                yield partition, record.offset, record.value


async def read_ledger(
    kafka: KafkaSettings, topic: str, codec: AvroCodec, limit_s: float
) -> AsyncIterator[LedgerEntry]:
    """D26: every committed ledger entry, oldest first, up to the end offsets at the start of the
    read, or ``ReadStalled``: never part of the ledger as if it were all of it."""
    async for _, _, value in _records(kafka, "audit-ledger-reader", [topic], limit_s):
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


async def read_checkpoints(
    kafka: KafkaSettings, topic: str, codec: AvroCodec, limit_s: float
) -> list[LedgerCheckpoint]:
    checkpoints: list[LedgerCheckpoint] = []
    async for _, _, value in _records(kafka, "audit-checkpoint-reader", [topic], limit_s):
        decoded = codec.decode(value, LEDGER_CHECKPOINT)
        checkpoints.append(
            {
                "size": decoded["size"],
                "root_hash": decoded["root_hash"],
                "tip_hash": decoded["tip_hash"],
                "checkpoint_at": decoded["checkpoint_at"],
                "key_id": decoded["key_id"],
                "signature": decoded["signature"],
                "handover": decoded.get("handover"),
            }
        )
    return checkpoints


async def published_positions(kafka: KafkaSettings, feed_pattern: str, limit_s: float) -> list[str]:
    """D-audit-6, D35: topic/partition/offset of every message still on the hospital feed topics,
    from each partition's first and end offsets (Describe on the feeds, no Read): no message is
    fetched, so the auditor reconciles without the right to read what hospitals sent.

    Every offset in between is a message because feeds hold no transaction markers (hospital
    principals have no transactional ids in the ACL matrix) and are not compacted; a marker,
    should one ever appear, would be reported as unaccounted, never hide a missing message."""
    del limit_s  # offsets are one request per broker; nothing is read to an end
    admin = admin_client(kafka, "audit-reconcile")
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if re.match(feed_pattern, t))
    finally:
        await admin.close()
    if not names:
        return []
    partitions = await topic_partitions(kafka, names)
    consumer = reader(kafka, "audit-reconcile-reader")
    await consumer.start()
    try:
        first = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return [
        f"{tp.topic}/{tp.partition}/{offset}"
        for tp in sorted(partitions)
        for offset in range(first[tp], end[tp])
    ]


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
    kafka: KafkaSettings, topic: str, codec: AvroCodec, pseudonym: str, limit_s: float
) -> list[str]:
    """Curated ids of one pseudonym's records on a dataset's curated topic."""
    from biostream.contracts import CURATED_RECORD

    found: list[str] = []
    async for _, _, value in _records(kafka, "audit-trace-curated", [topic], limit_s):
        record = codec.decode(value, CURATED_RECORD)
        if record["pseudonym"] == pseudonym:
            found.append(record["curated_id"])
    return found
