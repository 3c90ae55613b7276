"""Canaries: identifying values planted in the feeds appear in no log line, metric, curated topic
or operator-readable topic; registration numbers appear in clear nowhere, not even on the identity
topic (encrypted at field level there). Some visits also carry a nurse's note that names the
patient in other spellings and formattings (D24c): those must not reach the clinical topic
either."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from biostream.codec import AvroCodec
from biostream.kafka import ensure_topics, reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import AUDIT_WRITERS, Topics
from biostream_dev.observer import PipelineObserver
from biostream_dev.synth import canary_values, generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.pipeline import SERVICES, LocalPipeline
from ingest.adapters.publisher import publish_messages

pytestmark = pytest.mark.e2e

DATASET = "cohort-demo"
IDENTIFYING = ["full_name", "rrn", "rrn_digits", "phone", "phone_digits", "address", "street"]
RRN_SYSTEM = "http://www.hl7korea.or.kr/Identifier/rrn"


def plant_notes(feed_dir: Path, every: int = 3) -> set[str]:
    """Adds to every ``every``-th FHIR visit a free-text Observation that names its patient (the
    name with a space, the Latin name in capitals, the registration number and phone formatted
    otherwise than the identity, the street); returns those planted spellings as canaries."""
    planted: set[str] = set()
    for path in sorted(feed_dir.glob("*/fhir.ndjson")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            try:
                bundle = json.loads(line)
            except ValueError:
                continue  # the malformed lines stay as they are
            resources = [e.get("resource", {}) for e in bundle.get("entry", [])]
            patients = [r for r in resources if r.get("resourceType") == "Patient"]
            labs = [r for r in resources if r.get("resourceType") == "Observation"]
            if n % every or not patients or not labs or not patients[0].get("name"):
                continue
            patient, words, values = patients[0], [], []
            names = [x["text"] for x in patient["name"] if isinstance(x.get("text"), str)]
            if names and len(names[0]) >= 3 and not names[0].isascii():
                values.append(f"{names[0][0]} {names[0][1:]}")
                words.append(f"{values[-1]} 환자")
            words.append("HbA1c 재검 예정, metformin 500 mg 유지.")
            if len(names) > 1 and len(names[1]) >= 6:
                values.append(names[1].upper())
                words.append(f"{values[-1]} 본인 확인.")
            for identifier in patient.get("identifier", []):
                digits = re.sub(r"\D", "", str(identifier.get("value")))
                if identifier.get("system") == RRN_SYSTEM and len(digits) == 13:
                    values.append(f"{digits[:6]} {digits[6:]}")
                    words.append(f"RRN {values[-1]}")
            for telecom in patient.get("telecom", []):
                digits = re.sub(r"\D", "", str(telecom.get("value")))
                if digits.startswith("010") and len(digits) == 11:
                    values.append(f"+82 10 {digits[3:7]} {digits[7:]}")
                    words.append(f"연락 {values[-1]}")
            for address in patient.get("address", []):
                if address.get("line"):
                    values.append(address["line"][0])
                    words.append(f"주소 {values[-1]}")
            note = ", ".join(words)
            planted.update(values)
            observation = dict(labs[0], id=f"{labs[0]['id']}-note", valueString=note)
            observation.pop("valueQuantity", None)
            observation["code"] = {"coding": [{"system": "http://loinc.org", "code": "34109-9"}]}
            bundle["entry"].append({"fullUrl": f"urn:uuid:{observation['id']}",
                                    "resource": observation})  # fmt: skip
            lines[n] = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return planted


async def raw_topic(kafka: KafkaSettings, topic: str) -> bytes:
    consumer = reader(kafka, "canary-reader")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        chunks: list[bytes] = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= end[tp] for tp in partitions):
                return b"\n".join(chunks)
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not batch:
                return b"\n".join(chunks)
            chunks += [
                (r.key or b"") + b"\t" + (r.value or b"") for rs in batch.values() for r in rs
            ]
    finally:
        await consumer.stop()


async def test_planted_identifiers_leak_nowhere(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=300, seed=5)
    planted = plant_notes(tmp_path / "feed")
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    canaries = canary_values(tmp_path / "feed", kinds=IDENTIFYING) | planted
    rrns = canary_values(tmp_path / "feed", kinds=["rrn", "rrn_digits"])
    assert len(canaries) > 500 and len(rrns) > 100 and len(planted) > 100

    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs(sorted(feeds), [DATASET]))
    pipeline = LocalPipeline(
        kafka.bootstrap_servers, tmp_path / "run", topic_prefix=topic_prefix, admin=kafka
    )
    observer = PipelineObserver(kafka, topics, AvroCodec(SchemaRegistry()), [DATASET])
    try:
        await asyncio.to_thread(pipeline.start_all)
        await observer.start()
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        view = await observer.wait_until_settled(published, timeout_s=240)
        assert view.dead_letters and view.curated  # bad input and good records both flowed
        metrics = {s: pipeline.metrics_text(s) for s in SERVICES}
    finally:
        await observer.stop()
        await asyncio.to_thread(pipeline.stop_all)

    places: dict[str, str] = {
        f"log:{p.name}": p.read_text(errors="replace")
        for p in (tmp_path / "run" / "logs").glob("*.log")
    }
    places |= {f"metrics:{s}": text for s, text in metrics.items()}
    # Everything outside the identity zone: what projects, the pseudonymizer, operators and
    # auditors may read.
    readable = [
        topics.curated(DATASET), topics.notices(DATASET), topics.clinical_records, topics.link_decisions,
        topics.dead_letters, *topics.audit_event_topics, topics.audit_ledger, topics.audit_checkpoints,
    ]  # fmt: skip
    for topic in readable:
        places[f"topic:{topic}"] = (await raw_topic(kafka, topic)).decode("utf-8", "replace")
    places["decoded:curated+dead-letters"] = json.dumps(
        [view.curated, view.dead_letters, view.decisions], default=str, ensure_ascii=False
    )
    # Every place was really read; notices and checkpoints may be empty in a run this short.
    may_be_empty = {f"topic:{topics.notices(DATASET)}", f"topic:{topics.audit_checkpoints}"}
    # Audit topics of principals that do not act in this run (review desk, access, auditor, ...).
    acting = {"svc-ingest", "svc-linkage", "svc-pseudonymizer"}
    may_be_empty |= {
        f"topic:{topics.audit_events_of(role)}" for role in AUDIT_WRITERS if role not in acting
    }
    assert [where for where, text in places.items() if not text and where not in may_be_empty] == []
    leaks = {where: sorted(c for c in canaries if c in text)[:3] for where, text in places.items()}
    assert {where: found for where, found in leaks.items() if found} == {}

    # The identity zone holds names and phones (linkage needs them), but never a clear RRN.
    identity_zone = (await raw_topic(kafka, topics.identity_records)).decode("utf-8", "replace")
    assert [r for r in rrns if r in identity_zone] == []
