"""Writing a transaction's outputs as whole record batches, one per partition.

aiokafka's ``send`` costs about 25 us of Python per record (a coroutine, metadata wait, the
pure-Python murmur2 partitioner, the accumulator's bookkeeping), which was a third of a service's
CPU per input message when each message fans out into several records. A transaction already knows
all its outputs before it commits, so they are appended straight into aiokafka's ``BatchBuilder``
(a C extension) per partition and handed over with ``send_batch``: the same records in the same
partitions, in the same order per partition, at a fraction of the cost.

Partitions are chosen exactly as Kafka's default partitioner does (murmur2 of the key, positive,
modulo the partition count; no key: spread), so keyed records land where any other producer,
Java or Python, would put them: compacted topics and per-key order stay correct.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import struct
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as an unsigned 32-bit
    value; the same as ``aiokafka.partitioner.murmur2`` (a test compares them), unpacking all
    4-byte words at once instead of byte by byte."""
    length = len(data)
    h = _SEED ^ length
    whole = length // 4
    for k in struct.unpack_from(f"<{whole}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = whole * 4
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


# murmur2 in Python costs ~4.5 us for a 35-byte key; a message's outputs often share one (ingest
# writes a patient's identity and clinical records under its patient_ref), a cache hit ~0.15 us.
_murmur2_of_recent_keys = functools.lru_cache(maxsize=16384)(murmur2)


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """Kafka's default partition of a keyed record (``toPositive(murmur2(key)) % count``)."""
    if len(partitions) == 1:
        return partitions[0]
    return partitions[(_murmur2_of_recent_keys(key) & 0x7FFFFFFF) % len(partitions)]


# How long a topic's partition list is trusted before it is asked for again (partitions can be
# added to a topic while the service runs; the producer's own metadata refresh sees that).
PARTITIONS_TTL_S = 30.0


class PartitionCache:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._known: dict[str, tuple[float, list[int]]] = {}

    async def ensure(self, topics: set[str]) -> None:
        now = time.monotonic()
        for topic in topics:
            known = self._known.get(topic)
            if known is None or now - known[0] > PARTITIONS_TTL_S:
                partitions = sorted(await self._producer.partitions_for(topic))
                self._known[topic] = (now, partitions)

    def __getitem__(self, topic: str) -> list[int]:
        return self._known[topic][1]


class TransactionOutputs:
    """The records of one transaction, appended into one batch builder per partition (more when
    a batch fills up), then handed to the producer together.

    ``add`` needs the partitions of every topic it is given (``PartitionCache.ensure`` first).
    """

    def __init__(self, producer: AIOKafkaProducer, partitions: PartitionCache) -> None:
        self._producer = producer
        self._partitions = partitions
        self._open: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[tuple[str, int], Any]] = []
        self._spread = itertools.count()
        self.records = 0

    def add(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        partitions = self._partitions[topic]
        if key is None:
            partition = partitions[next(self._spread) % len(partitions)]
        else:
            partition = partition_for(key, partitions)
        target = (topic, partition)
        builder = self._open.get(target)
        if builder is None:
            builder = self._open[target] = self._producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value, headers=list(headers)) is None:
            # Full: close it (sent first, so the partition keeps the order of ``add``) and start
            # the next one. A record that does not fit an empty batch is too large for Kafka.
            self._full.append((target, builder))
            builder = self._open[target] = self._producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value, headers=list(headers)) is None:
                raise ValueError(f"a record for {topic} is larger than the producer's batch size")
        self.records += 1

    async def send(self) -> None:
        """Hands every batch to the producer and waits until the broker has acknowledged all of
        them, so that the transaction is only committed over data the broker holds."""
        deliveries = []
        for (topic, partition), builder in [*self._full, *self._open.items()]:
            deliveries.append(await self._producer.send_batch(builder, topic, partition=partition))
        self._full.clear()
        self._open.clear()
        if deliveries:
            await asyncio.gather(*deliveries)
