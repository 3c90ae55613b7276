"""D46 on the real broker: a dataset the board approves mid-stream receives its whole eligible
history and then the live stream, each record exactly once, compared record by record with a
dataset configured from the start on the same input; a withdrawal stops it within seconds."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    CURATED_RECORD,
    DATASET_NOTICE,
    LINK_DECISION,
)
from biostream.kafka import client_options, ensure_topics, plain_producer
from biostream.policy_topic import publish
from biostream.release_policies import policy_version, public_key_hex, sign, withdrawal_of
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_consumer.adapters.source import AccessRefused
from biostream_consumer.bootstrap import build as build_consumer
from biostream_consumer.settings import ConsumerSettings
from biostream_dev import access
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.test_pseudonymizer_flow import CODEC, REPO, Topic, pseudonymizer

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TYPES = ["Condition", "Observation", "Encounter", "MedicationRequest", "Procedure", "Specimen"]
# What differs between two datasets' copies of one record by construction.
PER_DATASET = {"dataset", "policy_version", "approval_ref", "released_at"}
# A correction moves a record to the new person's pseudonym and date offset, not to their
# quasi-identifiers: a record released before a merge keeps the generalised values of the person
# it was released under, while a dataset approved after the merge gets the merged person's.
QUASI_IDENTIFIERS = {"birth_year", "age_band", "sex", "province_code", "postal_prefix",
                     "district_code"}  # fmt: skip


def clinical(n: int, ref: str, rng: random.Random) -> dict[str, Any]:
    return {
        "record_id": f"H{n % 3 + 1:03d}/{n}/0", "patient_ref": ref, "hospital": f"H{n % 3 + 1:03d}",
        "message_id": f"M{n}", "source_format": "FHIR", "received_at": NOW,
        "resource_type": rng.choice(TYPES), "event_date": dt.date(2026, 1, 1 + n % 28),
        "code_system": "http://loinc.org", "code": f"{1000 + n % 97}-{n % 9}",
        "code_version": None, "value_number": float(n % 200), "value_unit": "mg/dL",
        "value_text": f"note {n}", "specimen_refs": [], "quality_flags": [],
        "previous_patient_refs": [],
    }  # fmt: skip


def decision(
    ref: str, person: str, sequence: int = 0, previous: str | None = None
) -> dict[str, Any]:
    return {
        "decision_id": f"{ref}/{sequence}", "patient_ref": ref, "record_id": f"{ref}/id",
        "hospital": "H001", "person_id": person, "previous_person_id": previous,
        "outcome": "MERGED" if previous else "NEW_PERSON", "score": 0.0, "rule": "test",
        "sequence": sequence, "decided_at": NOW, "birth_year": 1950 + int(person[1:]) % 50,
        "sex": "FM"[int(person[1:]) % 2], "province_code": "11", "birth_month": 3,
        "postal_prefix": "480", "district_code": None,
    }  # fmt: skip


def consumer_view(
    records: list[dict[str, Any]], notices: list[dict[str, Any]], moved: set[str]
) -> dict[str, dict[str, Any]]:
    """What a project holds after applying its notices (the consumer toolkit's rule): each
    curated record once, by curated id, moved by every correction; the quasi-identifiers of
    ``moved`` records (moved by a correction in either dataset) left out of the comparison."""
    held: dict[str, dict[str, Any]] = {}
    for record in records:
        assert record["curated_id"] not in held, "a curated record arrived twice"
        held[record["curated_id"]] = dict(record)
    for notice in notices:
        if notice["kind"] != "CORRECTION":
            continue
        for curated_id in notice["curated_ids"]:
            record = held[curated_id]
            record["pseudonym"] = notice["new_pseudonym"]
            if notice["date_offset_change_days"] and record["event_date"] is not None:
                shift = dt.timedelta(days=notice["date_offset_change_days"])
                record["event_date"] = record["event_date"] + shift
    return {
        cid: {
            k: v
            for k, v in r.items()
            if k not in PER_DATASET and not (cid in moved and k in QUASI_IDENTIFIERS)
        }
        for cid, r in held.items()
    }


async def drain(topic: Topic) -> list[dict[str, Any]]:
    """Everything ``topic`` holds now: read until a poll brings nothing new."""
    seen = [-1]

    def settled(records: list[dict[str, Any]]) -> bool:
        if len(records) == seen[0]:
            return True
        seen[0] = len(records)
        return False

    return await topic.until(settled)


def write_from_start_policy(directory: Path) -> dict[str, Any]:
    directory.mkdir()
    document = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    (directory / "cohort-demo.json").write_text(json.dumps(document))
    return document


async def test_a_dataset_approved_after_10000_records_gets_every_eligible_record_once(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    from_start = write_from_start_policy(tmp_path / "policies")
    late_document = {
        **from_start, "dataset": "cohort-late", "pseudonym_domain": "cohort-late",
        "target_topic": "curated.cohort-late", "approval_ref": "DRB-2026-014",
    }  # fmt: skip
    # The same key for both domains: the same person gets the same pseudonym and date offset
    # in both, so the two datasets' records can be compared field by field.
    key = secrets.token_hex(32)
    keys = {"cohort-demo/k1": key, "cohort-late/k1": key}
    board = Ed25519PrivateKey.generate()
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-demo", "cohort-late"]))
    rng = random.Random(46)
    producer = plain_producer(kafka, "test-feed")
    await producer.start()

    async def send(topic: str, contract: str, records: list[dict[str, Any]]) -> None:
        futures = [
            await producer.send(topic, CODEC.encode(contract, r), key=r["patient_ref"].encode())
            for r in records
        ]
        await asyncio.gather(*futures)

    refs = [f"pr_{i:04d}" for i in range(1500)]
    late_decided = set(refs[-40:])  # decided only after the approval: parked at the junction
    history = [clinical(n, rng.choice(refs), rng) for n in range(10_000)]
    live = [clinical(n, rng.choice(refs), rng) for n in range(10_000, 12_000)]
    curated_a = Topic(kafka, topics.curated("cohort-demo"), CURATED_RECORD)
    curated_l = Topic(kafka, topics.curated("cohort-late"), CURATED_RECORD)
    notices_a = Topic(kafka, topics.notices("cohort-demo"), DATASET_NOTICE)
    notices_l = Topic(kafka, topics.notices("cohort-late"), DATASET_NOTICE)
    audit = Topic(kafka, topics.audit_events_of("svc-pseudonymizer"), AUDIT_EVENT)
    for topic in (curated_a, curated_l, notices_a, notices_l, audit):
        await topic.start()
    eligible = set(from_start["record_types"])
    expected = {r["record_id"] for r in [*history, *live] if r["resource_type"] in eligible}
    try:
        async with pseudonymizer(
            kafka, topic_prefix, tmp_path / "policies", keys,
            board_keys={"k1": public_key_hex(board.public_key())},
        ):  # fmt: skip
            early = [
                decision(ref, f"P{i}") for i, ref in enumerate(refs) if ref not in late_decided
            ]
            await send(topics.link_decisions, LINK_DECISION, early)
            await send(topics.clinical_records, CLINICAL_RECORD, history)
            in_history = {r["record_id"] for r in history if r["resource_type"] in eligible}
            parked = {r["record_id"] for r in history if r["patient_ref"] in late_decided}
            await curated_a.until(lambda rs: len(rs) >= len(in_history - parked), 180)
            # Merges in the history: persons become one (corrections in the from-start
            # dataset; the late one is released under the merged person directly).
            merges = [decision(refs[i], "P0", 1, f"P{i}") for i in (1, 2, 3)]
            await send(topics.link_decisions, LINK_DECISION, merges)
            await notices_a.until(lambda ns: len({n["pseudonym"] for n in ns}) == 3, 60)

            approval = sign(policy_version(
                late_document, version=1, application_id="APP-2026-0007",
                principal=f"User:{topic_prefix}project-cohort-late",
                valid_from_ms=int(time.time() * 1000) - 1000,
                valid_until_ms=int(time.time() * 1000) + 86_400_000,
                issued_at_ms=int(time.time() * 1000),
            ), board)  # fmt: skip
            # The approval arrives while the live stream goes on: the junction is mid-stream.
            approved_at = time.monotonic()
            await asyncio.gather(
                publish(kafka, topics, CODEC, approval),
                send(topics.clinical_records, CLINICAL_RECORD, live),
            )
            await curated_l.until(lambda rs: len(rs) >= 1, 120)
            first_s = time.monotonic() - approved_at
            late = [decision(ref, f"P{refs.index(ref)}") for ref in sorted(late_decided)]
            await send(topics.link_decisions, LINK_DECISION, late)
            await curated_a.until(lambda rs: len(rs) >= len(expected), 180)
            await curated_l.until(lambda rs: len(rs) >= len(expected), 180)
            done = await audit.until(
                lambda es: any(e["action"] == "pseudonymizer.history_released" for e in es), 120
            )
            whole_s = time.monotonic() - approved_at

            # Exactly once, and the same records as the dataset served from the start.
            await asyncio.sleep(1.0)  # anything more would have arrived by now
            for topic in (curated_a, curated_l, notices_a, notices_l):
                await drain(topic)
            moved = {
                curated_id
                for notice in [*notices_a.records, *notices_l.records]
                for curated_id in notice["curated_ids"]
            }
            view_a = consumer_view(curated_a.records, notices_a.records, moved)
            view_l = consumer_view(curated_l.records, notices_l.records, moved)
            assert len(view_l) == len(expected) == len(view_a)
            assert view_l == view_a
            assert {n["reason"] for n in notices_a.records} == {"MERGED"}
            [finished] = [e for e in done if e["action"] == "pseudonymizer.history_released"]
            assert finished["dataset"] == "cohort-late"
            print(f"\nD46 history: first record {first_s:.2f} s, whole {whole_s:.2f} s")

            # Revocation: the next release is withheld, and the project hears why.
            withdrawn = sign(withdrawal_of(approval, "REVOKED", int(time.time() * 1000)), board)
            await publish(kafka, topics, CODEC, withdrawn)
            stopped = await notices_l.until(
                lambda ns: any(n["kind"] == "DATASET_WITHDRAWN" for n in ns), 30
            )
            notice = stopped[-1]
            assert (notice["kind"], notice["reason"]) == ("DATASET_WITHDRAWN", "REVOKED")
            after = [clinical(n, refs[5], rng) | {"resource_type": "Condition"} for n in (20_000,)]
            await send(topics.clinical_records, CLINICAL_RECORD, after)
            await curated_a.until(lambda rs: len(rs) == len(expected) + 1, 60)
            await asyncio.sleep(1.0)
            assert len(await drain(curated_l)) == len(expected)
    finally:
        await producer.stop()
        for topic in (curated_a, curated_l, notices_a, notices_l, audit):
            await topic.stop()


async def project_read(settings: KafkaSettings, topic: str) -> int | None:
    """Records the project principal reads from partition-by-partition assignment of ``topic``
    (one fetch each), or None if the broker refuses it (no Describe: the topic is invisible;
    no Read: the fetch is refused)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), request_timeout_ms=5000, enable_auto_commit=False
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return None
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        try:
            batch = await consumer.getmany(timeout_ms=1000)
        except TopicAuthorizationFailedError:
            return None
        return sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def test_the_broker_lets_the_project_read_while_approved_and_refuses_it_once_revoked(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-late"]))
    (tmp_path / "policies").mkdir()
    document = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    document.update(
        dataset="cohort-late", pseudonym_domain="cohort-late",
        target_topic="curated.cohort-late", approval_ref="DRB-2026-015",
    )  # fmt: skip
    # The project's principal exists (a SCRAM user) but holds no ACL of its own.
    project = access.Principal(f"{topic_prefix}project-cohort-late", ())
    credentials = await asyncio.to_thread(access.apply, kafka, {"project": project})
    await access.wait_until_usable(credentials)
    as_project = credentials.settings("project")
    board = Ed25519PrivateKey.generate()
    producer = plain_producer(kafka, "test-feed")
    await producer.start()
    rng = random.Random(7)

    async def send(topic: str, contract: str, records: list[dict[str, Any]]) -> None:
        for r in records:
            await producer.send_and_wait(
                topic, CODEC.encode(contract, r), key=r["patient_ref"].encode()
            )

    curated = topics.curated("cohort-late")
    notices = Topic(kafka, topics.notices("cohort-late"), DATASET_NOTICE)
    await notices.start()
    try:
        async with pseudonymizer(
            kafka, topic_prefix, tmp_path / "policies", {},
            board_keys={"k1": public_key_hex(board.public_key())},
            pseudonym_root_key=secrets.token_hex(32), acl_admin=kafka,
        ):  # fmt: skip
            await send(topics.link_decisions, LINK_DECISION, [decision("pr_1", "P1")])
            records = [clinical(n, "pr_1", rng) | {"resource_type": "Condition"} for n in range(5)]
            await send(topics.clinical_records, CLINICAL_RECORD, records)
            assert await project_read(as_project, curated) is None  # not approved yet
            now_ms = int(time.time() * 1000)
            approval = sign(policy_version(
                document, version=1, application_id="APP-2026-0008",
                principal=f"User:{project.name}", valid_from_ms=now_ms - 1000,
                valid_until_ms=now_ms + 86_400_000, issued_at_ms=now_ms,
            ), board)  # fmt: skip
            await publish(kafka, topics, CODEC, approval)
            read = None
            for _ in range(100):  # the grant propagates to the broker asynchronously
                read = await project_read(as_project, curated)
                if read == len(records):
                    break
                await asyncio.sleep(0.1)
            assert read == len(records)
            toolkit = ConsumerSettings(
                kafka=as_project, topic_prefix=topic_prefix, dataset="cohort-late",
                database=tmp_path / "project.duckdb", read_timeout_s=20,
            )  # fmt: skip
            project_copy = build_consumer(toolkit)
            try:
                await project_copy.source.sync()
                assert project_copy.store.count() == len(records)

                revoked_at = time.monotonic()
                withdrawn = sign(withdrawal_of(approval, "REVOKED", int(time.time() * 1000)), board)
                await publish(kafka, topics, CODEC, withdrawn)
                for _ in range(300):  # the broker refuses the project once its ACLs are gone
                    if await project_read(as_project, curated) is None:
                        break
                    await asyncio.sleep(0.1)
                assert await project_read(as_project, curated) is None
                refused_s = time.monotonic() - revoked_at
                # The toolkit says the broker refuses it; what it held stays.
                with pytest.raises(AccessRefused, match="refuses this principal access"):
                    await project_copy.source.sync()
                assert project_copy.store.count() == len(records)
            finally:
                project_copy.close()
            await notices.until(lambda ns: any(n["kind"] == "DATASET_WITHDRAWN" for n in ns))
            await send(topics.clinical_records, CLINICAL_RECORD, [clinical(99, "pr_1", rng)])
            await asyncio.sleep(1.0)
            admin_view = Topic(kafka, curated, CURATED_RECORD)
            await admin_view.start()
            try:
                assert len(await drain(admin_view)) == len(records)  # the release is withheld
            finally:
                await admin_view.stop()
            print(f"\nD46 revocation: project read refused {refused_s:.2f} s after withdrawal")
    finally:
        await producer.stop()
        await notices.stop()


async def committed_offsets(kafka: KafkaSettings, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # the group has no coordinator yet: nothing committed
        return 0
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)


async def test_a_history_replay_killed_halfway_resumes_exactly_once(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    """The service as a process, as its own principal, killed with SIGKILL while it replays a
    dataset's history: the restarted one finishes it; each record reaches the dataset once."""
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-late"]))
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(
        access.apply, kafka, {"svc-pseudonymizer": principals["svc-pseudonymizer"]}
    )
    await access.wait_until_usable(credentials)
    (tmp_path / "policies").mkdir()
    board = Ed25519PrivateKey.generate()
    env = {
        **os.environ,
        **access.kafka_environment(credentials.settings("svc-pseudonymizer")),
        "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
        "BIOSTREAM_POLICY_DIR": str(tmp_path / "policies"),
        "BIOSTREAM_PSEUDONYM_ROOT_KEY": secrets.token_hex(32),
        "BIOSTREAM_BOARD_KEYS": json.dumps({"k1": public_key_hex(board.public_key())}),
        "BIOSTREAM_DEAD_LETTER_KEY": secrets.token_hex(32),
        "BIOSTREAM_POLL_TIMEOUT_MS": "100",
    }
    rng = random.Random(3)
    refs = [f"pr_{i:04d}" for i in range(3000)]
    history = [clinical(n, rng.choice(refs), rng) | {"resource_type": "Condition"}
               for n in range(30_000)]  # fmt: skip
    producer = plain_producer(kafka, "test-feed")
    await producer.start()
    try:
        for records, topic, contract in (
            ([decision(ref, f"P{i}") for i, ref in enumerate(refs)], topics.link_decisions,
             LINK_DECISION),
            (history, topics.clinical_records, CLINICAL_RECORD),
        ):  # fmt: skip
            futures = [
                await producer.send(topic, CODEC.encode(contract, r), key=r["patient_ref"].encode())
                for r in records
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pseudonymizer", "run", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    curated = Topic(kafka, topics.curated("cohort-late"), CURATED_RECORD)
    audit = Topic(kafka, topics.audit_events_of("svc-pseudonymizer"), AUDIT_EVENT)
    await curated.start()
    await audit.start()
    first = await start()
    second = None
    try:
        group = f"{topic_prefix}pseudonymizer"
        for _ in range(1200):  # the live stream has handled every record: the junction is the end
            if await committed_offsets(kafka, group, topics.clinical_records) == len(history):
                break
            await asyncio.sleep(0.1)
        now_ms = int(time.time() * 1000)
        document = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
        document.update(
            dataset="cohort-late", pseudonym_domain="cohort-late",
            target_topic="curated.cohort-late", approval_ref="DRB-2026-016",
        )  # fmt: skip
        approval = sign(policy_version(
            document, version=1, application_id="APP-2026-0009",
            principal=f"User:{topic_prefix}project-cohort-late", valid_from_ms=now_ms - 1000,
            valid_until_ms=now_ms + 86_400_000, issued_at_ms=now_ms,
        ), board)  # fmt: skip
        await publish(kafka, topics, CODEC, approval)
        await curated.until(lambda rs: len(rs) > 0, 120)
        first.kill()  # SIGKILL, mid-history
        await first.wait()
        seen_before = len(curated.records)
        assert seen_before < len(history)
        second = await start()
        await curated.until(lambda rs: len(rs) >= len(history), 300)
        await audit.until(
            lambda es: any(e["action"] == "pseudonymizer.history_released" for e in es), 60
        )
        await asyncio.sleep(1.0)
        held = await drain(curated)
        ids = [r["curated_id"] for r in held]
        assert len(ids) == len(set(ids)) == len(history)
        print(f"\nD46 kill -9: {seen_before} of {len(history)} released before the kill")
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
        await curated.stop()
        await audit.stop()
