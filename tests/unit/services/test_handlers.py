"""Ingest, linkage and audit handlers, driven with in-memory state: no Kafka, no clock.
The pseudonymizer's are in tests/unit/pseudonymizer/."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from audit.domain.chain import verify
from audit.domain.checkpoint import Signer
from audit.domain.ledger import CheckpointPolicy
from audit.domain.rotation import Keyring
from audit.handlers import AuditMetrics, LedgerAppendHandler
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    DEAD_LETTER,
    IDENTITY_RECORD,
    LEDGER_ENTRY,
)
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ingest.handlers import FeedMessageHandler, IngestMetrics
from prometheus_client import CollectorRegistry

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
RRN = "9710131019901"


def envelopes(service: str) -> Envelopes:
    return Envelopes(service, f"User:{TOPICS.prefix}svc-{service}", CODEC, TOPICS)


def inbound(
    topic: str, value: bytes, offset: int = 0, headers: tuple[tuple[str, bytes], ...] = ()
) -> Inbound:
    return Inbound(topic, 0, offset, None, value, headers, int(NOW.timestamp() * 1000))


def on_topic(out: list[Outbound], topic: str) -> list[Outbound]:
    return [o for o in out if o.topic == topic]


def bundle(message_id: str, mrn: str = "00012345") -> bytes:
    return json.dumps(
        {
            "resourceType": "Bundle",
            "id": message_id,
            "type": "collection",
            "entry": [
                {
                    "fullUrl": "urn:uuid:p1",
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [
                            {
                                "type": {"coding": [{"code": "MR"}]},
                                "system": "http://h001.example.kr/patient-id",
                                "value": mrn,
                            },
                            {
                                "system": "http://www.hl7korea.or.kr/Identifier/rrn",
                                "value": "971013-1019901",
                            },
                        ],
                        "name": [{"text": "홍길동", "family": "홍", "given": ["길동"]}],
                        "gender": "male",
                        "birthDate": "1997-10-13",
                        "telecom": [{"system": "phone", "value": "010-1234-5678"}],
                        "address": [
                            {"text": "서울특별시 종로구 세종대로 209", "postalCode": "03154"}
                        ],
                    },
                },
                {
                    "resource": {
                        "resourceType": "Condition",
                        "subject": {"reference": "urn:uuid:p1"},
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
                        "resourceType": "Specimen",
                        "subject": {"reference": "urn:uuid:p1"},
                        "identifier": [{"value": "BIOBANK-778"}],
                        "type": {"coding": [{"code": "BLD"}]},
                    }
                },
            ],
        }
    ).encode()


@pytest.fixture
def ingest() -> FeedMessageHandler:
    return FeedMessageHandler(
        CODEC, TOPICS, envelopes("ingest"), b"k" * 32, IngestMetrics.create(CollectorRegistry())
    )


def test_ingest_splits_identity_from_clinical_content(ingest: FeedMessageHandler) -> None:
    out = ingest(inbound(TOPICS.feed("H001"), bundle("M1")), StateStore(), NOW)
    [identity_out] = on_topic(out, TOPICS.identity_records)
    clinical_out = on_topic(out, TOPICS.clinical_records)
    identity = CODEC.decode(identity_out.value, IDENTITY_RECORD)
    assert identity["rrn"] == RRN
    assert identity["phone"] == "01012345678"
    assert identity["province_code"] == "11"
    assert [CODEC.decode(c.value, CLINICAL_RECORD)["resource_type"] for c in clinical_out] == [
        "Condition",
        "Specimen",
    ]
    for item in clinical_out:
        body = item.value or b""
        for secret in ("홍길동".encode(), b"9710131019901", b"01012345678", b"00012345"):
            assert secret not in body
    assert all(o.key == identity_out.key for o in clinical_out), (
        "identity and clinical share the patient_ref key"
    )
    [audit] = on_topic(out, TOPICS.audit_events_of("svc-ingest"))
    event = CODEC.decode(audit.value, AUDIT_EVENT)
    assert event["action"] == "ingest.accepted"
    assert event["outputs"] == ["H001/M1/0", "H001/M1/1", "H001/M1/2"]


def test_ingest_recognises_a_resent_message(ingest: FeedMessageHandler) -> None:
    state = StateStore()
    first = ingest(inbound(TOPICS.feed("H001"), bundle("M1")), state, NOW)
    second = ingest(inbound(TOPICS.feed("H001"), bundle("M1"), offset=1), state, NOW)
    assert on_topic(first, TOPICS.identity_records)
    assert on_topic(second, TOPICS.identity_records) == []
    assert CODEC.decode(second[0].value, AUDIT_EVENT)["action"] == "ingest.duplicate"


def test_ingest_dead_letters_bad_input_with_original_bytes(ingest: FeedMessageHandler) -> None:
    raw = b'{"resourceType": "Bundle", "id": "X", "entry": [' + "홍길동".encode()
    out = ingest(inbound(TOPICS.feed("H002"), raw, offset=7), StateStore(), NOW)
    [dead] = on_topic(out, TOPICS.dead_letters)
    letter = CODEC.decode(dead.value, DEAD_LETTER)
    assert letter["reason_code"] == "FHIR_INVALID_JSON"
    assert letter["original"] == raw
    assert (letter["source_topic"], letter["source_offset"], letter["hospital"]) == (
        TOPICS.feed("H002"),
        7,
        "H002",
    )
    assert "홍길동" not in letter["message"]


def audit_handler() -> LedgerAppendHandler:
    return LedgerAppendHandler(
        CODEC,
        TOPICS,
        envelopes("audit"),
        AuditMetrics.create(CollectorRegistry()),
        Keyring({"k1": Signer(Ed25519PrivateKey.generate())}),
        CheckpointPolicy(every_entries=1000, every_seconds=3600),
    )


def test_audit_chains_events_and_survives_a_state_restore() -> None:
    handler = audit_handler()
    source = envelopes("ingest")
    state = StateStore()
    entries = []
    for n in range(5):
        event = source.audit("ingest.accepted", [f"in/{n}"], [f"out/{n}"], NOW)
        if n == 3:  # a restart: the state comes back from its changelog
            restored = StateStore()
            for key, value in state.drain_changes().items():
                restored.restore(key, value)
            state = restored
        [out] = handler(
            inbound(TOPICS.audit_events_of("svc-ingest"), event.value or b"", n), state, NOW
        )
        entries.append(CODEC.decode(out.value, LEDGER_ENTRY))
    assert [e["sequence"] for e in entries] == [0, 1, 2, 3, 4]
    assert verify(entries).ok


def test_audit_dead_letters_an_unreadable_event_and_keeps_the_chain() -> None:
    handler = audit_handler()
    state = StateStore()
    [out] = handler(inbound(TOPICS.audit_events_of("svc-ingest"), b"garbage"), state, NOW)
    assert out.topic == TOPICS.dead_letters
    assert state.get("ledger") is None
