"""Registration numbers cross the identity topic encrypted: ingest seals, linkage opens, and
nobody else (no key) can read them."""

from __future__ import annotations

import datetime as dt
import json
import secrets

from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import IDENTITY_RECORD, LINK_DECISION
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.sealing import Sealer, SealingKeys
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.handlers import FeedMessageHandler, IngestMetrics
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("r.")
CODEC = AvroCodec(SchemaRegistry())
RRN_KEY = secrets.token_hex(32).encode()


def bundle(message_id: str, mrn: str) -> bytes:
    return json.dumps(
        {"resourceType": "Bundle", "id": message_id, "type": "collection", "entry": [{"resource": {
            "resourceType": "Patient",
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "system": "http://h.example.kr/patient-id", "value": mrn},
                           {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": "971013-1019901"}],
            "name": [{"text": "홍길동", "family": "홍", "given": ["길동"]}], "gender": "male", "birthDate": "1997-10-13"}}]},
        ensure_ascii=False,
    ).encode()  # fmt: skip


def ingest_identity(message_id: str, mrn: str, hospital: str) -> bytes:
    handler = FeedMessageHandler(
        CODEC, TOPICS, Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS), b"k" * 32,
        IngestMetrics.create(CollectorRegistry()), rrn_sealer=SealingKeys.single(RRN_KEY),
    )  # fmt: skip
    out = handler(
        Inbound(TOPICS.feed(hospital), 0, 0, None, bundle(message_id, mrn), (), 0),
        StateStore(),
        NOW,
    )
    [identity] = [o for o in out if o.topic == TOPICS.identity_records]
    return identity.value or b""


def test_the_identity_topic_carries_the_number_sealed_not_in_clear() -> None:
    value = ingest_identity("M1", "001", "H001")
    for clear in (b"9710131019901", b"971013-1019901"):
        assert clear not in value
    record = CODEC.decode(value, IDENTITY_RECORD)
    assert record["rrn"] is None
    assert Sealer(RRN_KEY).unseal(record["rrn_sealed"], record["record_id"]) == b"9710131019901"
    assert record["rrn_key_id"] == Sealer(RRN_KEY).key_id


def test_linkage_opens_the_number_and_links_on_it() -> None:
    linkage = LinkageHandler(
        CODEC, TOPICS, Envelopes("linkage", "User:svc-linkage", CODEC, TOPICS), b"p" * 32,
        default_params(), LinkageMetrics.create(CollectorRegistry()), SealingKeys.single(RRN_KEY),
    )  # fmt: skip
    state = StateStore()
    decisions = []
    for offset, (message_id, mrn, hospital) in enumerate(
        [("M1", "001", "H001"), ("M2", "777", "H002")]
    ):
        inbound = Inbound(
            TOPICS.identity_records,
            0,
            offset,
            None,
            ingest_identity(message_id, mrn, hospital),
            (),
            0,
        )
        decisions += [
            CODEC.decode(o.value, LINK_DECISION)
            for o in linkage(inbound, state, NOW)
            if o.topic == TOPICS.link_decisions
        ]
    assert [d["rule"] for d in decisions][-1].startswith("rrn")
    assert decisions[0]["person_id"] == decisions[-1]["person_id"]
