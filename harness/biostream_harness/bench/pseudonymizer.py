"""Benchmark: pseudonymized records per second per core, beside a bare Kafka relay's rate.

    python -m biostream_harness.bench.pseudonymizer [--records 50000] [--persons 5000]
                                                 [--bootstrap HOST:PORT | --no-broker]

Measures, on structured clinical records (codes, values, dates; no free text):

1. ``transform``: the release transformation alone (generalisation, keyed pseudonym, curated and
   specimen ids, date shift): ``pseudonymizer.domain.release.build`` over decoded records.
2. ``handler``: the whole per-message work of the service without Kafka: Avro decode, state
   look-ups, k-anonymity admission, release, Avro encode of the curated record and its audit event.
3. ``relay`` (needs a broker): a bare aiokafka consume-and-produce loop copying the same encoded
   records from one topic to another, no decoding: what moving bytes through Kafka costs by itself.
   Written here rather than importing ``biostream_harness.bench.relay`` (being written on the ingest
   branch) so this module stands alone.
4. ``service`` (needs a broker): the real pseudonymizer service (transactions, changelog, audit
   events) in this process, over input already on the broker, from its start to the last release
   (a counting consumer in the same process is included).

Rates are records per CPU-second of this process (``time.process_time``): per core, because the
loops are single-threaded; the broker's own CPU is not counted. Wall-clock rates are printed too.
Starts its own broker (about 10 s) unless ``--bootstrap`` names one; ``--no-broker`` skips 3 and 4.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import CLINICAL_RECORD, LINK_DECISION
from biostream.envelopes import Envelopes
from biostream.kafka import ensure_topics, plain_producer, reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.state import StateStore
from biostream.topics import FOREVER, Topics, TopicSpec
from prometheus_client import CollectorRegistry
from pseudonymizer.bootstrap import build as build_pseudonymizer
from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.domain.release import Keyed, PersonFacts, build, quasi_identifiers
from pseudonymizer.handlers import PseudonymizerHandler, PseudonymizerMetrics
from pseudonymizer.settings import PseudonymizerSettings
from pydantic import SecretStr

from biostream_harness.bench.measure import Clock

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[3]
POLICY = REPO / "policies" / "cohort-demo.json"


@dataclass
class Rate:
    name: str
    records: int
    cpu_s: float
    wall_s: float

    def line(self) -> str:
        per_core = self.records / self.cpu_s if self.cpu_s else float("inf")
        wall = self.records / self.wall_s if self.wall_s else float("inf")
        return (
            f"{self.name:<10} {self.records:>8} records  {per_core:>10,.0f} rec/s per core"
            f"  {wall:>10,.0f} rec/s wall  ({self.cpu_s:.2f} cpu-s, {self.wall_s:.2f} s)"
        )


def clinical_records(records: int, persons: int) -> list[dict[str, Any]]:
    kinds = [
        ("Condition", "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9", "E11.9", None, None),
        ("Observation", "http://loinc.org", "4548-4", 7.1, "%"),
        ("MedicationRequest", "http://www.hira.or.kr/edi", "642101260", None, None),
    ]
    out = []
    for n in range(records):
        kind, system, code, value, unit = kinds[n % len(kinds)]
        out.append(
            {
                "record_id": f"H00{n % 3 + 1}/M{n}/1", "patient_ref": f"pr_{n % persons:08d}",
                "hospital": f"H00{n % 3 + 1}", "message_id": f"M{n}", "source_format": "FHIR",
                "received_at": NOW, "resource_type": kind,
                "event_date": dt.date(2025, 1, 1) + dt.timedelta(days=n % 365),
                "code_system": system, "code": code, "code_version": "9", "value_number": value,
                "value_unit": unit, "value_text": None, "specimen_refs": [], "quality_flags": [],
            }
        )  # fmt: skip
    return out


def decisions(persons: int) -> list[dict[str, Any]]:
    return [decision(p) for p in range(persons)]


def decision(p: int) -> dict[str, Any]:
    return {
        "decision_id": f"pr_{p:08d}/0", "patient_ref": f"pr_{p:08d}", "record_id": "x",
        "hospital": "H001", "person_id": f"P{p:08d}", "previous_person_id": None,
        "outcome": "NEW_PERSON", "score": 0.0, "rule": "bench", "sequence": 0,
        "decided_at": NOW, "birth_year": 1940 + p % 60, "sex": "MF"[p % 2],
        "province_code": ["11", "26", "41", "48"][p % 4], "birth_month": p % 12 + 1,
        "postal_prefix": "481", "district_code": None,
    }  # fmt: skip


def bench_transform(keyed: Keyed, records: list[dict[str, Any]], persons: int) -> Rate:
    facts = [PersonFacts.from_decision(d) for d in decisions(persons)]
    with Clock() as clock:
        for n, record in enumerate(records):
            person = facts[n % persons]
            build(record, person, keyed, quasi_identifiers(record, person, keyed.policy), NOW)
    return Rate("transform", len(records), clock.cpu_s, clock.wall_s)


def bench_handler(keyed: Keyed, records: list[dict[str, Any]], persons: int) -> Rate:
    codec = AvroCodec(SchemaRegistry())
    topics = Topics("bench.")
    handler = PseudonymizerHandler(
        codec,
        topics,
        Envelopes("pseudonymizer", "User:bench", codec, topics),
        [keyed],
        PseudonymizerMetrics.create(CollectorRegistry()),
    )
    state = StateStore()
    for n, d in enumerate(decisions(persons)):
        message = Inbound(topics.link_decisions, 0, n, None, codec.encode(LINK_DECISION, d), (), 0)
        handler(message, state, NOW)
    inbound = [
        Inbound(topics.clinical_records, 0, n, None, codec.encode(CLINICAL_RECORD, r), (), 0)
        for n, r in enumerate(records)
    ]
    released = 0
    with Clock() as clock:
        for message in inbound:
            for out in handler(message, state, NOW):
                released += out.topic == topics.curated(keyed.policy.dataset)
    if keyed.policy.k_anonymity.min_k == 1:
        assert released == len(records)
    return Rate("handler", len(records), clock.cpu_s, clock.wall_s)


async def produce(kafka: KafkaSettings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = plain_producer(kafka, "bench-producer")
    await producer.start()
    try:
        for key, value in values:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def count_until(kafka: KafkaSettings, topic: str, expected: int) -> None:
    consumer = reader(kafka, "bench-counter")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(r) for r in batch.values())
    finally:
        await consumer.stop()


async def bench_relay(kafka: KafkaSettings, prefix: str, values: list[tuple[bytes, bytes]]) -> Rate:
    source, target = f"{prefix}relay.in", f"{prefix}relay.out"
    await ensure_topics(kafka, [TopicSpec(source, 3, FOREVER), TopicSpec(target, 3, FOREVER)])
    await produce(kafka, source, values)
    consumer = reader(kafka, "bench-relay")
    producer = plain_producer(kafka, "bench-relay")
    await consumer.start()
    await producer.start()
    try:
        partitions = await topic_partitions(kafka, [source])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        relayed = 0
        with Clock() as clock:
            while relayed < len(values):
                batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
                for records in batch.values():
                    for record in records:
                        await producer.send(target, record.value, key=record.key)
                    relayed += len(records)
            await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return Rate("relay", relayed, clock.cpu_s, clock.wall_s)


async def bench_service(
    kafka: KafkaSettings, prefix: str, records: list[dict[str, Any]], persons: int
) -> Rate:
    codec = AvroCodec(SchemaRegistry())
    topics = Topics(prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-demo"]))
    await produce(
        kafka,
        topics.link_decisions,
        [(d["patient_ref"].encode(), codec.encode(LINK_DECISION, d)) for d in decisions(persons)],
    )
    settings = PseudonymizerSettings.model_validate(
        {
            "kafka": kafka, "topic_prefix": prefix, "policy_dir": POLICY.parent,
            "pseudonym_keys": {"cohort-demo/k1": SecretStr(secrets.token_hex(32))},
            "batch_max_records": 2000,
            "dead_letter_key": SecretStr(secrets.token_hex(32)),
        }
    )  # fmt: skip
    values = [(r["patient_ref"].encode(), codec.encode(CLINICAL_RECORD, r)) for r in records]
    await produce(kafka, topics.clinical_records, values)
    # The input is on the broker before the service starts: the clock sees the service's work
    # (and this process's counting consumer), not the feeding producer.
    service = build_pseudonymizer(settings)
    stop = asyncio.Event()
    with Clock() as clock:
        task = asyncio.create_task(service.processor.run(stop))
        try:
            await count_until(kafka, topics.curated("cohort-demo"), len(records))
        finally:
            stop.set()
            await task
    return Rate("service", len(records), clock.cpu_s, clock.wall_s)


async def with_broker(args: argparse.Namespace, records: list[dict[str, Any]]) -> list[Rate]:
    from biostream_dev import broker

    prefix = f"bench{secrets.token_hex(3)}."
    codec = AvroCodec(SchemaRegistry())
    values = [(r["patient_ref"].encode(), codec.encode(CLINICAL_RECORD, r)) for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        if args.bootstrap is None:
            print("starting a Kafka broker (SCRAM over TLS) ...", flush=True)
            started = broker.start_broker(Path(tmp) / "kafka", authentication=True)
            kafka = broker.admin_settings(Path(tmp) / "kafka", started.bootstrap)
        else:  # a development broker of your own, without authentication
            kafka = KafkaSettings(
                bootstrap_servers=args.bootstrap,
                security_protocol="PLAINTEXT",
                allow_plaintext=True,
            )
        try:
            relay = await bench_relay(kafka, prefix, values)
            service = await bench_service(kafka, prefix, records, args.persons)
        finally:
            if args.bootstrap is None:
                broker.stop_broker(Path(tmp) / "kafka")
    return [relay, service]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--k", type=int, default=1, help="min_k of the benchmark policy")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--no-broker", action="store_true", help="skip relay and service")
    args = parser.parse_args()
    document = ReleasePolicy.model_validate_json(POLICY.read_text()).model_dump()
    document["k_anonymity"] = {"min_k": args.k, "max_hold_hours": 168}
    keyed = Keyed(ReleasePolicy.model_validate(document), secrets.token_bytes(32))
    records = clinical_records(args.records, args.persons)
    print(
        f"{args.records} structured clinical records, {args.persons} persons, policy "
        f"{keyed.policy.policy_version} (k={args.k}, date shift, 5-year age bands)"
    )
    rates = [
        bench_transform(keyed, records, args.persons),
        bench_handler(keyed, records, args.persons),
    ]
    if not args.no_broker:
        rates += asyncio.run(with_broker(args, records))
    for rate in rates:
        print(rate.line())


if __name__ == "__main__":
    main()
