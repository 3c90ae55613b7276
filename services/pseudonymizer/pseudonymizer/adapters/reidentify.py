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
from biostream.codec import default_codec
from biostream.envelopes import Envelopes
from biostream.restore import read_from_start
from biostream.settings import KafkaSettings
from biostream.topics import Topics

from pseudonymizer.domain.pseudonyms import pseudonym
from pseudonymizer.domain.release import Keyed
from pseudonymizer.state import DECISION_PREFIX, decode_facts


@dataclass(frozen=True)
class Answer:
    person_id: str | None
    key_version: str | None


def find_person(person_ids: set[str], target: str, keys_by_version: dict[str, bytes]) -> Answer:
    """D-pseudonymizer-7: recompute every known person's pseudonym under every key version of
    the domain; there is no pseudonym-to-person table to look up."""
    for version, key in sorted(keys_by_version.items()):
        for person_id in person_ids:
            if pseudonym(key, person_id) == target:
                return Answer(person_id, version)
    return Answer(None, None)


async def read_person_ids(kafka: KafkaSettings, changelog: str, limit_s: float) -> set[str]:
    """Person ids of the newest decision of every patient_ref in the pseudonymizer's state, read to
    the changelog's end offsets at the start, or ``ReadStalled`` (D26): an answer from part of the
    state could be a false "not found"."""
    latest: dict[bytes, bytes | None] = {}
    async for batch in read_from_start(
        kafka, "pseudonymizer-reidentify", [changelog], limit_s, max_records=10_000
    ):
        for records in batch.values():
            for record in records:
                if record.key is not None and record.key.startswith(DECISION_PREFIX.encode()):
                    latest[record.key] = record.value
    return {decode_facts(v).person_id for v in latest.values() if v is not None}


async def audit_refusal(
    kafka: KafkaSettings,
    topics: Topics,
    principal: str,
    dataset: str,
    target: str,
    approval_ref: str,
    reason_code: str,
    clock: type[dt.datetime] = dt.datetime,
) -> None:
    """D35: a request refused for its approval is recorded too (acknowledged by the broker) as
    ``pseudonymizer.reidentification_refused``: who asked, for which dataset and pseudonym, under
    which reference, and why it was refused. Nothing is looked up."""
    envelopes = Envelopes("pseudonymizer", principal, default_codec(), topics)
    now = clock.now(dt.UTC)
    request = f"reidentify:{dataset}:{target}:{approval_ref}:{now.isoformat()}"
    refused = envelopes.audit(
        "pseudonymizer.reidentification_refused", [request], [], now,
        outcome="refused", dataset=dataset, purpose=approval_ref, reason_code=reason_code,
    )  # fmt: skip
    producer = kafka_clients.plain_producer(kafka, "pseudonymizer-reidentify")
    await producer.start()
    try:
        await producer.send_and_wait(refused.topic, refused.value, key=refused.key)
    finally:
        await producer.stop()


async def reidentify(
    kafka: KafkaSettings,
    topics: Topics,
    principal: str,
    keyed: Keyed,
    keys_by_version: dict[str, bytes],
    target: str,
    approval_ref: str,
    clock: type[dt.datetime] = dt.datetime,
    limit_s: float = 120.0,
) -> Answer:
    codec = default_codec()
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
            await read_person_ids(kafka, topics.state("pseudonymizer"), limit_s),
            target,
            keys_by_version,
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
