"""District generalisation end to end through the handlers (D24a, D24b): ingest reads a hospital's
address, linkage derives its 시군구 code, and a dataset whose policy asks for ``address:
"district"`` receives that code (not null), while a ``province`` dataset still gets the province."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import CURATED_RECORD
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.handlers import FeedMessageHandler, IngestMetrics
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry
from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.domain.release import Keyed
from pseudonymizer.handlers import PseudonymizerHandler, PseudonymizerMetrics

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("d.")
CODEC = AvroCodec(SchemaRegistry())


def release_policy(dataset: str, address: str) -> ReleasePolicy:
    return ReleasePolicy.model_validate(
        {
            "dataset": dataset, "version": "1", "approval_ref": "DRB-1", "purpose": "test",
            "pseudonym_domain": dataset, "key_version": "k1", "record_types": ["Condition"],
            "fields": ["event_date", "code_system", "code"],
            "generalisation": {"birth": "year", "address": address},
        }
    )  # fmt: skip


def bundle(message_id: str, mrn: str, address: dict[str, Any]) -> bytes:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}],
        "name": [{"text": "홍길동", "family": "홍", "given": ["길동"]}],
        "gender": "male", "birthDate": "1997-10-13", "address": [address],
    }  # fmt: skip
    condition = {
        "resourceType": "Condition", "recordedDate": "2026-02-01",
        "code": {"coding": [{"system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9",
                             "code": "E11.9"}]},
    }  # fmt: skip
    document = {
        "resourceType": "Bundle", "id": message_id, "type": "collection",
        "entry": [{"resource": patient}, {"resource": condition}],
    }  # fmt: skip
    return json.dumps(document, ensure_ascii=False).encode()


def run(address: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One message through the three handlers; the curated record per dataset."""
    envelopes = {s: Envelopes(s, f"User:svc-{s}", CODEC, TOPICS) for s in ("i", "l", "p")}
    ingest = FeedMessageHandler(
        CODEC, TOPICS, envelopes["i"], b"k" * 32, IngestMetrics.create(CollectorRegistry())
    )
    linkage = LinkageHandler(
        CODEC, TOPICS, envelopes["l"], b"p" * 32, default_params(),
        LinkageMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    releases = [
        Keyed(release_policy("by-district", "district"), b"a" * 32),
        Keyed(release_policy("by-province", "province"), b"b" * 32),
    ]
    pseudonymizer = PseudonymizerHandler(
        CODEC, TOPICS, envelopes["p"], releases, PseudonymizerMetrics.create(CollectorRegistry())
    )

    def feed(handler: Any, outs: list[Outbound], topic: str) -> list[Outbound]:
        result: list[Outbound] = []
        state = StateStore()
        for n, o in enumerate(o for o in outs if o.topic == topic):
            result += handler(Inbound(topic, 0, n, o.key, o.value, (), 0), state, NOW)
        return result

    raw = [Outbound(TOPICS.feed("H001"), bundle("M1", "001", address), key=b"001")]
    ingested = feed(ingest, raw, TOPICS.feed("H001"))
    decided = feed(linkage, ingested, TOPICS.identity_records)
    # The pseudonymizer reads both topics in one state; decisions first here.
    state, out = StateStore(), []
    inputs = [o for o in decided if o.topic == TOPICS.link_decisions] + [
        o for o in ingested if o.topic == TOPICS.clinical_records
    ]
    for n, o in enumerate(inputs):
        out += pseudonymizer(Inbound(o.topic, 0, n, o.key, o.value, (), 0), state, NOW)
    curated = {}
    for dataset in ("by-district", "by-province"):
        [record] = [
            CODEC.decode(o.value, CURATED_RECORD) for o in out if o.topic == TOPICS.curated(dataset)
        ]
        curated[dataset] = record
    return curated


@pytest.mark.parametrize(
    ("address", "district"),
    [
        ({"text": "경기 수원시 영통구 광교로 152, 101동 1203호", "postalCode": "16514"}, "41117"),
        ({"text": "서울특별시 종로구 세종대로 209", "postalCode": "03154"}, "11110"),
        # 중구 exists in six cities: the province ingest reads from the postal code decides.
        ({"text": "중구 동성로 1", "postalCode": "41911"}, "27110"),
        # No text: ingest joins state, city, district and lines.
        (
            {"state": "강원도", "city": "춘천시", "line": ["중앙로 1"], "postalCode": "24266"},
            "51110",
        ),
    ],
)
def test_a_district_policy_releases_the_district_code(
    address: dict[str, Any], district: str
) -> None:
    curated = run(address)
    assert curated["by-district"]["district_code"] == district
    assert curated["by-district"]["province_code"] is None
    assert curated["by-province"]["district_code"] is None
    assert curated["by-province"]["province_code"] == district[:2]


def test_an_unknown_district_releases_the_province_instead() -> None:
    # A romanised address: no 시군구 of the table; the postal code still gives the province.
    curated = run({"text": "209 Sejong-daero, Jongno-gu, Seoul", "postalCode": "03154"})
    assert curated["by-district"]["district_code"] is None
    assert curated["by-district"]["province_code"] == "11"
