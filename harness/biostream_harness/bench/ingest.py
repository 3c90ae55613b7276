"""Ingest throughput per format (HL7 v2, FHIR, CSV) through parse -> validate -> produce on the real
broker, beside the bare transactional relay (``relay.py``) measured on the same input in the same
run. Not a test: it prints figures (docs/benchmarks/ingest.md records a run).

    python -m biostream_harness.bench.ingest [--records 5000] [--formats hl7,fhir,csv]
                                         [--bootstrap HOST:PORT] [--json out.json]

Without ``--bootstrap`` a broker is started from the project's Kafka jars in a temporary folder
and stopped at the end. Each format gets its own topic prefix, so the ingest service starts with
empty state exactly as a fresh deployment would.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.admin import AIOKafkaAdminClient
from biostream.codec import encode_with
from biostream.kafka import admin_client, ensure_topics
from biostream.settings import KafkaSettings
from biostream.topics import FOREVER, Topics, TopicSpec
from biostream_dev.synth.people import (
    random_address,
    random_birth_date,
    random_korean_given,
    random_phone,
    random_surname,
)
from biostream_dev.synth.reference import Sex
from ingest.bootstrap import build
from ingest.domain.files import split_feed
from ingest.domain.messages import FORMAT_CONTENT_TYPE, FeedFormat
from ingest.settings import IngestSettings
from pydantic import SecretStr

from biostream_harness.bench.relay import Rate, Stopwatch, measure_relay, preload

HOSPITAL = "BENCH"
_KCD = ("E11.9", "I10", "J45.9", "M54.5", "K21.0", "N18.3")
_LABS = (("4548-4", "HbA1c", "%"), ("2345-7", "Glucose", "mg/dL"), ("718-7", "Hemoglobin", "g/dL"))


def synthetic_hl7(count: int, seed: int = 7, notes: bool = False) -> bytes:
    """ADT^A01 and ORU^R01 messages (PID, PV1, DG1, OBR, OBX), one new person each, with
    identities drawn from the synthetic population's distributions (surname shares, given names
    by birth cohort, birth decades, addresses and postal codes across the provinces): a fixed
    handful of names and postal codes would put every record into a few huge blocks of linkage's
    index, which no real feed does. With ``notes`` every ORU^R01 also carries a free-text OBX (TX)
    that names the patient and their phone beside clinical content, as a nurse's note does: the
    load of ingest's scrub of the patient's own identifiers (D24c)."""
    rng = random.Random(seed)
    messages = []
    for n in range(count):
        birth_date = random_birth_date(rng)
        sex: Sex = rng.choice(("M", "F"))
        family = random_surname(rng)
        given = random_korean_given(rng, birth_date.year, sex)
        address = random_address(rng)
        birth = birth_date.strftime("%Y%m%d")
        xad = (f"{address.street}^{address.detail or ''}^{address.sigungu}^{address.state}"
               f"^{address.postal_code}")  # fmt: skip
        mrn, phone = rng.randint(10**7, 10**8 - 1), random_phone(rng)
        pid = (f"PID|1||{mrn}^^^{HOSPITAL}^MR||{family}^{given}||{birth}|"
               f"{sex}|||{xad}||{phone}")  # fmt: skip
        day = f"2026{rng.randint(1, 6):02d}{rng.randint(1, 28):02d}"
        if n % 2 == 0:
            segments = [
                f"MSH|^~\\&|HIS|{HOSPITAL}|BIOSTREAM|NBB|{day}093000||ADT^A01|A-{n}|P|2.5",
                f"EVN|A01|{day}093000", pid, "PV1|1|I|W1^101^1",
                f"DG1|1||{rng.choice(_KCD)}^^KCD-9||{day}",
            ]  # fmt: skip
        else:
            code, name, unit = rng.choice(_LABS)
            segments = [
                f"MSH|^~\\&|LIS|{HOSPITAL}|BIOSTREAM|NBB|{day}101500||ORU^R01|O-{n}|P|2.5.1",
                pid, f"OBR|1|ORD-{n}|FIL-{n}|{code}^{name}^LN|||{day}080000",
                f"OBX|1|NM|{code}^{name}^LN||{rng.uniform(3, 12):.1f}|{unit}|||||F|||{day}",
            ]  # fmt: skip
            if notes:
                note = (f"{family}{given} 환자 {name} 재검 예정, metformin 500 mg 유지. "
                        f"보호자 연락 {random_phone(rng)}, 본인 {phone}")  # fmt: skip
                segments.append(f"OBX|2|TX|8251-1^Nursing note^LN||{note}||||||F|||{day}")
        messages.append("\r".join(segments) + "\r")
    return "".join(messages).encode()


def feed_bytes(
    fmt: FeedFormat, records: int, workdir: Path, notes: bool = False
) -> list[tuple[bytes | None, bytes]]:
    if fmt == "hl7":
        data = synthetic_hl7(records, notes=notes)
    else:
        from biostream_dev.synth import generate_feed

        out = workdir / "synth"
        if not out.exists():
            # ~1.4 FHIR bundles and ~0.9 CSV rows per person at one hospital.
            generate_feed(out, persons=int(records * 1.2) + 100, hospitals=1, malformed_rate=0.0)
        data = (out / "H001" / ("fhir.ndjson" if fmt == "fhir" else "visits.csv")).read_bytes()
    messages = [(m.key, m.value) for m in split_feed(fmt, data)][:records]
    if len(messages) < records:
        raise RuntimeError(f"generated only {len(messages)} {fmt} messages")
    return messages


@dataclass
class FormatResult:
    format: str
    records: int
    mean_bytes: int
    relay_per_s: float
    relay_per_core_s: float
    ingest_per_s: float
    ingest_per_core_s: float
    ingest_outputs: int
    floor_per_core_s: float = 0.0

    @property
    def ratio(self) -> float:
        """Ingest's per-core rate as a share of the relay's."""
        return self.ingest_per_core_s / self.relay_per_core_s if self.relay_per_core_s else 0.0

    @property
    def bound_ratio(self) -> float:
        """The best share of the relay's rate any ingest on this stack can reach: the floor's
        work plus the relay's own (consume and produce one record: ingest must at least do
        that too), per message, against the relay alone = floor / (floor + relay)."""
        total = self.floor_per_core_s + self.relay_per_core_s
        return self.floor_per_core_s / total if total else 0.0


def measure_floor(fmt: FeedFormat, messages: list[tuple[bytes | None, bytes]]) -> float:
    """Messages per CPU-second of the least work any ingest must do on the fixed stack: read the
    message the cheapest way the standard library offers (``json.loads``; ``csv.reader`` of the
    row; ER7 split on segment and field separators) and Avro-encode (fastavro, the stack's Avro
    library) the identity and clinical records the real service emits for it. No validation,
    no mapping, no dedupe state, no audit event, no Kafka: a bound, not an implementation."""
    import csv
    import datetime as dt
    import io

    from biostream.codec import AvroCodec
    from biostream.contract import Inbound
    from biostream.contracts import AUDIT_EVENT
    from biostream.schemas import Contract, SchemaRegistry
    from biostream.state import StateStore

    settings = IngestSettings.model_validate(
        {
            "kafka": KafkaSettings(bootstrap_servers="unused:9092"),
            "topic_prefix": "floor.",
            "patient_ref_key": SecretStr(secrets.token_hex(32)),
            "dead_letter_key": SecretStr(secrets.token_hex(32)),
            "rrn_key": SecretStr(secrets.token_hex(32)),
        }
    )
    service = build(settings)
    registry = SchemaRegistry()
    codec = AvroCodec(registry)
    topics = Topics("floor.")
    now = dt.datetime.now(dt.UTC)
    header = (("content-type", FORMAT_CONTENT_TYPE[fmt].encode()),)
    prepared: list[tuple[bytes, list[tuple[Contract, dict[str, Any]]]]] = []
    for offset, (key, value) in enumerate(messages):
        message = Inbound(topics.feed(HOSPITAL), 0, offset, key, value, header, 0)
        records = []
        for out in service.processor.handler(message, StateStore(), now):
            if out.topic in (topics.identity_records, topics.clinical_records) and out.value:
                contract = registry.by_fingerprint(out.value[2:10])
                assert contract is not None and contract.short_name != AUDIT_EVENT
                records.append((contract, codec.decode(out.value, contract.short_name)))
        prepared.append((value, records))
    started = time.process_time()
    for value, records in prepared:
        if fmt == "fhir":
            json.loads(value)
        elif fmt == "csv":
            list(csv.reader(io.StringIO(value.decode(), newline="")))  # header + row
        else:
            [segment.split("|") for segment in value.decode().split("\r")]
        for contract, record in records:
            encode_with(contract, record)
    return len(prepared) / (time.process_time() - started)


async def _committed(admin: AIOKafkaAdminClient, group: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(max(meta.offset, 0) for meta in offsets.values())


async def measure_ingest(
    kafka: KafkaSettings, prefix: str, expected: int, batch: int, timeout_s: float = 300.0
) -> tuple[Rate, int]:
    settings = IngestSettings.model_validate(
        {
            "kafka": kafka,
            "topic_prefix": prefix,
            "poll_timeout_ms": 100,
            "batch_max_records": batch,
            "patient_ref_key": SecretStr(secrets.token_hex(32)),
            "dead_letter_key": SecretStr(secrets.token_hex(32)),
            "rrn_key": SecretStr(secrets.token_hex(32)),
        }
    )
    service = build(settings)
    feed = Topics(prefix).feed(HOSPITAL)
    # One admin client for the whole wait: it polls the committed offsets (its cost, a few
    # milliseconds of CPU per second, is counted against ingest).
    admin = admin_client(kafka, "bench-offsets")
    await admin.start()
    stop = asyncio.Event()
    task = asyncio.create_task(service.processor.run(stop))
    watch = Stopwatch()
    deadline = time.monotonic() + timeout_s
    try:
        while not watch.started:
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise TimeoutError("ingest processed nothing")
            seen = service.registry.get_sample_value(
                "biostream_ingest_messages_in_total", {"topic": feed}
            )
            if seen:
                watch.start()
            else:
                await asyncio.sleep(0.01)
        # Done when the committed offsets (the end of the last transaction) cover every record.
        while await _committed(admin, service.processor.config.app_id) < expected:
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise TimeoutError("ingest did not commit every record")
            await asyncio.sleep(0.1)
        rate = watch.stop(expected)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await admin.close()
    outputs = sum(
        sample.value
        for metric in service.registry.collect()
        if metric.name == "biostream_ingest_messages_out"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    return rate, int(outputs)


async def run_format(
    kafka: KafkaSettings,
    fmt: FeedFormat,
    records: int,
    batch: int,
    workdir: Path,
    notes: bool = False,
) -> FormatResult:
    prefix = f"bench{secrets.token_hex(3)}."
    topics = Topics(prefix)
    specs = topics.pipeline_specs([HOSPITAL], [])
    specs.append(TopicSpec(f"{prefix}bench.relay-sink", 1, FOREVER))
    await ensure_topics(kafka, specs)
    messages = feed_bytes(fmt, records, workdir, notes)
    header = [("content-type", FORMAT_CONTENT_TYPE[fmt].encode())]
    await preload(kafka, topics.feed(HOSPITAL), messages, header)
    relay = await measure_relay(
        kafka,
        topics.feed(HOSPITAL),
        f"{prefix}bench.relay-sink",
        records,
        f"{prefix}relay",
        max_records=batch,
    )
    ingest, outputs = await measure_ingest(kafka, prefix, records, batch)
    floor = measure_floor(fmt, messages)
    return FormatResult(
        format=fmt,
        records=records,
        mean_bytes=sum(len(v) for _, v in messages) // len(messages),
        relay_per_s=round(relay.per_second),
        relay_per_core_s=round(relay.per_cpu_second),
        ingest_per_s=round(ingest.per_second),
        ingest_per_core_s=round(ingest.per_cpu_second),
        ingest_outputs=outputs,
        floor_per_core_s=round(floor),
    )


async def run(
    kafka: KafkaSettings, formats: list[FeedFormat], records: int, batch: int, notes: bool = False
) -> list[FormatResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for fmt in formats:
            results.append(await run_format(kafka, fmt, records, batch, Path(tmp), notes))
    return results


def main(
    records: Annotated[int, typer.Option(help="Input messages per format")] = 10000,
    formats: Annotated[str, typer.Option(help="Comma-separated: hl7,fhir,csv")] = "hl7,fhir,csv",
    batch: Annotated[int, typer.Option(help="Records per poll and transaction, both sides")] = 500,
    bootstrap: Annotated[str | None, typer.Option(help="Use this broker")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    notes: Annotated[
        bool, typer.Option(help="HL7: a free-text note naming the patient in every ORU^R01")
    ] = False,
) -> None:
    """Measure ingest and the bare relay per format; print records/s per core and the ratio."""
    from ingest.adapters.mappings import quiet_parser_logs

    chosen: list[FeedFormat] = []
    for name in formats.split(","):
        if name not in ("hl7", "fhir", "csv"):
            raise typer.BadParameter(f"unknown format {name!r}")
        chosen.append("hl7" if name == "hl7" else "fhir" if name == "fhir" else "csv")
    quiet_parser_logs()
    run_dir = None
    if bootstrap is None:
        from biostream_dev import broker

        broker.ensure_jars()
        run_dir = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
        started = broker.start_broker(run_dir, authentication=True)  # SCRAM over TLS
        kafka = broker.admin_settings(run_dir, started.bootstrap)
    else:  # a development broker of your own, without authentication
        kafka = KafkaSettings(
            bootstrap_servers=bootstrap, security_protocol="PLAINTEXT", allow_plaintext=True
        )
    try:
        results = asyncio.run(run(kafka, chosen, records, batch, notes))
    finally:
        if run_dir is not None:
            from biostream_dev import broker

            broker.stop_broker(run_dir)
    typer.echo(
        f"{'format':6} {'records':>7} {'bytes':>6} {'relay/s':>8} {'relay/core-s':>12} "
        f"{'ingest/s':>9} {'ingest/core-s':>13} {'ratio':>6} {'outputs':>8} "
        f"{'floor/core-s':>12} {'bound ratio':>11}"
    )
    for r in results:
        typer.echo(
            f"{r.format:6} {r.records:7d} {r.mean_bytes:6d} {r.relay_per_s:8.0f} "
            f"{r.relay_per_core_s:12.0f} {r.ingest_per_s:9.0f} {r.ingest_per_core_s:13.0f} "
            f"{r.ratio:6.2f} {r.ingest_outputs:8d} {r.floor_per_core_s:12.0f} "
            f"{r.bound_ratio:11.2f}"
        )
    if json_out is not None:
        payload = [
            {**asdict(r), "ratio": round(r.ratio, 3), "bound_ratio": round(r.bound_ratio, 3)}
            for r in results
        ]
        json_out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
