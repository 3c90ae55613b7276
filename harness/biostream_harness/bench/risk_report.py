"""Benchmark (D48): time to answer a disclosure-risk request over the retained data.

    python -m biostream_harness.bench.risk_report [--records 100000] [--persons 10000]
                                                  [--bootstrap HOST:PORT]

Puts ``--persons`` link-decision facts into the pseudonymizer's state changelog (what the
service keeps of each decision, ``dec:<patient_ref>``, as the running service writes it) and
``--records`` clinical records on ``clinical.records``, runs ``pseudonymizer risk``'s loop
(``RiskReports``) in this process, publishes one ``RiskRequest`` (the demo policy with birth
years and districts, k = 5, and five variants: the access service's board variants) and
measures the time from the request to its report on ``access.risk-reports``, the CPU-seconds of
this process meanwhile, and the peak resident memory. The live stream is not involved: the loop
is a process of its own (D48), so it never holds up ``pseudonymizer run``.

Starts its own broker (SCRAM over TLS, about 10 s) unless ``--bootstrap`` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import secrets
import time
from typing import Any

from biostream.codec import AvroCodec
from biostream.contracts import CLINICAL_RECORD, RISK_REPORT, RISK_REQUEST, RiskRequest
from biostream.kafka import ensure_topics, plain_producer, reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from pseudonymizer.adapters.risk_reports import RiskReports
from pseudonymizer.domain.release import PersonFacts
from pseudonymizer.state import decision_key, encode_facts

from biostream_harness.bench.measure import Clock
from biostream_harness.bench.policy_history import with_broker
from biostream_harness.bench.pseudonymizer import POLICY, clinical_records, decision, produce

VARIANTS = {
    "k raised to 10": {"min_k": 10},
    "birth as 5-year age bands": {"birth": "age_band_5"},
    "address as province": {"address": "province"},
    "sex dropped": {"sex": "drop"},
    "all of these": {"min_k": 10, "birth": "age_band_5", "address": "province", "sex": "drop"},
}


def facts(p: int) -> PersonFacts:
    """The bench's persons, each with one of 25 districts of its province (independent of the
    birth year), so that the draft (birth year, sex, district) has classes of every size."""
    d = decision(p)
    d["district_code"] = f"{d['province_code']}{110 + 10 * ((p // 60) % 25)}"
    return PersonFacts.from_decision(d)


async def first_report(kafka: KafkaSettings, topic: str, codec: AvroCodec) -> dict[str, Any]:
    consumer = reader(kafka, "bench-risk-reports")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    return codec.decode(record.value, RISK_REPORT)
    finally:
        await consumer.stop()


async def bench(kafka: KafkaSettings, records: int, persons: int) -> dict[str, Any]:
    codec = AvroCodec(SchemaRegistry())
    prefix = f"bench{secrets.token_hex(3)}."
    topics = Topics(prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    await produce(
        kafka,
        topics.state("pseudonymizer"),
        [(decision_key(f"pr_{p:08d}").encode(), encode_facts(facts(p))) for p in range(persons)],
    )
    chunk = 50_000  # so that a million records never sit in memory at once here
    for start in range(0, records, chunk):
        batch = clinical_records(min(chunk, records - start), persons)
        await produce(
            kafka,
            topics.clinical_records,
            [(r["patient_ref"].encode(), codec.encode(CLINICAL_RECORD, r)) for r in batch],
        )
    document = json.loads(POLICY.read_text())
    document.update(
        dataset="risk-bench", pseudonym_domain="risk-bench", approval_ref="APP-BENCH",
        generalisation={"birth": "year", "sex": "keep", "address": "district",
                        "event_date": {"method": "month"}},
        k_anonymity={"min_k": 5, "max_hold_hours": 168},
    )  # fmt: skip
    document.pop("target_topic")
    request: RiskRequest = {
        "request_id": "APP-BENCH/risk/1", "application_id": "APP-BENCH", "requested_by": "bench",
        "requested_at": dt.datetime.now(dt.UTC), "draft_policy_json": json.dumps(document),
        "variants_json": json.dumps(VARIANTS),
    }  # fmt: skip
    service = RiskReports(kafka, topics, f"User:{prefix}svc-pseudonymizer", codec, 300.0)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    producer = plain_producer(kafka, "bench-risk-asker")
    await producer.start()
    try:
        with Clock() as clock:
            started = time.perf_counter()
            await producer.send_and_wait(
                topics.risk_requests, codec.encode(RISK_REQUEST, request), key=b"APP-BENCH"
            )
            report = await first_report(kafka, topics.risk_reports, codec)
            answer_s = time.perf_counter() - started
    finally:
        await producer.stop()
        stop.set()
        await task
    assert report["outcome"] == "COMPUTED", report["error_reason"]
    figures = json.loads(report["figures_json"] or "{}")
    return {
        "records": records,
        "persons": persons,
        "variants": len(VARIANTS),
        "answer_s": answer_s,
        "cpu_s": clock.cpu_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "records_read": report["records_read"],
        "classes": figures["requested"]["classes"],
        "share_records_below_k": figures["requested"]["share_records_below_k"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    f = asyncio.run(with_broker(args, bench))
    print(
        f"{f['records']:,} retained clinical records, {f['persons']:,} persons, draft + "
        f"{f['variants']} variants: request -> report {f['answer_s']:.1f} s "
        f"({f['records'] / f['answer_s']:,.0f} records/s), {f['cpu_s']:.1f} CPU-s of this "
        f"process, peak RSS {f['peak_rss_mb']:,.0f} MB; {f['classes']:,} classes, "
        f"{f['share_records_below_k']:.1%} of records below k"
    )


if __name__ == "__main__":
    main()
