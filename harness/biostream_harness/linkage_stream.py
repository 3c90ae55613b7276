"""Helpers for linkage tests on a real broker: identity records with ground truth, publishing
contracts to one partition (so that every run consumes the same order), reading committed output."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from biostream import kafka as kafka_clients
from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT
from biostream.envelopes import audit_events_in
from biostream.settings import KafkaSettings
from linkage.adapters.jsonl import identity_from_json

from biostream_harness.bench.linkage import korean

RECEIVED = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def identity_records(persons: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """IdentityRecord dicts (one per hospital patient, every fifth sent twice) and the truth
    (patient_ref -> entity id), from the synthetic Korean feed."""
    with tempfile.TemporaryDirectory() as tmp:
        records, truth, _ = korean(persons, seed, Path(tmp) / "feed")
    out: list[dict[str, Any]] = []
    for n, raw in enumerate(records):
        identity, source = identity_from_json(raw)
        birth = dt.date.fromisoformat(identity.birth_date) if identity.birth_date else None
        record = {
            "record_id": f"{raw['record_id']}/{n}", "patient_ref": raw["record_id"],
            "hospital": source or "H000", "message_id": f"M{n}", "source_format": "FHIR",
            "received_at": RECEIVED, "family_name": identity.family_name,
            "given_name": identity.given_name, "name_latin": identity.name_latin,
            "birth_date": birth, "sex": identity.sex if identity.sex in ("M", "F") else "U",
            "rrn": identity.rrn.replace("-", "") if identity.rrn else None,
            "local_patient_no": None, "phone": identity.phone, "address": identity.address,
            "postal_code": identity.postal_code, "province_code": None, "quality_flags": [],
        }  # fmt: skip
        out.append(record)
        if n % 5 == 0:
            out.append({**record, "record_id": f"{record['record_id']}/again"})
    return out, dict(truth)


async def publish(
    kafka: KafkaSettings,
    codec: AvroCodec,
    topic: str,
    contract: str,
    records: Sequence[dict[str, Any]],
    key: Callable[[dict[str, Any]], str],
) -> None:
    """All to partition 0, in order: a replay must see the same order to give the same ids."""
    producer = kafka_clients.plain_producer(kafka, "linkage-test-publisher")
    await producer.start()
    try:
        for record in records:
            await producer.send(
                topic, codec.encode(contract, record), key=key(record).encode(), partition=0
            )
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(
    kafka: KafkaSettings,
    codec: AvroCodec,
    topic: str,
    contract: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 120,
) -> list[dict[str, Any]]:
    """Committed records of ``topic`` from the start until ``done`` holds (or the timeout)."""
    partitions = await kafka_clients.topic_partitions(kafka, [topic])
    consumer = kafka_clients.reader(kafka, f"linkage-test-reader-{topic}")
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        loop_deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout_s)
        while not done(out):
            if dt.datetime.now(dt.UTC) > loop_deadline:
                raise TimeoutError(f"{topic}: condition not met with {len(out)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if contract == AUDIT_EVENT:  # single events or a service's batch of them
                        out.extend(
                            cast(list[dict[str, Any]], audit_events_in(codec, r.value or b""))
                        )
                    else:
                        out.append(codec.decode(r.value, contract))
    finally:
        await consumer.stop()
    return out
