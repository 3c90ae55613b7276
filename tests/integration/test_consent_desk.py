"""The consent desk (D32) on the real broker: a withdrawal recorded with ``ingest consent
withdraw`` as the ``consent`` principal stops the person's releases end to end; a hospital's
principal may not write consent events, and the desk may not read them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import TopicAuthorizationFailedError
from biostream.codec import default_codec
from biostream.contracts import CONSENT_EVENT
from biostream.kafka import plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_dev.observer import PipelineObserver
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.consent import consent_event, person_subject
from ingest.domain.files import FeedMessage

pytestmark = pytest.mark.integration

MRN = "73000042"
CODEC = default_codec()


def bundle(message_id: str, day: str, consent: dict[str, Any] | None = None) -> FeedMessage:
    """One FHIR Bundle of H001: the patient and one diagnosis on ``day``, or a Consent."""
    patient = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"code": "MR"}]},
                        "system": "http://h001.example.kr/patient-id", "value": MRN}],
        "name": [{"text": "박지우", "family": "박", "given": ["지우"]}],
        "gender": "female", "birthDate": "1979-05-02",
        "address": [{"text": "대구광역시 중구 동덕로 130", "postalCode": "41944"}],
    }  # fmt: skip
    condition = {
        "resourceType": "Condition", "subject": {"reference": "urn:uuid:p"},
        "code": {"coding": [{"system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9",
                             "code": "E11.9"}]},
        "recordedDate": day,
    }  # fmt: skip
    other = condition if consent is None else {
        "resourceType": "Consent", "patient": {"reference": "urn:uuid:p"}, **consent
    }  # fmt: skip
    value = json.dumps(
        {"resourceType": "Bundle", "id": message_id, "type": "collection",
         "entry": [{"fullUrl": "urn:uuid:p", "resource": patient}, {"resource": other}]},
        ensure_ascii=False,
    ).encode()  # fmt: skip
    return FeedMessage(message_id.encode(), value, "application/fhir+json")


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


async def test_a_withdrawal_from_the_consent_desk_stops_releases_and_hospitals_cannot_write_one(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    principals = access.render(access.load_matrix(), prefix=topic_prefix, hospitals=["H001"])
    async with running_pipeline(kafka, topic_prefix, ["H001"], keys) as observer:
        credentials = await asyncio.to_thread(
            access.apply, kafka, {r: principals[r] for r in ("consent", "hospital-h001")}
        )
        await access.wait_until_usable(credentials)
        hospital = credentials.settings("hospital-h001")

        # The hospital's first visit is released.
        await publish_messages(hospital, topics.feed("H001"), [bundle("F-1", "2026-02-01")])
        view = await observer.wait_until_settled(1, timeout_s=120)
        [released] = view.curated
        pseudonym = released["pseudonym"]

        # The desk withdraws the participant by hospital and patient number (read from stdin).
        key_file = tmp_path / "patient_ref.key"
        key_file.write_text(keys.patient_ref)
        env = {
            **os.environ,
            **access.kafka_environment(credentials.settings("consent")),
            "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
            "BIOSTREAM_PRINCIPAL": f"User:{credentials.users['consent']}",
            "BIOSTREAM_PATIENT_REF_KEY_FILE": str(key_file),
        }
        env.pop("BIOSTREAM_PATIENT_REF_KEY", None)
        code, out, err = await consent_cli(
            env, "withdraw", "--hospital", "H001", "--mrn", "-", stdin=MRN + "\n"
        )
        assert code == 0, err
        answer = json.loads(out)
        [decision] = view.decisions
        assert answer["patient_ref"] == decision["patient_ref"]
        assert MRN not in out + err

        # The datasets are told, and the pseudonymizer records the withdrawal.
        await poll_until(
            observer,
            lambda v: any(
                n["kind"] == "WITHDRAWAL" and n["pseudonym"] == pseudonym for n in v.notices
            ),
        )
        await poll_until(
            observer,
            lambda v: any(
                e["action"] == "pseudonymizer.consent" and answer["event_id"] in e["inputs"]
                for e in v.audit_events
            ),
        )
        # The desk's own audit event names its principal, the reference and the event, no MRN.
        [recorded] = [
            e for e in observer.view.audit_events if e["action"] == "ingest.consent_withdrawn"
        ]
        assert recorded["principal"] == f"User:{credentials.users['consent']}"
        assert (recorded["inputs"], recorded["outputs"]) == (
            [answer["patient_ref"]],
            [answer["event_id"]],
        )
        assert recorded["hospital"] == "H001"
        assert MRN not in json.dumps(observer.view.audit_events, default=str)

        # The next visit is withheld: nothing more is released for the person.
        await publish_messages(hospital, topics.feed("H001"), [bundle("F-2", "2026-02-20")])
        view = await observer.wait_until_settled(2, timeout_s=120)
        assert [r["pseudonym"] for r in view.curated] == [pseudonym]
        first_id = released_record_id(view)
        second = [c for c in view.clinical if c["record_id"] != first_id]
        assert second, "the second visit reached the pseudonymizer"
        withheld = {
            e["inputs"][0] for e in view.audit_events if e["action"] == "pseudonymizer.withheld"
        }
        assert {c["record_id"] for c in second} <= withheld

        # A hospital may not write consent events, neither directly nor through the desk.
        producer = plain_producer(hospital, "test-hospital-consent")
        await producer.start()
        try:
            forged = consent_event(
                "grant", person_subject(decision["person_id"]), [], dt.datetime.now(dt.UTC), "H001"
            )
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(
                    topics.consent_events, CODEC.encode(CONSENT_EVENT, forged), key=b"x"
                )
        finally:
            await producer.stop()
        as_hospital = {**env, **access.kafka_environment(hospital),
                       "BIOSTREAM_PRINCIPAL": f"User:{credentials.users['hospital-h001']}"}  # fmt: skip
        code, out, err = await consent_cli(
            as_hospital, "grant", "--hospital", "H001", "--mrn", "-", stdin=MRN + "\n"
        )
        assert (code, out) == (1, ""), err
        assert "nothing recorded" in err and MRN not in err
        await observer.poll(500)
        assert not any(n["kind"] != "WITHDRAWAL" for n in observer.view.notices)


def released_record_id(view: Any) -> str:
    """The clinical record behind the first curated record (the only one released)."""
    first = [e["inputs"][0] for e in view.audit_events if e["action"] == "pseudonymizer.released"]
    assert len(first) == 1
    return str(first[0])


async def test_a_fhir_consent_in_a_hospitals_feed_withdraws_the_patient(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    """D32: ingest (svc-ingest, which the matrix lets write consent.events) turns an inactive
    FHIR Consent of the feed into a withdrawal of the Bundle's patient."""
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    async with running_pipeline(kafka, topic_prefix, ["H001"], keys) as observer:
        await publish_messages(kafka, topics.feed("H001"), [bundle("F-1", "2026-02-01")])
        view = await observer.wait_until_settled(1, timeout_s=120)
        [released] = view.curated
        withdrawal = {"status": "inactive", "dateTime": "2026-02-10T09:00:00+09:00"}
        await publish_messages(kafka, topics.feed("H001"), [bundle("C-1", "", withdrawal)])
        await poll_until(
            observer,
            lambda v: any(
                n["kind"] == "WITHDRAWAL" and n["pseudonym"] == released["pseudonym"]
                for n in v.notices
            ),
        )
        await publish_messages(kafka, topics.feed("H001"), [bundle("F-2", "2026-02-20")])
        view = await observer.wait_until_settled(3, timeout_s=120)
        assert [r["pseudonym"] for r in view.curated] == [released["pseudonym"]]
        consent_actions = [
            e["outcome"] for e in view.audit_events
            if e["action"] == "pseudonymizer.consent" and e["inputs"] == ["H001/C-1/c0"]
        ]  # fmt: skip
        assert len(consent_actions) == 1
        withheld = {
            e["inputs"][0] for e in view.audit_events if e["action"] == "pseudonymizer.withheld"
        }
        assert {c["record_id"] for c in view.clinical if c["message_id"] == "F-2"} <= withheld
        assert withheld
