"""D31 on the real broker, under the ACL matrix: the principal an event in the ledger names is the
one Kafka authenticated. A principal may write only its own audit topic; an event it writes
there claiming another principal is dead-lettered, never chained."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiokafka.errors import TopicAuthorizationFailedError
from biostream.codec import default_codec
from biostream.envelopes import Envelopes
from biostream.kafka import plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import split_feed

pytestmark = pytest.mark.integration

CODEC = default_codec()
NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
CSV = (
    "message_id,patient_no,family_name,given_name,birth_date,sex,rrn,phone,address,postal_code,"
    "visit_date,kcd_code,kcd_version,lab_loinc,lab_value,lab_unit\n"
    "V-1,8100001,정,하늘,1981-07-09,F,,010-5555-0101,,,2026-02-01,I10,9,,,\n"
)


async def send(settings: KafkaSettings, topic: str, value: bytes, key: bytes) -> None:
    producer = plain_producer(settings, "principal-probe")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_an_event_claiming_another_principal_never_enters_the_ledger(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    principals = access.render(access.load_matrix(), prefix=topic_prefix, hospitals=["H001"])
    async with running_pipeline(kafka, topic_prefix, ["H001"], Keys.fresh()) as observer:
        # (The services' own principals are the pipeline's; re-applying them would change
        # their passwords under them.)
        wanted = {role: principals[role] for role in ("steward", "hospital-h001")}
        credentials = await asyncio.to_thread(access.apply, kafka, wanted)
        await access.wait_until_usable(credentials)
        steward = credentials.settings("steward")
        # Written as the steward, to its own topic, but claiming to be the pseudonymizer.
        impostor = Envelopes("linkage", f"User:{topic_prefix}svc-pseudonymizer", CODEC, topics)
        forged = impostor.audit("pseudonymizer.released", ["forged-input"], ["forged-out"], NOW)
        assert forged.value is not None and forged.key is not None
        await send(steward, topics.audit_events_of("steward"), forged.value, forged.key)
        # Straight into the pseudonymizer's own audit topic: the broker refuses it.
        with pytest.raises(TopicAuthorizationFailedError):
            await send(steward, forged.topic, forged.value, forged.key)
        hospital = credentials.settings("hospital-h001")
        await publish_messages(hospital, topics.feed("H001"), list(split_feed("csv", CSV.encode())))
        view = observer.view
        for _ in range(600):
            await observer.poll(timeout_ms=200)
            refusals = [
                d for d in view.dead_letters if d["reason_code"] == "AUDIT_PRINCIPAL_MISMATCH"
            ]
            # Settled: the record released, every audit message but the forged one chained.
            if refusals and view.curated and len(view.ledger) == view.audit_messages - 1:
                break
        else:
            codes = [d["reason_code"] for d in view.dead_letters]
            raise AssertionError(f"not settled: {view.progress(1)}, dead letters {codes}")

    [refused] = [d for d in view.dead_letters if d["reason_code"] == "AUDIT_PRINCIPAL_MISMATCH"]
    assert refused["message"] == (
        f"events claim User:{topic_prefix}svc-pseudonymizer but were written by "
        f"User:{topic_prefix}steward"
    )
    chained = view.ledger_event_ids()
    forged_id = CODEC.decode(forged.value, "AuditEvent")["event_id"]
    assert forged_id not in chained
    # Every event that did enter the ledger names the principal that wrote its topic.
    by_id = {e["event_id"]: e for e in view.audit_events}
    assert chained and all(by_id[i]["principal"].startswith("User:") for i in chained)
    services = {f"User:{topic_prefix}{role}" for role in access.SERVICE_ROLES.values()}
    assert {by_id[i]["principal"] for i in chained} <= services
