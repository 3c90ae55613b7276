"""The processor's batch path on the real broker: a transaction's outputs, appended into record
batches per partition (more than one per partition when they fill), arrive complete, in order per
partition, where Kafka's default partitioner puts them, and only once committed (D16)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from aiokafka.partitioner import DefaultPartitioner
from biostream.batching import PartitionCache, TransactionOutputs
from biostream.kafka import ensure_topics, reader, topic_partitions, transactional_producer
from biostream.settings import KafkaSettings
from biostream.topics import FOREVER, TopicSpec

pytestmark = pytest.mark.integration


async def read_committed(kafka: KafkaSettings, topic: str, expected: int) -> dict[int, list]:
    partitions = await topic_partitions(kafka, [topic])
    consumer = reader(kafka, f"test-{topic}")
    await consumer.start()
    found: dict[int, list] = defaultdict(list)
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for _ in range(200):
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                found[tp.partition] += [(r.key, r.value) for r in records]
            if sum(len(v) for v in found.values()) >= expected and not batch:
                break
    finally:
        await consumer.stop()
    return found


async def test_outputs_larger_than_a_batch_arrive_whole_in_order_and_partitioned_as_kafka_does(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}batched"
    await ensure_topics(kafka, [TopicSpec(topic, 3, FOREVER)])
    producer = transactional_producer(kafka, f"{topic_prefix}batched-tx")
    await producer.start()
    # 3,000 records of 1 KiB: about 1 MiB per partition, several 256 KiB batches each.
    records = [(f"key-{n % 97}".encode(), n.to_bytes(4, "big") + bytes(1020)) for n in range(3000)]
    try:
        cache = PartitionCache(producer)
        await cache.ensure({topic})
        # An aborted transaction first: none of it may be read.
        await producer.begin_transaction()
        aborted = TransactionOutputs(producer, cache)
        for key, value in records[:50]:
            aborted.add(topic, b"aborted" + value, key)
        await aborted.send()
        await producer.abort_transaction()

        await producer.begin_transaction()
        outputs = TransactionOutputs(producer, cache)
        for key, value in records:
            outputs.add(topic, value, key)
        await outputs.send()
        await producer.commit_transaction()
    finally:
        await producer.stop()

    found = await read_committed(kafka, topic, len(records))
    assert sum(len(v) for v in found.values()) == len(records)
    assert not any(value.startswith(b"aborted") for v in found.values() for _, value in v)
    partitions = [0, 1, 2]
    expected: dict[int, list] = defaultdict(list)
    for key, value in records:
        expected[DefaultPartitioner()(key, partitions, partitions)].append((key, value))
    assert dict(found) == dict(expected)  # same partition as Kafka's partitioner, same order
