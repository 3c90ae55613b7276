"""The benchmark's contract floor writes what the pipeline writes for the same feed: the same
contracts, counts and topics per message, curated ids the benchmark's matcher recognises, and a
ledger entry per audit batch that chains to the one before."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from types import SimpleNamespace

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT_BATCH,
    CLINICAL_RECORD,
    CURATED_RECORD,
    IDENTITY_RECORD,
    LEDGER_ENTRY,
    LINK_DECISION,
)
from biostream.envelopes import audit_events_in
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from biostream_harness.bench.e2e import CuratedMatcher, Feed
from biostream_harness.bench.floor import FloorError, floor_hop
from biostream_harness.bench.ingest import HOSPITAL

CODEC = AvroCodec(SchemaRegistry())
TOPICS = Topics("t.")
KEY = b"k" * 32
DATASET = "cohort-demo"
NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def run_hop(hop: str, messages: list[Outbound]) -> list[Outbound]:
    _, handler, _ = floor_hop(hop, TOPICS, HOSPITAL, DATASET, KEY)
    out: list[Outbound] = []
    for offset, message in enumerate(messages):
        inbound = Inbound(message.topic, 0, offset, message.key, message.value, (), 0)
        out += handler(inbound, StateStore(), NOW)
    return out


def on(topic: str, outputs: list[Outbound]) -> list[Outbound]:
    return [out for out in outputs if out.topic == topic]


def pack(outputs: list[Outbound], hop: str) -> list[Outbound]:
    """What the processor does with a transaction's audit events, with the hop's own batching."""
    _, _, batching = floor_hop(hop, TOPICS, HOSPITAL, DATASET, KEY)
    assert batching is not None and batching.topic == TOPICS.audit_events_of(f"svc-{hop}")
    events = [out.value for out in on(batching.topic, outputs) if out.value]
    return batching.pack(events, [None] * len(events), NOW)


def test_each_hop_writes_the_pipelines_records_for_the_same_feed() -> None:
    feed = Feed().take(0, 40)
    messages = [Outbound(TOPICS.feed(HOSPITAL), m.value, m.key) for m in feed]
    oru = sum(b"|ORU^R01|" in m.value for m in feed)
    assert 0 < oru < len(feed)  # both message types are in the sample

    ingested = run_hop("ingest", messages)
    identities = on(TOPICS.identity_records, ingested)
    clinical = on(TOPICS.clinical_records, ingested)
    assert len(identities) == len(feed)
    assert len(clinical) == len(feed) + oru  # ADT^A01: one event, ORU^R01: two
    assert len(on(TOPICS.audit_events_of("svc-ingest"), ingested)) == len(feed)
    records = [CODEC.decode(out.value, IDENTITY_RECORD) for out in identities]
    assert [r["record_id"] for r in records] == [
        f"{HOSPITAL}/{m.value.split(b'|')[9].decode()}/0" for m in feed
    ]
    for out in clinical:  # keyed like the identity, so a patient's records share a partition
        assert out.key == CODEC.decode(out.value, CLINICAL_RECORD)["patient_ref"].encode()

    linked = run_hop("linkage", identities)
    decisions = on(TOPICS.link_decisions, linked)
    assert [CODEC.decode(d.value, LINK_DECISION)["record_id"] for d in decisions] == [
        r["record_id"] for r in records
    ]
    assert len(on(TOPICS.audit_events_of("svc-linkage"), linked)) == len(feed)

    released = run_hop("pseudonymizer", decisions + clinical)
    curated = on(TOPICS.curated(DATASET), released)
    assert len(curated) == len(clinical)
    assert len(on(TOPICS.audit_events_of("svc-pseudonymizer"), released)) == len(clinical)

    matcher = CuratedMatcher(KEY)
    matcher.expect(feed, first_seq=0)
    matched = Counter(matcher(SimpleNamespace(value=out.value)) for out in curated)
    assert set(matched) - {None} == set(range(len(feed)))  # every message's first event
    assert matched[None] == oru  # an ORU's second event is not the one timed
    assert {CODEC.decode(c.value, CURATED_RECORD)["dataset"] for c in curated} == {DATASET}


def test_the_audit_hop_appends_a_chained_entry_per_batch() -> None:
    feed = Feed().take(0, 6)
    ingested = run_hop("ingest", [Outbound(TOPICS.feed(HOSPITAL), m.value, m.key) for m in feed])
    batches = pack(ingested[:9], "ingest") + pack(ingested[9:], "ingest")
    assert len(batches) == 2
    entries = [CODEC.decode(out.value, LEDGER_ENTRY) for out in run_hop("audit", batches)]
    assert [e["sequence"] for e in entries] == [0, 1]
    assert entries[0]["prev_hash"] == b"\x00" * 32
    assert entries[1]["prev_hash"] == entries[0]["entry_hash"]
    for entry, batch in zip(entries, batches, strict=True):
        assert entry["event_payload"] == batch.value
        assert entry["entry_hash"] == hashlib.sha256(entry["prev_hash"] + batch.value).digest()
        assert entry["event_id"] == CODEC.decode(batch.value, AUDIT_EVENT_BATCH)["batch_id"]
    events = [e for entry in entries for e in audit_events_in(CODEC, entry["event_payload"])]
    assert len(events) == len(feed)


def test_input_it_was_not_built_for_stops_it_rather_than_pass_unmeasured() -> None:
    with pytest.raises(FloorError):
        run_hop("ingest", [Outbound(TOPICS.feed(HOSPITAL), b"MSH|^~\\&|not a bench message")])
    assert floor_hop("audit", TOPICS, HOSPITAL, DATASET, KEY)[2] is None  # it writes no events
    with pytest.raises(ValueError, match="no floor hop"):
        floor_hop("review", TOPICS, HOSPITAL, DATASET, KEY)
