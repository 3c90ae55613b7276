"""D46: publishing a signed release-policy version on ``access.policies`` (rules and signing
are ``biostream.release_policies``)."""

from __future__ import annotations

from biostream import kafka as kafka_clients
from biostream.codec import AvroCodec
from biostream.contracts import RELEASE_POLICY_VERSION, ReleasePolicyVersion
from biostream.settings import KafkaSettings
from biostream.topics import Topics


async def publish(
    kafka: KafkaSettings, topics: Topics, codec: AvroCodec, record: ReleasePolicyVersion
) -> None:
    """D46: one policy version onto ``access.policies``, keyed by its dataset, acknowledged by
    the broker before this returns. Used by tests and the demo now, by the access service later."""
    producer = kafka_clients.plain_producer(kafka, "release-policy-publisher")
    await producer.start()
    try:
        value = codec.encode(RELEASE_POLICY_VERSION, record)
        await producer.send_and_wait(topics.access_policies, value, key=record["dataset"].encode())
    finally:
        await producer.stop()
