"""Kafka for the parameter jobs (D41): the retained identity records read in topic order, the
parameter versions on ``linkage.params`` read to their end, and new version records written.

Every writer of ``linkage.params`` (the training job, the shadow job, a steward's activation)
uses one transactional id, ``<prefix>linkage-params``: starting the producer fences any other
writer still running (its open transaction is aborted, its commit fails), and the versions are
read only after that, so a version number is never allocated twice and an activation always
sees the version active at that moment.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.codec import AvroCodec, DecodeError
from biostream.contract import Outbound
from biostream.contracts import IDENTITY_RECORD, LINKAGE_PARAMS_VERSION, LinkageParamsVersion
from biostream.restore import read_from_start
from biostream.settings import KafkaSettings
from biostream.topics import Topics

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetainedRecord(Generic[T]):
    partition: int
    offset: int
    timestamp_ms: int
    value: T | None  # None: a record linkage would reject (``convert`` said so)


async def read_identity_records(
    kafka: KafkaSettings,
    codec: AvroCodec,
    topics: Topics,
    client_id: str,
    limit_s: float,
    convert: Callable[[dict[str, Any] | None, int], T | None],
) -> list[RetainedRecord[T]]:
    """Every committed identity record up to the end offsets at the start, in topic order: each
    partition in offset order, partitions merged by Kafka timestamp (then partition, offset),
    which is deterministic for a given topic. Each record is handed to ``convert`` (the decoded
    record or None when it is unreadable, and its Kafka timestamp) as it is read, and only what
    that returns is kept: a million decoded records need not be held at once."""
    per_partition: dict[int, list[RetainedRecord[T]]] = {}
    async for batch in read_from_start(kafka, client_id, [topics.identity_records], limit_s):
        for tp, records in batch.items():
            kept = per_partition.setdefault(tp.partition, [])
            for message in records:
                try:
                    decoded: dict[str, Any] | None = codec.decode(message.value, IDENTITY_RECORD)
                except DecodeError:
                    decoded = None
                value = convert(decoded, message.timestamp)
                kept.append(RetainedRecord(tp.partition, message.offset, message.timestamp, value))
    return list(
        heapq.merge(*per_partition.values(), key=lambda r: (r.timestamp_ms, r.partition, r.offset))
    )


async def read_versions(
    kafka: KafkaSettings, codec: AvroCodec, topics: Topics, client_id: str, limit_s: float
) -> list[LinkageParamsVersion]:
    """Every record of ``linkage.params`` in topic order (the newest per version is its state)."""
    out: list[LinkageParamsVersion] = []
    async for batch in read_from_start(kafka, client_id, [topics.linkage_params], limit_s):
        for records in batch.values():
            for message in records:
                if message.value is None:
                    continue
                out.append(codec.decode(message.value, LINKAGE_PARAMS_VERSION))  # type: ignore[arg-type]
    return out


class ParamsWriter:
    """The one writer of ``linkage.params`` at a time (see the module docstring)."""

    def __init__(self, kafka: KafkaSettings, codec: AvroCodec, topics: Topics) -> None:
        self.codec = codec
        self.topics = topics
        self._producer: AIOKafkaProducer = kafka_clients.transactional_producer(
            kafka, f"{topics.prefix}linkage-params"
        )

    async def start(self) -> None:
        await self._producer.start()  # init_transactions: fences every other writer

    async def stop(self) -> None:
        await self._producer.stop()

    async def write(
        self, versions: Sequence[LinkageParamsVersion], others: Sequence[Outbound] = ()
    ) -> None:
        """The version records (and ``others``, e.g. an audit event) in one transaction."""
        await self._producer.begin_transaction()
        try:
            for version in versions:
                await self._producer.send_and_wait(
                    self.topics.linkage_params,
                    self.codec.encode(LINKAGE_PARAMS_VERSION, version),
                    key=str(version["version"]).encode(),
                )
            for out in others:
                await self._producer.send_and_wait(
                    out.topic, out.value, key=out.key, headers=list(out.headers) or None
                )
            await self._producer.commit_transaction()
        except BaseException:
            await self._producer.abort_transaction()
            raise
