"""Reads the whole ledger topic (read_committed), oldest first."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import TopicPartition
from biostream.codec import AvroCodec
from biostream.contracts import LEDGER_ENTRY, LedgerEntry
from biostream.kafka import reader
from biostream.settings import KafkaSettings


async def read_ledger(
    kafka: KafkaSettings, topic: str, codec: AvroCodec
) -> AsyncIterator[LedgerEntry]:
    consumer = reader(kafka, "audit-ledger-reader")
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        idle = 0
        while await consumer.position(partition) < end and idle < 10:
            batch = await consumer.getmany(partition, timeout_ms=500, max_records=5000)
            idle = 0 if batch else idle + 1
            for record in batch.get(partition, []):
                decoded = codec.decode(record.value, LEDGER_ENTRY)
                yield {
                    "sequence": decoded["sequence"],
                    "appended_at": decoded["appended_at"],
                    "event_id": decoded["event_id"],
                    "event_payload": decoded["event_payload"],
                    "prev_hash": decoded["prev_hash"],
                    "entry_hash": decoded["entry_hash"],
                }
    finally:
        await consumer.stop()
