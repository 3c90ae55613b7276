"""The pseudonymizer on the real broker: canaries, two projects, corrections, late decisions,
restarts and replays, consent withdrawal and re-identification."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    CONSENT_EVENT,
    CURATED_RECORD,
    DATASET_NOTICE,
    LINK_DECISION,
)
from biostream.envelopes import audit_events_in
from biostream.kafka import ensure_topics, plain_producer, reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_dev.synth import canary_values, generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage
from prometheus_client import CollectorRegistry
from pseudonymizer.bootstrap import build
from pseudonymizer.domain.pseudonyms import pseudonym
from pseudonymizer.settings import PseudonymizerSettings
from pydantic import SecretStr

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CODEC = AvroCodec(SchemaRegistry())
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def write_policies(directory: Path) -> Path:
    """The demo policy (with a re-identification approval valid today and one expired, D35) and
    a second project that also receives specimens, under its own key."""
    directory.mkdir()
    demo = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    today = dt.datetime.now(dt.UTC).date()
    demo["reidentification"] = [
        {"ref": "DRB-R-7", "purpose": "return of an incidental finding",
         "granted": str(today - dt.timedelta(days=1)), "expires": str(today + dt.timedelta(days=30))},
        {"ref": "DRB-R-6", "purpose": "an earlier request",
         "granted": str(today - dt.timedelta(days=60)), "expires": str(today - dt.timedelta(days=1))},
    ]  # fmt: skip
    (directory / "cohort-demo.json").write_text(json.dumps(demo))
    project_b = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    project_b.update(
        dataset="genome-b", pseudonym_domain="genome-b", target_topic="curated.genome-b",
        approval_ref="IRB-B-2026-9", record_types=[*project_b["record_types"], "Specimen"],
        generalisation={"birth": "year", "address": "drop", "event_date": {"method": "month"}},
    )  # fmt: skip
    (directory / "genome-b.json").write_text(json.dumps(project_b))
    return directory


def add_k_policy(directory: Path, k: int) -> None:
    """A third project that releases only sex and province as quasi-identifiers, with min k."""
    project_k = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    project_k.update(
        dataset="cohort-k", pseudonym_domain="cohort-k", target_topic="curated.cohort-k",
        generalisation={"birth": "drop", "address": "province", "event_date": {"method": "month"}},
        k_anonymity={"min_k": k, "max_hold_hours": 168},
    )  # fmt: skip
    (directory / "cohort-k.json").write_text(json.dumps(project_k))


# --- hand-made feed: identifiers in notes and specimen ids ---------------------------------------------

PERSON = {
    "mrn": "88001234", "mrn2": "55007788", "name": "황보지현", "family": "황보", "given": "지현",
    "rrn": "880412-2345671", "phone": "010-4455-6677", "address": "광주광역시 북구 용봉로 77",
    "postal": "61186", "specimen": "SPC-2026-H9-000731", "fastq": "WGS-H9-000731_R1.fastq.gz",
}  # fmt: skip


def hand_bundle(message_id: str, mrn: str, system: str) -> bytes:
    p = PERSON
    note = f"환자 {p['name']} ({p['rrn']}) 연락처 {p['phone']}, {p['address']} 거주, 등록번호 {mrn}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": "urn:uuid:p",
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {"type": {"coding": [{"code": "MR"}]}, "system": system, "value": mrn},
                    {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": p["rrn"]},
                ],
                "name": [{"text": p["name"], "family": p["family"], "given": [p["given"]]}],
                "gender": "female",
                "birthDate": "1988-04-12",
                "telecom": [{"system": "phone", "value": p["phone"]}],
                "address": [{"text": p["address"], "postalCode": p["postal"]}],
            },
        },
        {
            "resource": {
                "resourceType": "Observation",
                "subject": {"reference": "urn:uuid:p"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "valueString": note,
                "effectiveDateTime": "2026-02-03",
            }
        },
        {
            "resource": {
                "resourceType": "Specimen",
                "subject": {"reference": "urn:uuid:p"},
                "identifier": [{"value": p["specimen"]}, {"value": p["fastq"]}],
                "collection": {"collectedDateTime": "2026-02-03"},
            }
        },
    ]
    document = {"resourceType": "Bundle", "id": message_id, "type": "collection", "entry": entries}
    return json.dumps(document, ensure_ascii=False).encode()


async def test_no_identifying_value_reaches_a_curated_topic_and_projects_get_their_own_pseudonyms(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    feed_dir = tmp_path / "feed"
    generate_feed(feed_dir, persons=40, seed=7)
    feeds = feed_messages(feed_dir)
    feeds["H009"] = [
        FeedMessage(
            b"N-1",
            hand_bundle("N-1", PERSON["mrn"], "http://h009.example.kr/p"),
            "application/fhir+json",
        )
    ]
    feeds["H010"] = [
        FeedMessage(
            b"N-2",
            hand_bundle("N-2", PERSON["mrn2"], "http://h010.example.kr/p"),
            "application/fhir+json",
        )
    ]
    policies = write_policies(tmp_path / "policies")
    k = 4
    add_k_policy(policies, k)
    keys = Keys.fresh()
    domain_keys = {
        "cohort-demo/k1": keys.pseudonym,
        "genome-b/k1": secrets.token_hex(32),
        "cohort-k/k1": secrets.token_hex(32),
    }
    topics = Topics(topic_prefix)
    published = sum(len(m) for m in feeds.values())
    async with running_pipeline(
        kafka, topic_prefix, sorted(feeds), keys, policy_dir=policies,
        datasets=["cohort-demo", "genome-b", "cohort-k"], pseudonym_keys=domain_keys,
    ) as observer:  # fmt: skip
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        view = await observer.wait_until_settled(published, timeout_s=180)

    by_dataset: dict[str, list[dict[str, Any]]] = {
        "cohort-demo": [],
        "genome-b": [],
        "cohort-k": [],
    }
    for record in view.curated:
        by_dataset[record["dataset"]].append(record)
    assert by_dataset["cohort-demo"] and by_dataset["genome-b"]

    # k-anonymity on the stream: every released (sex, province) has at least k pseudonyms; the
    # rest is held, and every clinical record is accounted for in the k dataset.
    classes: dict[tuple[str, str | None], set[str]] = {}
    for record in by_dataset["cohort-k"]:
        classes.setdefault((record["sex"], record["province_code"]), set()).add(record["pseudonym"])
    assert all(len(pseudonyms) >= k for pseudonyms in classes.values())
    assert classes, "the feed has classes of k persons or more (seed 7)"
    held = {
        e["inputs"][0]
        for e in view.audit_events
        if e["dataset"] == "cohort-k" and e["reason_code"] == "BELOW_K"
    }
    released_k = {
        e["inputs"][0]
        for e in view.audit_events
        if e["dataset"] == "cohort-k" and e["action"] == "pseudonymizer.released"
    }
    withheld_k = {
        e["inputs"][0]
        for e in view.audit_events
        if e["dataset"] == "cohort-k" and e["action"] == "pseudonymizer.withheld"
    }
    assert released_k | held | withheld_k == {c["record_id"] for c in view.clinical}
    assert held - released_k, "the feed also has classes below k (seed 7)"
    assert len(by_dataset["cohort-k"]) == len(released_k)

    # Canaries: every identifying value of the generated feed and of the hand-made one.
    canaries = set(canary_values(feed_dir)) | {
        v for k, v in PERSON.items() if k not in ("family", "given", "postal")
    }
    canaries |= {PERSON["rrn"].replace("-", ""), PERSON["phone"].replace("-", "")}
    curated_text = b"\n".join(view.raw_curated).decode("utf-8", "replace") + json.dumps(
        [view.curated, view.notices], default=str, ensure_ascii=False
    )
    leaked = sorted(c for c in canaries if len(c) >= 2 and c in curated_text)
    assert leaked == [], f"{len(leaked)} canaries leaked into curated topics"

    # The hand-made person: one pseudonym per project across two hospitals, none shared.
    hand = {
        d: {r["pseudonym"] for r in rs if r["hospital"] in ("H009", "H010")}
        for d, rs in by_dataset.items()
    }
    assert len(hand["cohort-demo"]) == 1 and len(hand["genome-b"]) == 1
    assert hand["cohort-demo"] != hand["genome-b"]
    all_a = {r["pseudonym"] for r in by_dataset["cohort-demo"]}
    all_b = {r["pseudonym"] for r in by_dataset["genome-b"]}
    all_k = {r["pseudonym"] for r in by_dataset["cohort-k"]}
    assert all_a.isdisjoint(all_b) and all_a.isdisjoint(all_k) and all_b.isdisjoint(all_k)
    assert len(all_a) == len(all_b) == view.persons()

    # Notes are scrubbed, specimens appear only under the project's pseudonymous ids.
    notes = [r["value_text"] for r in by_dataset["cohort-demo"] if r["hospital"] == "H009"]
    assert any(n and "[RRN]" in n and "[PHONE]" in n for n in notes)
    specimens = [r for r in by_dataset["genome-b"] if r["resource_type"] == "Specimen"]
    assert {len(r["specimen_ids"]) for r in specimens} == {2}
    assert all(s.startswith("sp_") for r in specimens for s in r["specimen_ids"])
    assert not [r for r in by_dataset["cohort-demo"] if r["resource_type"] == "Specimen"]


# --- the pseudonymizer alone, fed link decisions and clinical records directly ---------------------------


@asynccontextmanager
async def pseudonymizer(
    kafka: KafkaSettings,
    prefix: str,
    policies: Path,
    keys: dict[str, str],
    registry: CollectorRegistry | None = None,
    **options: Any,
) -> AsyncIterator[PseudonymizerSettings]:
    settings = PseudonymizerSettings.model_validate(
        {
            "kafka": kafka, "topic_prefix": prefix, "poll_timeout_ms": 100,
            "policy_dir": policies, "pseudonym_keys": {k: SecretStr(v) for k, v in keys.items()},
            "dead_letter_key": SecretStr(secrets.token_hex(32)), **options,
        }
    )  # fmt: skip
    service = build(settings, registry)
    stop = asyncio.Event()
    task = asyncio.create_task(service.processor.run(stop))
    try:
        for _ in range(600):
            if task.done():
                task.result()
            if service.processor.ready:
                break
            await asyncio.sleep(0.1)
        yield settings
    finally:
        stop.set()
        await task


class Topic:
    """Reads one prefixed topic from the start (read_committed) and decodes it."""

    def __init__(self, kafka: KafkaSettings, name: str, contract: str) -> None:
        self.kafka, self.name, self.contract = kafka, name, contract
        self.records: list[dict[str, Any]] = []
        self._consumer = reader(kafka, f"test-{name}")

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await topic_partitions(self.kafka, [self.name])
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done(self.records):
            if loop.time() > deadline:
                raise TimeoutError(f"{self.name}: condition not met, {len(self.records)} records")
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if self.contract == AUDIT_EVENT:  # services pack each transaction's events
                        self.records += audit_events_in(CODEC, r.value or b"")
                    else:
                        self.records.append(CODEC.decode(r.value, self.contract))
        return self.records

    async def stop(self) -> None:
        await self._consumer.stop()


def clinical_record(record_id: str, ref: str) -> dict[str, Any]:
    return {
        "record_id": record_id, "patient_ref": ref, "hospital": record_id.split("/")[0],
        "message_id": "M", "source_format": "FHIR", "received_at": NOW,
        "resource_type": "Condition", "event_date": dt.date(2026, 2, 1),
        "code_system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9", "code": "E11.9",
        "code_version": "9", "value_number": None, "value_unit": None, "value_text": None,
        "specimen_refs": [], "quality_flags": [],
    }  # fmt: skip


def link_decision(
    ref: str,
    person: str,
    sequence: int = 0,
    previous: str | None = None,
    outcome: str = "NEW_PERSON",
) -> dict[str, Any]:
    return {
        "decision_id": f"{ref}/{sequence}", "patient_ref": ref, "record_id": f"{ref}/id",
        "hospital": "H001", "person_id": person, "previous_person_id": previous,
        "outcome": outcome, "score": 0.0, "rule": "test", "sequence": sequence,
        "decided_at": NOW, "birth_year": 1975, "sex": "M", "province_code": "26",
        "birth_month": 3, "postal_prefix": "480", "district_code": None,
    }  # fmt: skip


async def test_late_decisions_merges_restarts_replays_withdrawal_and_reidentification(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    policies = write_policies(tmp_path / "policies")
    keys = {"cohort-demo/k1": secrets.token_hex(32), "genome-b/k1": secrets.token_hex(32)}
    key_a = keys["cohort-demo/k1"].encode()
    topics = Topics(topic_prefix)
    datasets = ["cohort-demo", "genome-b"]
    await ensure_topics(kafka, topics.pipeline_specs([], datasets))
    sent: list[tuple[str, str, dict[str, Any]]] = []
    producer = plain_producer(kafka, "test-producer")
    await producer.start()

    async def send(topic: str, contract: str, record: dict[str, Any]) -> None:
        sent.append((topic.removeprefix(topic_prefix), contract, record))
        key = record.get("patient_ref") or record.get("event_id")
        await producer.send_and_wait(topic, CODEC.encode(contract, record), key=key.encode())

    curated = Topic(kafka, topics.curated("cohort-demo"), CURATED_RECORD)
    notices = Topic(kafka, topics.notices("cohort-demo"), DATASET_NOTICE)
    notices_b = Topic(kafka, topics.notices("genome-b"), DATASET_NOTICE)
    audit = Topic(kafka, topics.audit_events_of("svc-pseudonymizer"), AUDIT_EVENT)
    # Re-identification is a steward's act: its events are on the steward's audit topic (D31).
    steward_audit = Topic(kafka, topics.audit_events_of("steward"), AUDIT_EVENT)
    for topic in (curated, notices, notices_b, audit, steward_audit):
        await topic.start()
    try:
        async with pseudonymizer(kafka, topic_prefix, policies, keys):
            # A record before its link decision waits; the late decision releases it.
            await send(
                topics.clinical_records, CLINICAL_RECORD, clinical_record("H001/1/0", "pr_a")
            )
            await audit.until(lambda es: any(e["action"] == "pseudonymizer.held" for e in es))
            assert curated.records == []
            await send(topics.link_decisions, LINK_DECISION, link_decision("pr_a", "P1"))
            [first] = await curated.until(lambda rs: len(rs) == 1)
            assert first["pseudonym"] == pseudonym(key_a, "P1")
            # Another hospital's patient, first a person of its own, then merged into P1.
            await send(topics.link_decisions, LINK_DECISION, link_decision("pr_b", "P2"))
            await send(
                topics.clinical_records, CLINICAL_RECORD, clinical_record("H002/1/0", "pr_b")
            )
            second = (await curated.until(lambda rs: len(rs) == 2))[1]
            assert second["pseudonym"] == pseudonym(key_a, "P2")
            merge = link_decision("pr_b", "P1", sequence=1, previous="P2", outcome="MERGED")
            await send(topics.link_decisions, LINK_DECISION, merge)
            [correction] = await notices.until(lambda ns: len(ns) == 1)
            assert correction["kind"] == "CORRECTION" and correction["reason"] == "MERGED"
            assert correction["pseudonym"] == pseudonym(key_a, "P2")
            assert correction["new_pseudonym"] == pseudonym(key_a, "P1")
            assert correction["curated_ids"] == [second["curated_id"]]
            [correction_b] = await notices_b.until(lambda ns: len(ns) == 1)
            assert correction_b["new_pseudonym"] != correction["new_pseudonym"]

        # Restart: the state comes back from the changelog; same pseudonym, no second notice.
        async with pseudonymizer(kafka, topic_prefix, policies, keys):
            await send(
                topics.clinical_records, CLINICAL_RECORD, clinical_record("H002/2/0", "pr_b")
            )
            third = (await curated.until(lambda rs: len(rs) == 3))[2]
            assert third["pseudonym"] == pseudonym(key_a, "P1")

            # Re-identification, by the steward principal's command, needs an approval the
            # policy lists, valid today (D35), and is audited before it answers; a refusal is
            # audited too.
            principals = access.render(access.load_matrix(), prefix=topic_prefix)
            credentials = await asyncio.to_thread(
                access.apply, kafka, {"steward": principals["steward"]}
            )
            await access.wait_until_usable(credentials)
            env = {
                **os.environ,
                **access.kafka_environment(credentials.settings("steward")),
                "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
                "BIOSTREAM_POLICY_DIR": str(policies),
                "BIOSTREAM_PSEUDONYM_KEYS": json.dumps(keys),
            }

            async def reidentify_cli(approval: str) -> tuple[int, str, str]:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "pseudonymizer", "reidentify", "--dataset",
                    "cohort-demo", "--pseudonym", third["pseudonym"], "--approval", approval,
                    env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, err = await process.communicate()
                assert process.returncode is not None
                return process.returncode, out.decode(), err.decode()

            code, out, err = await reidentify_cli("DRB-R-7")
            assert code == 0, err
            assert out.split("\t")[0] == "P1" and "cohort-demo/k1" in out
            for approval, why in [
                ("DRB-X-1", "not on record"),
                ("DRB-R-6", "expired"),
                ("DRB-DEMO-2026-001", "is the release approval"),
            ]:
                code, out, err = await reidentify_cli(approval)
                assert (code, out) == (2, ""), err
                assert why in err
            code, _, err = await reidentify_cli("not a reference")
            assert code == 2 and "approval reference is" in err
            events = await steward_audit.until(
                lambda es: (
                    sum(e["action"] == "pseudonymizer.reidentification_refused" for e in es) == 3
                )
            )
            principal = {e["principal"] for e in events}
            assert principal == {f"User:{topic_prefix}steward"}
            asked = [e for e in events if e["action"] == "pseudonymizer.reidentification_requested"]
            assert [e["purpose"] for e in asked] == ["DRB-R-7"]
            [found] = [e for e in events if e["action"] == "pseudonymizer.reidentified"]
            assert found["outcome"] == "found"
            refused = [e for e in events if e["action"] == "pseudonymizer.reidentification_refused"]
            assert [(e["purpose"], e["reason_code"], e["outcome"]) for e in refused] == [
                ("DRB-X-1", "REIDENTIFICATION_APPROVAL_UNKNOWN", "refused"),
                ("DRB-R-6", "REIDENTIFICATION_APPROVAL_EXPIRED", "refused"),
                ("DRB-DEMO-2026-001", "REIDENTIFICATION_RELEASE_APPROVAL", "refused"),
            ]
            assert "P1" not in json.dumps(events, default=str)

            # Withdrawal: the datasets are told, and nothing more is released for the person.
            withdrawal = {
                "event_id": "consent/1", "kind": "WITHDRAWN", "patient_ref": "pr_a",
                "person_id": None, "datasets": [], "recorded_at": NOW, "source": "H001",
            }  # fmt: skip
            await send(topics.consent_events, CONSENT_EVENT, withdrawal)
            await notices.until(lambda ns: any(n["kind"] == "WITHDRAWAL" for n in ns))
            assert notices.records[-1]["pseudonym"] == pseudonym(key_a, "P1")
            await send(
                topics.clinical_records, CLINICAL_RECORD, clinical_record("H001/3/0", "pr_a")
            )
            await audit.until(
                lambda es: any(
                    e["action"] == "pseudonymizer.withheld" and e["inputs"] == ["H001/3/0"]
                    for e in es
                )
            )
        assert len(curated.records) == 3
    finally:
        for topic in (curated, notices, notices_b, audit, steward_audit):
            await topic.stop()

    # Replay: the inputs up to the merge, into a fresh pseudonymizer (its own topics, state and
    # group), give the same pseudonyms and curated ids, whatever order the two topics interleave.
    replay_prefix = f"{topic_prefix}r."
    replay_topics = Topics(replay_prefix)
    await ensure_topics(kafka, replay_topics.pipeline_specs([], datasets))
    for topic, contract, record in sent[:4]:
        await producer.send_and_wait(
            replay_prefix + topic,
            CODEC.encode(contract, record),
            key=record["patient_ref"].encode(),
        )
    await producer.stop()
    replayed = Topic(kafka, replay_topics.curated("cohort-demo"), CURATED_RECORD)
    await replayed.start()
    try:
        async with pseudonymizer(kafka, replay_prefix, policies, keys):
            await replayed.until(lambda rs: len(rs) == 2)
    finally:
        await replayed.stop()
    assert {(r["curated_id"], r["pseudonym"]) for r in replayed.records} == {
        (r["curated_id"], r["pseudonym"]) for r in curated.records[:2]
    }


async def test_a_record_ahead_of_its_decision_waits_in_memory_and_is_released_once(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    """The common order (clinical record first, its decision a linkage hop later): the record is
    held back uncommitted, not parked in the state (no hold audit event, no changelog entry), and
    released once when the decision comes; a restart while it is held loses nothing."""
    policies = write_policies(tmp_path / "policies")
    keys = {"cohort-demo/k1": secrets.token_hex(32), "genome-b/k1": secrets.token_hex(32)}
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-demo", "genome-b"]))
    producer = plain_producer(kafka, "test-producer")
    await producer.start()

    async def send(topic: str, contract: str, record: dict[str, Any]) -> None:
        value = CODEC.encode(contract, record)
        await producer.send_and_wait(topic, value, key=record["patient_ref"].encode())

    curated = Topic(kafka, topics.curated("cohort-demo"), CURATED_RECORD)
    audit = Topic(kafka, topics.audit_events_of("svc-pseudonymizer"), AUDIT_EVENT)
    for topic in (curated, audit):
        await topic.start()
    registry = CollectorRegistry()
    try:
        async with pseudonymizer(
            kafka, topic_prefix, policies, keys, registry, hold_for_decision_ms=60_000
        ):
            await send(
                topics.clinical_records, CLINICAL_RECORD, clinical_record("H001/1/1", "pr_h")
            )
            for _ in range(100):  # the record is fetched and held back
                if registry.get_sample_value("biostream_pseudonymizer_held_back_messages") == 1:
                    break
                await asyncio.sleep(0.1)
            assert registry.get_sample_value("biostream_pseudonymizer_held_back_messages") == 1
        # A restart while it is held: nothing was committed for it, so it is read again.
        registry = CollectorRegistry()
        async with pseudonymizer(
            kafka, topic_prefix, policies, keys, registry, hold_for_decision_ms=60_000
        ):
            await send(topics.link_decisions, LINK_DECISION, link_decision("pr_h", "P9"))
            [released] = await curated.until(lambda rs: len(rs) == 1)
            assert released["pseudonym"] == pseudonym(keys["cohort-demo/k1"].encode(), "P9")
            events = await audit.until(
                lambda es: any(e["action"] == "pseudonymizer.released" for e in es)
            )
            assert (
                registry.get_sample_value(
                    "biostream_pseudonymizer_hold_releases_total", {"reason": "ready"}
                )
                == 1
            )
            assert registry.get_sample_value("biostream_pseudonymizer_held_back_messages") == 0
        # Its events (one per dataset) are all in the transaction that released it.
        actions = [e["action"] for e in events if "H001/1/1" in e["inputs"]]
        assert actions and set(actions) == {"pseudonymizer.released"}
        changelog = reader(kafka, "test-changelog")
        await changelog.start()
        try:
            parts = await topic_partitions(kafka, [topics.state("pseudonymizer")])
            changelog.assign(parts)
            await changelog.seek_to_beginning(*parts)
            ends = await changelog.end_offsets(parts)
            state_keys: set[bytes | None] = set()
            # The whole changelog, not one fetch's worth: "no wait: key" must not pass vacuously.
            while [tp for tp, end in ends.items() if await changelog.position(tp) < end]:
                batch = await changelog.getmany(timeout_ms=1000)
                state_keys |= {r.key for records in batch.values() for r in records}
        finally:
            await changelog.stop()
        assert b"dec:pr_h" in state_keys
        assert not any(key.startswith(b"wait:") for key in state_keys if key)
    finally:
        for topic in (curated, audit):
            await topic.stop()
        await producer.stop()
