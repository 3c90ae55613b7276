"""Re-identification: pseudonym -> internal person id, only on an approved request, audited first.

There is no mapping table. The lookup recomputes the dataset's pseudonym of every person id the
pseudonymizer's state holds (its changelog, which only the pseudonymizer's principal may read) under
every key version of the domain, and compares. The audit event of the request is committed to
``audit.events`` before the lookup starts, and the outcome's before the answer is returned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from biostream import kafka as kafka_clients
from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics

from pseudonymizer.domain.pseudonyms import pseudonym
from pseudonymizer.domain.release import DECISION_PREFIX, Keyed, PersonFacts


@dataclass(frozen=True)
class Answer:
    person_id: str | None
    key_version: str | None


def find_person(person_ids: set[str], target: str, keys_by_version: dict[str, bytes]) -> Answer:
    for version, key in sorted(keys_by_version.items()):
        for person_id in person_ids:
            if pseudonym(key, person_id) == target:
                return Answer(person_id, version)
    return Answer(None, None)


async def read_person_ids(kafka: KafkaSettings, changelog: str) -> set[str]:
    """Person ids of the newest decision of every patient_ref in the pseudonymizer's state."""
    partitions = await kafka_clients.topic_partitions(kafka, [changelog])
    reader = kafka_clients.reader(kafka, "pseudonymizer-reidentify")
    latest: dict[bytes, bytes | None] = {}
    await reader.start()
    try:
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        while True:
            positions = [await reader.position(tp) for tp in partitions]
            if all(pos >= end[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            batch = await reader.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.key.startswith(DECISION_PREFIX.encode()):
                        latest[record.key] = record.value
    finally:
        await reader.stop()
    return {PersonFacts.from_bytes(v).person_id for v in latest.values() if v is not None}


async def reidentify(
    kafka: KafkaSettings,
    topics: Topics,
    principal: str,
    keyed: Keyed,
    keys_by_version: dict[str, bytes],
    target: str,
    approval_ref: str,
    clock: type[dt.datetime] = dt.datetime,
) -> Answer:
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes("pseudonymizer", principal, codec, topics)
    dataset = keyed.policy.dataset
    # The time makes each request its own audit event (ids are deterministic otherwise).
    request = f"reidentify:{dataset}:{target}:{approval_ref}:{clock.now(dt.UTC).isoformat()}"
    producer = kafka_clients.plain_producer(kafka, "pseudonymizer-reidentify")
    await producer.start()
    try:
        asked = envelopes.audit(
            "pseudonymizer.reidentification_requested", [request], [], clock.now(dt.UTC),
            outcome="requested", dataset=dataset, purpose=approval_ref,
        )  # fmt: skip
        await producer.send_and_wait(asked.topic, asked.value, key=asked.key)
        answer = find_person(
            await read_person_ids(kafka, topics.state("pseudonymizer")), target, keys_by_version
        )
        done = envelopes.audit(
            "pseudonymizer.reidentified", [request],
            [f"key:{answer.key_version}" if answer.person_id else "not-found"], clock.now(dt.UTC),
            outcome="found" if answer.person_id else "not_found", dataset=dataset,
            purpose=approval_ref,
        )  # fmt: skip
        await producer.send_and_wait(done.topic, done.value, key=done.key)
    finally:
        await producer.stop()
    return answer
