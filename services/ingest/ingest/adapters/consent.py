"""Writes a consent event and its audit event in one Kafka transaction (D32): both or neither.

The consent desk runs as its own principal (``consent`` in deploy/acl-matrix.yaml), which may
write ``consent.events`` and ``audit.events`` under transactional ids ``consent-*`` and nothing
else. Each command uses a transactional id of its own, so two desks never fence each other.
"""

from __future__ import annotations

import datetime as dt
import uuid

from biostream.codec import default_codec
from biostream.contracts import CONSENT_EVENT, ConsentEvent
from biostream.envelopes import Envelopes
from biostream.kafka import transactional_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics

from ingest.domain.consent import Subject

SERVICE = "ingest"
AUDIT_ACTIONS = {"GRANTED": "ingest.consent_granted", "WITHDRAWN": "ingest.consent_withdrawn"}


async def record_consent(
    kafka: KafkaSettings,
    topics: Topics,
    principal: str,
    event: ConsentEvent,
    subject: Subject,
    now: dt.datetime,
) -> None:
    """D32: the consent event (key: the participant's reference, so one person's changes stay in
    order on any number of partitions) and the audit event naming it, committed together; an
    error from the broker (e.g. a principal without the right to write) raises and writes
    neither."""
    codec = default_codec()
    envelopes = Envelopes(SERVICE, principal, codec, topics)
    audit = envelopes.audit(
        AUDIT_ACTIONS[event["kind"]],
        [subject.reference],
        [event["event_id"]],
        now,
        hospital=subject.hospital,
        # The audit field holds one dataset; a change for several names them in its event.
        dataset=event["datasets"][0] if len(event["datasets"]) == 1 else None,
    )
    producer = transactional_producer(kafka, f"{topics.prefix}consent-{uuid.uuid4().hex[:16]}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(
                topics.consent_events,
                codec.encode(CONSENT_EVENT, event),
                key=subject.reference.encode(),
            )
            await producer.send(audit.topic, audit.value, key=audit.key)
    finally:
        await producer.stop()
