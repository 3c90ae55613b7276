"""D33 (patient-ref) on the real broker: the patient-ref key rotates in the middle of a feed.

k2 is staged with an activation time between the two halves of the feed, and the feed messages'
Kafka timestamps decide which key makes each record's ref. Nothing is lost: every patient keeps
their person and their pseudonym across the rotation, a patient whose only record after the
rotation is clinical is released, nothing is dead-lettered, and a withdrawal by hospital and
patient number after the rotation stops that patient's releases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from biostream.codec import default_codec
from biostream.contract import PREVIOUS_REFS_HEADER
from biostream.contracts import CLINICAL_RECORD, ClinicalRecord
from biostream.kafka import plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_dev.observer import PipelineObserver
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.domain.files import FeedMessage
from ingest.domain.patient_refs import patient_ref

pytestmark = pytest.mark.integration

CODEC = default_codec()
# mrn, name, family, given, birth date, gender, address, postal code
PATIENTS = {
    "A": ("74000001", "김하늘", "김", "하늘", "1984-07-12", "female", "부산광역시 해운대구 센텀중앙로 79", "48058"),
    "B": ("74000002", "이도윤", "이", "도윤", "1991-11-03", "male", "대전광역시 유성구 대학로 99", "34141"),
    "C": ("74000003", "최서아", "최", "서아", "1968-02-25", "female", "광주광역시 북구 용봉로 77", "61186"),
}  # fmt: skip


def bundle(message_id: str, who: str, day: str) -> FeedMessage:
    """One FHIR Bundle of H001: the patient and one diagnosis on ``day``."""
    mrn, name, family, given, birth, gender, address, postal = PATIENTS[who]
    patient = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"code": "MR"}]},
                        "system": "http://h001.example.kr/patient-id", "value": mrn}],
        "name": [{"text": name, "family": family, "given": [given]}],
        "gender": gender, "birthDate": birth,
        "address": [{"text": address, "postalCode": postal}],
    }  # fmt: skip
    condition = {
        "resourceType": "Condition", "subject": {"reference": "urn:uuid:p"},
        "code": {"coding": [{"system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9",
                             "code": "E11.9"}]},
        "recordedDate": day,
    }  # fmt: skip
    value = json.dumps(
        {"resourceType": "Bundle", "id": message_id, "type": "collection",
         "entry": [{"fullUrl": "urn:uuid:p", "resource": patient}, {"resource": condition}]},
        ensure_ascii=False,
    ).encode()  # fmt: skip
    return FeedMessage(message_id.encode(), value, "application/fhir+json")


async def publish_at(
    kafka: KafkaSettings, topic: str, messages: list[FeedMessage], timestamp_ms: int
) -> None:
    """The hospital's messages with the Kafka time they were produced at (CreateTime)."""
    producer = plain_producer(kafka, "test-patient-ref-rotation")
    await producer.start()
    try:
        for message in messages:
            sent = await producer.send(
                topic, message.value, key=message.key, timestamp_ms=timestamp_ms,
                headers=[("content-type", message.content_type.encode())],
            )  # fmt: skip
            await sent
    finally:
        await producer.stop()


def write_key(keys_dir: Path, version: str, material: str, activates: str | None = None) -> None:
    path = keys_dir / f"patient-ref.{version}.key"
    path.write_text(material + "\n")
    path.chmod(0o600)
    if activates is not None:
        (keys_dir / f"patient-ref.{version}.activates").write_text(activates + "\n")


async def consent_cli(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingest", "consent", *args, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def poll_until(observer: PipelineObserver, done: Any, timeout_s: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done(observer.view):
        if loop.time() > deadline:
            raise TimeoutError(f"the pipeline did not get there: {observer.view.progress(0)}")
        await observer.poll(300)


async def test_the_patient_ref_key_rotates_mid_stream_with_nothing_lost(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    k2 = secrets.token_hex(32)
    # k2 activates five minutes ago; the first half of the feed was produced before that, the
    # second after (both in the past, as the broker accepts no far-future timestamps).
    rotation_ms = (int(time.time()) - 300) * 1000
    activates = dt.datetime.fromtimestamp(rotation_ms / 1000, dt.UTC).isoformat()
    keys_dir = tmp_path / "patient-ref-keys"
    keys_dir.mkdir()
    write_key(keys_dir, "k1", keys.patient_ref)  # the key of before, from the start
    write_key(keys_dir, "k2", k2, activates)

    def refs(who: str) -> tuple[str, str]:
        mrn = PATIENTS[who][0]
        return patient_ref(keys.patient_ref.encode(), "H001", mrn), patient_ref(
            k2.encode(), "H001", mrn
        )

    keys_dirs = {"patient_ref": keys_dir}
    principals = access.render(access.load_matrix(), prefix=topic_prefix, hospitals=["H001"])
    async with running_pipeline(
        kafka, topic_prefix, ["H001"], keys, keys_dirs=keys_dirs
    ) as observer:
        # --- before the rotation: three patients, each a first visit -------------------------
        first = [bundle("F-1", "A", "2026-02-01"), bundle("F-2", "B", "2026-02-02"),
                 bundle("F-3", "C", "2026-02-03")]  # fmt: skip
        await publish_at(kafka, topics.feed("H001"), first, rotation_ms - 60_000)
        view = await observer.wait_until_settled(3, timeout_s=120)
        pseudonym = {}
        for who in PATIENTS:
            old_ref = refs(who)[0]
            [record] = [r for r in view.clinical if r["patient_ref"] == old_ref]
            assert record["previous_patient_refs"] == []
            [released] = [c for c in view.curated if released_for(view, c, record["record_id"])]
            pseudonym[who] = released["pseudonym"]
        assert len(set(pseudonym.values())) == 3
        person = {who: decision_person(view.decisions, refs(who)[0]) for who in PATIENTS}

        # --- after the rotation: A and B come back; C only sends a clinical record -----------
        second = [bundle("F-4", "A", "2026-03-01"), bundle("F-5", "B", "2026-03-02")]
        await publish_at(kafka, topics.feed("H001"), second, rotation_ms + 60_000)
        # A results-only source (no identity record): the pseudonymizer alone must place it.
        old_c, new_c = refs("C")
        lab: ClinicalRecord = {
            "record_id": "H001/LAB-1/1", "patient_ref": new_c, "hospital": "H001",
            "message_id": "LAB-1", "source_format": "FHIR",
            "received_at": dt.datetime.now(dt.UTC), "resource_type": "Observation",
            "event_date": dt.date(2026, 3, 3), "code_system": "http://loinc.org",
            "code": "4548-4", "code_version": None, "value_number": 7.1, "value_unit": "%",
            "value_text": None, "specimen_refs": [], "quality_flags": [],
            "previous_patient_refs": [old_c],
        }  # fmt: skip
        producer = plain_producer(kafka, "test-patient-ref-rotation-lab")
        await producer.start()
        try:
            await (
                await producer.send(
                    topics.clinical_records, CODEC.encode(CLINICAL_RECORD, lab),
                    key=new_c.encode(), headers=[(PREVIOUS_REFS_HEADER, old_c.encode())],
                )
            )  # fmt: skip
        finally:
            await producer.stop()
        view = await observer.wait_until_settled(5, timeout_s=120)

        assert view.dead_letters == []
        for who in ("A", "B"):
            old_ref, new_ref = refs(who)
            [identity] = [i for i in view.identity if i["patient_ref"] == new_ref]
            assert identity["previous_patient_refs"] == [old_ref]
            assert decision_person(view.decisions, new_ref) == person[who]
            [continued] = [d for d in view.decisions if d["patient_ref"] == new_ref]
            assert (continued["outcome"], continued["rule"]) == ("MATCH", "patient-ref-rotation")
            [record] = [r for r in view.clinical if r["patient_ref"] == new_ref]
            [released] = [c for c in view.curated if released_for(view, c, record["record_id"])]
            assert released["pseudonym"] == pseudonym[who]
        [lab_released] = [c for c in view.curated if released_for(view, c, "H001/LAB-1/1")]
        assert lab_released["pseudonym"] == pseudonym["C"]
        assert view.persons() == 3
        rotated = [
            e for e in view.audit_events
            if e["action"] == "linkage.linked" and e["reason_code"] == "PATIENT_REF_ROTATED"
        ]  # fmt: skip
        assert len(rotated) == 2
        assert not [n for n in view.notices if n["kind"] == "CORRECTION"]

        # --- a withdrawal by hospital and patient number after the rotation -------------------
        credentials = await asyncio.to_thread(
            access.apply, kafka, {"consent": principals["consent"]}
        )
        await access.wait_until_usable(credentials)
        env = {
            **os.environ,
            **access.kafka_environment(credentials.settings("consent")),
            "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
            "BIOSTREAM_PRINCIPAL": f"User:{credentials.users['consent']}",
            "BIOSTREAM_PATIENT_REF_KEYS_DIR": str(keys_dir),
        }
        for name in ("BIOSTREAM_PATIENT_REF_KEY", "BIOSTREAM_PATIENT_REF_KEY_FILE"):
            env.pop(name, None)
        mrn_c = PATIENTS["C"][0]
        code, out, err = await consent_cli(
            env, "withdraw", "--hospital", "H001", "--mrn", "-", stdin=mrn_c + "\n"
        )
        assert code == 0, err
        answer = json.loads(out)
        assert answer["patient_ref"] == new_c  # linkage never saw this ref: only the older one
        assert mrn_c not in out + err
        await poll_until(
            observer,
            lambda v: any(
                n["kind"] == "WITHDRAWAL" and n["pseudonym"] == pseudonym["C"] for n in v.notices
            ),
        )
        # C's next visit (after the rotation) is withheld; A's is still released.
        third = [bundle("F-6", "C", "2026-03-10"), bundle("F-7", "A", "2026-03-11")]
        await publish_at(kafka, topics.feed("H001"), third, rotation_ms + 120_000)
        view = await observer.wait_until_settled(7, timeout_s=120)
        assert sum(c["pseudonym"] == pseudonym["C"] for c in view.curated) == 2  # F-3, LAB-1
        assert sum(c["pseudonym"] == pseudonym["A"] for c in view.curated) == 3
        withheld = [
            e for e in view.audit_events
            if e["action"] == "pseudonymizer.withheld" and e["inputs"] == ["H001/F-6/1"]
        ]  # fmt: skip
        assert [e["reason_code"] for e in withheld] == ["CONSENT_WITHDRAWN"]
        assert view.dead_letters == []


def released_for(view: Any, curated: dict[str, Any], record_id: str) -> bool:
    """Whether ``curated`` is the release of clinical record ``record_id`` (by its audit event)."""
    return any(
        e["action"] == "pseudonymizer.released"
        and e["inputs"] == [record_id]
        and curated["curated_id"] in e["outputs"]
        for e in view.audit_events
    )


def decision_person(decisions: list[dict[str, Any]], ref: str) -> str:
    """The person of the newest decision for ``ref``."""
    newest = max((d for d in decisions if d["patient_ref"] == ref), key=lambda d: d["sequence"])
    person: str = newest["person_id"]
    return person
