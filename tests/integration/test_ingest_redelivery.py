"""Redelivery on the real broker: the same HL7 v2, FHIR and CSV feeds published twice with
``ingest publish`` produce each record once, and the A40 merge once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from biostream.codec import AvroCodec
from biostream.contracts import PATIENT_MERGE
from biostream.kafka import reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_dev.access import kafka_environment
from biostream_harness.inprocess import Keys, running_pipeline

pytestmark = pytest.mark.integration

HL7_FEED = "\r".join(
    [
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260301093000||ADT^A01|A01-1|P|2.5",
        "PID|1||00012345^^^H001^MR~971013-1019901^^^KOR^NNKOR||홍^길동||19971013|M|||"
        "세종대로 110^^중구^서울특별시^04524||010-1234-5678",
        "DG1|1||E11.9^^KCD-9||20260301",
        "MSH|^~\\&|LIS|H001|BIOSTREAM|NBB|20260302101500||ORU^R01|ORU-1|P|2.5.1",
        "PID|1||00012345^^^H001^MR||홍^길동||19971013|M",
        "OBR|1|ORD-1|FIL-1|4548-4^HbA1c^LN|||20260302080000",
        "OBX|1|NM|4548-4^HbA1c^LN||7.1|%|||||F",
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260303093000||ADT^A40|A40-1|P|2.5",
        "PID|1||00012345^^^H001^MR||홍^길동",
        "MRG|00099999^^^H001^MR",
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260303093000||ADT^A24|A24-1|P|2.5",
        "PID|1||00012345^^^H001^MR||홍^길동",
    ]
)
CSV_FEED = (
    "message_id,patient_no,family_name,given_name,birth_date,sex,visit_date,kcd_code,kcd_version\n"
    "C-1,555,김,서연,1985-03-21,F,2026-01-15,I10,9\n"
    "C-2,556,이,민준,2001-02-03,M,2026-01-16,J45,9\n"
)
FHIR_FEED = json.dumps(
    {
        "resourceType": "Bundle",
        "id": "F-1",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "777"}],
                    "name": [{"text": "박지훈"}],
                    "birthDate": "1990-05-05",
                    "gender": "male",
                }
            },
            {
                "resource": {
                    "resourceType": "Specimen",
                    "identifier": [{"value": "BIOBANK-1"}],
                    "collection": {"collectedDateTime": "2026-02-01T09:00:00+09:00"},
                }
            },
        ],
    },
    ensure_ascii=False,
)
FEEDS = {  # hospital: (format, file name, content, messages, accepted)
    "H001": ("hl7", "adt.hl7", HL7_FEED, 4, 3),
    "H002": ("csv", "visits.csv", CSV_FEED, 2, 2),
    "H003": ("fhir", "bundles.ndjson", FHIR_FEED, 1, 1),
}


async def publish(
    kafka: KafkaSettings, prefix: str, hospital: str, fmt: str, path: Path
) -> dict[str, object]:
    env = {**os.environ, **kafka_environment(kafka), "BIOSTREAM_TOPIC_PREFIX": prefix}
    command = [str(Path(sys.executable).parent / "ingest"), "publish", "--hospital", hospital,
               "--format", fmt, str(path)]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert isinstance(summary, dict)
    summary["exit_code"] = process.returncode
    summary["stderr"] = stderr.decode()
    return summary


async def read_merges(kafka: KafkaSettings, topics: Topics) -> list[dict[str, object]]:
    codec = AvroCodec(SchemaRegistry())
    consumer = reader(kafka, "redelivery-test-merges")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topics.patient_merges])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        merges: list[dict[str, object]] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=500)
            merges += [codec.decode(r.value, PATIENT_MERGE) for rs in batch.values() for r in rs]
        return merges
    finally:
        await consumer.stop()


async def test_feeds_published_twice_yield_each_record_once(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    published = 0
    # D35: each hospital publishes as its own principal of the ACL matrix.
    principals = access.render(access.load_matrix(), prefix=topic_prefix, hospitals=sorted(FEEDS))
    roles = {f"hospital-{h.lower()}": principals[f"hospital-{h.lower()}"] for h in FEEDS}
    credentials = await asyncio.to_thread(access.apply, kafka, roles)
    await access.wait_until_usable(credentials)
    async with running_pipeline(kafka, topic_prefix, sorted(FEEDS), Keys.fresh()) as observer:
        for attempt in range(2):
            for hospital, (fmt, name, content, messages, accepted) in FEEDS.items():
                path = tmp_path / hospital / name
                path.parent.mkdir(exist_ok=True)
                path.write_text(content)
                as_hospital = credentials.settings(f"hospital-{hospital.lower()}")
                summary = await publish(as_hospital, topic_prefix, hospital, fmt, path)
                assert summary["published"] == messages, summary["stderr"]
                assert (summary["accepted"], summary["rejected"]) == (accepted, messages - accepted)
                assert summary["exit_code"] == (0 if accepted == messages else 1)
                published += messages
            if attempt == 0:
                await observer.wait_until_settled(published, timeout_s=120)
        view = await observer.wait_until_settled(published, timeout_s=120)
        merges = await read_merges(kafka, topics)

    # Each accepted message once: H001 A01 + ORU (A40's PID is too thin for an identity record),
    # H002's two rows, H003's bundle.
    identity_ids = [r["record_id"] for r in view.identity]
    assert sorted(identity_ids) == sorted(
        ["H001/A01-1/0", "H001/ORU-1/0", "H002/C-1/0", "H002/C-2/0", "H003/F-1/0"]
    )
    clinical_ids = [r["record_id"] for r in view.clinical]
    assert sorted(clinical_ids) == sorted(
        ["H001/A01-1/1", "H001/ORU-1/1", "H002/C-1/1", "H002/C-2/1", "H003/F-1/1"]
    )
    [specimen] = [r for r in view.clinical if r["hospital"] == "H003"]
    assert specimen["specimen_refs"] == ["BIOBANK-1"]
    assert [m["merge_id"] for m in merges] == ["H001/A40-1/m0"]
    actions = view.audit_actions()
    assert actions["ingest.accepted"] == 6
    assert actions["ingest.duplicate"] == 6
    # The rejected ADT^A24 (linking without merging is not read, D36) is dead-lettered on both
    # deliveries: its two offsets are two messages.
    assert [d["reason_code"] for d in view.dead_letters] == ["HL7_MESSAGE_TYPE_UNSUPPORTED"] * 2
