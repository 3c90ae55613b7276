"""Several linkage workers: one writer owns every input partition, the others stand by; when the
writer leaves, a standby restores the index from the changelog and carries on. No person is
created twice, and the assignment equals a single uninterrupted run."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import AUDIT_EVENT, IDENTITY_RECORD, LINK_DECISION
from biostream.envelopes import Envelopes
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.service import RunnableService
from biostream.settings import KafkaSettings
from biostream.state import StateStore
from biostream.topics import Topics
from biostream_harness.linkage_stream import identity_records, publish, read_all
from linkage.bootstrap import build
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from linkage.settings import LinkageSettings
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry())
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def handler_of(service: RunnableService) -> LinkageHandler:
    handler = service.processor.handler
    assert isinstance(handler, LinkageHandler)
    return handler


def linked_records(events: list[dict[str, Any]]) -> set[str]:
    return {
        e["inputs"][0]
        for e in events
        if e["action"] in ("linkage.linked", "linkage.confirmed") and e["inputs"]
    }


async def test_one_writer_at_a_time_and_a_standby_takes_over(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    records, _ = identity_records(persons=150, seed=5)
    ids = [r["record_id"] for r in records]
    half = len(records) // 2
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    key = secrets.token_hex(32)

    def worker(name: str) -> RunnableService:
        return build(LinkageSettings.model_validate({
            "kafka": kafka, "topic_prefix": topic_prefix, "poll_timeout_ms": 100,
            "person_key": SecretStr(key), "instance_id": name,
            "dead_letter_key": SecretStr(key), "rrn_key": SecretStr(key),
        }))  # fmt: skip

    workers = {name: worker(name) for name in ("w1", "w2", "w3")}
    stops = {name: asyncio.Event() for name in workers}
    tasks = {name: asyncio.create_task(s.processor.run(stops[name])) for name, s in workers.items()}
    try:
        for _ in range(600):
            if all(s.processor.ready for s in workers.values()):
                break
            await asyncio.sleep(0.1)
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, records[:half],
                      key=lambda r: r["patient_ref"])  # fmt: skip
        await read_all(kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
                       lambda out: linked_records(out) >= set(ids[:half]))  # fmt: skip
        writers = [n for n, s in workers.items() if handler_of(s).index is not None]
        assert len(writers) == 1, f"more than one worker wrote: {writers}"
        [first_writer] = writers
        # The writer leaves; a standby must restore its state and continue.
        stops[first_writer].set()
        await tasks[first_writer]
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, records[half:],
                      key=lambda r: r["patient_ref"])  # fmt: skip
        await read_all(kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
                       lambda out: linked_records(out) >= set(ids), timeout_s=180)  # fmt: skip
        remaining = [n for n in workers if n != first_writer]
        takers = [n for n in remaining if handler_of(workers[n]).index is not None]
        assert len(takers) == 1, f"standbys that wrote: {takers}"
        taker_index = handler_of(workers[takers[0]]).index
        assert taker_index is not None
        assert set(taker_index.refs) == {r["patient_ref"] for r in records}
    finally:
        for stop in stops.values():
            stop.set()
        await asyncio.gather(*tasks.values(), return_exceptions=True)

    # The same records through one handler, no Kafka: what a single uninterrupted writer decides.
    reference = LinkageHandler(
        CODEC, topics, Envelopes("linkage", "User:svc-linkage", CODEC, topics), key.encode(),
        default_params(), LinkageMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    state = StateStore()
    expected: list[dict[str, Any]] = []
    for n, record in enumerate(records):
        message = Inbound(topics.identity_records, 0, n, None,
                          CODEC.encode(IDENTITY_RECORD, record), (), 0)  # fmt: skip
        expected += [CODEC.decode(o.value, LINK_DECISION) for o in reference(message, state, NOW)
                     if o.topic == topics.link_decisions]  # fmt: skip
    decisions = await read_all(kafka, CODEC, topics.link_decisions, LINK_DECISION,
                               lambda out: len(out) >= len(expected))  # fmt: skip
    assert len({d["decision_id"] for d in decisions}) == len(decisions)
    essence = {(d["decision_id"], d["person_id"], d["outcome"]) for d in decisions}
    assert essence == {(d["decision_id"], d["person_id"], d["outcome"]) for d in expected}
    new_persons = [d for d in decisions if d["outcome"] in ("NEW_PERSON", "POSSIBLE_MATCH")]
    assert len({d["person_id"] for d in new_persons}) == len(new_persons)
