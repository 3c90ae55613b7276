"""A known feed, with malformed messages and a re-sent one, through all four services on a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from audit.domain.chain import verify
from biostream.codec import default_codec
from biostream.contracts import AUDIT_EVENT
from biostream.sealing import Sealer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_harness.inprocess import Keys, running_pipeline
from biostream_harness.linkage_stream import read_all
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage, split_feed

pytestmark = pytest.mark.integration

# Canaries: identifying values that must never reach a curated topic.
PEOPLE = [
    # (mrn, name, family, given, rrn, phone, address, postal)
    ("71000001", "김서연", "김", "서연", "850321-2012342", "010-3141-5926", "부산광역시 해운대구 센텀중앙로 79", "48058"),
    ("71000002", "이민준", "이", "민준", "010203-3456783", "010-2718-2818", "대전광역시 유성구 대학로 99", "34141"),
]  # fmt: skip


def fhir_bundle(message_id: str, person: tuple[str, ...], mrn_system: str) -> bytes:
    mrn, name, family, given, rrn, phone, address, postal = person
    birth = ("19" if rrn[7] in "12" else "20") + f"{rrn[0:2]}-{rrn[2:4]}-{rrn[4:6]}"
    return json.dumps(
        {
            "resourceType": "Bundle",
            "id": message_id,
            "type": "collection",
            "entry": [
                {
                    "fullUrl": "urn:uuid:p",
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [
                            {
                                "type": {"coding": [{"code": "MR"}]},
                                "system": mrn_system,
                                "value": mrn,
                            },
                            {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": rrn},
                        ],
                        "name": [{"text": name, "family": family, "given": [given]}],
                        "gender": "female" if rrn[7] in "24" else "male",
                        "birthDate": birth,
                        "telecom": [{"system": "phone", "value": phone}],
                        "address": [{"text": address, "postalCode": postal}],
                    },
                },
                {
                    "resource": {
                        "resourceType": "Condition",
                        "subject": {"reference": "urn:uuid:p"},
                        "code": {
                            "coding": [
                                {
                                    "system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9",
                                    "code": "E11.9",
                                }
                            ]
                        },
                        "recordedDate": "2026-02-01",
                    }
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "subject": {"reference": "urn:uuid:p"},
                        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                        "valueQuantity": {"value": 7.1, "unit": "%"},
                        "effectiveDateTime": "2026-02-01",
                    }
                },
            ],
        },
        ensure_ascii=False,
    ).encode()


CSV_HEADER = "message_id,patient_no,family_name,given_name,birth_date,sex,rrn,phone,address,postal_code,visit_date,kcd_code,kcd_version,lab_loinc,lab_value,lab_unit"


def csv_feed() -> bytes:
    mrn, _, family, given, rrn, phone, address, postal = PEOPLE[0]
    rows = [
        CSV_HEADER,
        f'C-1,{mrn}9,{family},{given},1985-03-21,F,{rrn},{phone},"{address}",{postal},2026-01-15,I10,9,,,',
        "C-2,900,broken,row",  # wrong column count
        "C-3,,박,지훈,1990-02-30,M,,010-1111-2222,,,2026-01-15,J45,9,,,",  # no patient number
    ]
    return ("\n".join(rows) + "\n").encode()


async def test_known_feed_reaches_curated_topic_once_and_bad_input_is_dead_lettered(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    h1 = [
        FeedMessage(b"F-1", fhir_bundle("F-1", PEOPLE[0], "http://h001.example.kr/patient-id"), "application/fhir+json"),
        FeedMessage(b"F-2", fhir_bundle("F-2", PEOPLE[1], "http://h001.example.kr/patient-id"), "application/fhir+json"),
        FeedMessage(b"F-bad", b'{"resourceType": "Bundle", "id": "F-bad", "entry": [', "application/fhir+json"),
        FeedMessage(None, b'{"resourceType": "Observation"}', "application/fhir+json"),
    ]  # fmt: skip
    resent = h1[0]  # the hospital sends F-1 a second time
    h2 = list(split_feed("csv", csv_feed()))
    h3 = [
        FeedMessage(
            b"G-1",
            fhir_bundle("G-1", PEOPLE[1], "http://h003.example.kr/patient-id"),
            "application/fhir+json",
        )
    ]
    feeds = {"H001": [*h1, resent], "H002": h2, "H003": h3}
    published = sum(len(m) for m in feeds.values())
    bad = {h1[2].value, h1[3].value, h2[1].value, h2[2].value}

    keys = Keys.fresh()
    async with running_pipeline(kafka, topic_prefix, sorted(feeds), keys) as observer:
        for hospital, messages in feeds.items():
            await publish_messages(kafka, topics.feed(hospital), messages)
        view = await observer.wait_until_settled(published, timeout_s=120)

    # Every good record reached the curated topic exactly once.
    good_clinical = {c["record_id"] for c in view.clinical}
    assert len(view.clinical) == len(good_clinical) == 2 + 2 + 1 + 2  # F-1, F-2, C-1, G-1
    assert len(view.curated) == len(good_clinical)
    assert len({c["curated_id"] for c in view.curated}) == len(view.curated)
    assert view.audit_actions()["ingest.duplicate"] == 1

    # Person 0 at H001 (FHIR, 2 records) and H002 (CSV, 1); person 1 at H001 and H003 (2 + 2).
    [person0] = {c["pseudonym"] for c in view.curated if c["hospital"] == "H002"}
    [person1] = {c["pseudonym"] for c in view.curated if c["hospital"] == "H003"}
    assert person0 != person1
    assert sum(c["pseudonym"] == person0 for c in view.curated) == 3
    assert sum(c["pseudonym"] == person1 for c in view.curated) == 4
    assert view.persons() == 2

    # Every bad message is dead-lettered with its reason and its original bytes.
    # Operators read dead letters without the originals; the dead-letter key recovers them.
    sealer = Sealer(keys.dead_letter.encode())
    assert {d["original"] for d in view.dead_letters} == {b""}
    assert {
        sealer.unseal(d["sealed_original"], d["dead_letter_id"]) for d in view.dead_letters
    } == bad
    assert {d["seal_key_id"] for d in view.dead_letters} == {sealer.key_id}
    reasons = {d["reason_code"] for d in view.dead_letters}
    assert reasons == {
        "FHIR_INVALID_JSON",
        "FHIR_PATIENT_UNRESOLVED",  # an Observation naming no patient (D36)
        "CSV_COLUMN_COUNT",
        "PATIENT_NUMBER_MISSING",  # since D36 the one identity field whose absence refuses
    }

    # No name, registration number, phone, address or patient number in any curated record.
    curated_text = b"\n".join(view.raw_curated).decode("utf-8", "replace") + json.dumps(
        view.curated, default=str, ensure_ascii=False
    )
    for mrn, name, _family, given, rrn, phone, address, _postal in PEOPLE:
        for canary in (
            name,
            given,
            rrn,
            rrn.replace("-", ""),
            phone,
            phone.replace("-", ""),
            address,
            mrn,
        ):
            assert canary not in curated_text, f"canary leaked into curated topic: {canary[:2]}..."
    assert not re.search(r"\d{6}-?[1-8]\d{6}", curated_text)
    operator_view = json.dumps(view.dead_letters, default=str, ensure_ascii=False)
    for _mrn, name, _family, _given, rrn, phone, address, _postal in PEOPLE:
        for canary in (name, rrn, phone, address):
            assert canary not in operator_view

    # The ledger holds every audit event once, and its chain verifies.
    assert len(view.ledger) == view.audit_messages
    assert len({e["event_id"] for e in view.ledger}) == len(view.ledger)
    assert verify(view.ledger).ok  # type: ignore[arg-type]


async def test_operators_read_dead_letters_without_personal_data_and_stewards_unseal_audited(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    """D35: the listing (operator) shows no original; `review unseal-dead-letter` (steward, with
    the key) shows one only after its audit event is on the steward's audit topic, an event
    holding no original and no personal data; without the right to write that event (the
    operator's credentials) it shows nothing and exits 4."""
    topics = Topics(topic_prefix)
    keys = Keys.fresh()
    # No identifier names the hospital's patient number: no usable identity (D36).
    bad = (
        fhir_bundle("F-9", PEOPLE[0], "http://h001.example.kr/patient-id")
        .replace(b'"MR"', b'"XX"')
        .replace(b"/patient-id", b"/visit-id")
    )
    async with running_pipeline(kafka, topic_prefix, ["H001"], keys) as observer:
        await publish_messages(
            kafka, topics.feed("H001"), [FeedMessage(b"F-9", bad, "application/fhir+json")]
        )
        view = await observer.wait_until_settled(1, timeout_s=120)
    assert [d["reason_code"] for d in view.dead_letters] == ["PATIENT_NUMBER_MISSING"]

    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    roles = {role: principals[role] for role in ("operator", "steward")}
    credentials = await asyncio.to_thread(access.apply, kafka, roles)
    await access.wait_until_usable(credentials)
    key_file = tmp_path / "dead_letter.key"
    key_file.write_text(keys.dead_letter)

    def run(role: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            **access.kafka_environment(credentials.settings(role)),
            "BIOSTREAM_TOPIC_PREFIX": topic_prefix,
            "BIOSTREAM_DEAD_LETTER_KEY_FILE": str(key_file),
        }
        return subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=180,
        )  # fmt: skip

    listed = run("operator", "biostream_harness", "dead-letters")
    assert listed.returncode == 0, listed.stderr
    [as_operator] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert as_operator["reason_code"] == "PATIENT_NUMBER_MISSING" and as_operator["sealed"] is True
    assert not {"original", "original_base64"} & set(as_operator)
    mrn, name, _family, given, rrn, phone, address, _postal = PEOPLE[0]
    canaries = (name, given, rrn, phone, address, mrn)
    for canary in canaries:
        assert canary not in json.dumps(as_operator, ensure_ascii=False)
    letter_id = str(as_operator["dead_letter_id"])
    steward_audit = topics.audit_events_of("steward")

    # Fails closed: credentials that may not write the steward's audit event see nothing.
    refused = run("operator", "review", "unseal-dead-letter", letter_id, "--case", "INC-7")
    assert refused.returncode == 4, refused.stderr
    assert refused.stdout == "" and "nothing is shown" in refused.stderr
    # A request without a usable case reference is refused before anything is read.
    unusable = run("steward", "review", "unseal-dead-letter", letter_id, "--case", "two words")
    assert (unusable.returncode, unusable.stdout) == (2, "")

    shown = run("steward", "review", "unseal-dead-letter", letter_id, "--case", "INC-7")
    assert shown.returncode == 0, shown.stderr
    as_steward = json.loads(shown.stdout)
    assert as_steward["original"] == bad.decode()
    # One event: the refused request wrote none.
    [event] = await read_all(
        kafka, default_codec(), steward_audit, AUDIT_EVENT, lambda es: len(es) >= 1
    )
    assert event["event_id"] == as_steward["audit_event_id"]
    assert event["action"] == "review.dead_letter_unsealed"
    assert event["principal"] == f"User:{topic_prefix}steward"
    assert (event["inputs"], event["purpose"], event["hospital"]) == ([letter_id], "INC-7", "H001")
    text = json.dumps(event, default=str, ensure_ascii=False)
    for canary in canaries:
        assert canary not in text
