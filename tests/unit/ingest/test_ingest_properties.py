"""Property tests: every parser, fed arbitrary and mutated input, ends in a record or a rejection.

10,500 generated cases in all (the ``max_examples`` below add up to it). A parser may only return
a ``ParsedMessage`` or raise ``Rejected``; any other exception is a failure. The handler-level
property also checks that every message yields exactly one audit event and decodable records.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import AUDIT_EVENT
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest.domain.csv_feed import DEFAULT_COLUMNS, CsvMapping, parse_csv
from ingest.domain.fhir import parse_fhir
from ingest.domain.hl7v2 import parse_hl7v2, split_hl7_stream
from ingest.domain.model import ParsedMessage, Rejected
from ingest.handlers import FeedMessageHandler, IngestMetrics
from prometheus_client import CollectorRegistry

from .conftest import mutated

RECEIVED = dt.date(2026, 3, 4)


def cases(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


HL7_SEEDS = [
    (
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260301093000||ADT^A01^ADT_A01|MSG0001|P|2.5\r"
        "PID|1||00012345^^^H001^MR~971013-1019901^^^KOR^NNKOR||홍^길동~Hong^Gildong||19971013|M|||"
        "세종대로 110\\F\\3층^^중구^서울특별시^04524||010-1234-5678\r"
        "PV1|1|I|W1^101\rDG1|1||E11.9^^KCD-9||20260301\r"
    ).encode(),
    (
        "MSH|^~\\&|LIS|H001|BIOSTREAM|NBB|20260302101500||ORU^R01|LAB-77|P|2.5.1\r"
        "PID|1||00012345^^^H001^MR||김^서연||19850321|F\r"
        "OBR|1|ORD-1|FIL-1|4548-4^HbA1c^LN|||20260302080000\r"
        "OBX|1|NM|4548-4^HbA1c^LN||7.1|%|||||F|||20260302\r"
        "OBX|2|SN|2345-7^Glucose^LN||>^180|mg/dL\r"
        "SPM|1|BB-1&BIOBANK^SEQ-9||BLD\r"
    ).encode(),
    (
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260301093000||ADT^A40|MRG-1|P|2.5\r"
        "PID|1||00012345^^^H001^MR||홍^길동\rMRG|00099999^^^H001^MR\r"
    ).encode(),
]
FHIR_SEEDS = [
    json.dumps(
        {
            "resourceType": "Bundle",
            "id": "b-1",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [
                            {"type": {"coding": [{"code": "MR"}]}, "value": "M-1"},
                            {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": "971013-1019901"},
                        ],
                        "name": [{"text": "홍길동"}],
                        "gender": "male",
                        "birthDate": "1997-10-13",
                        "telecom": [{"system": "phone", "value": "010-1234-5678"}],
                        "address": [{"text": "서울특별시 종로구 세종대로 209", "postalCode": "03154"}],
                        "link": [{"type": "replaces", "other": {"identifier": {"value": "M-0"}}}],
                    }
                },
                {
                    "resource": {
                        "resourceType": "Condition",
                        "code": {"coding": [{"system": "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-9", "code": "E11.9"}]},
                        "recordedDate": "2026-02-01",
                    }
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                        "valueQuantity": {"value": 7.1, "unit": "%"},
                        "effectiveDateTime": "2026-02-01T10:00:00+09:00",
                    }
                },
                {"resource": {"resourceType": "Specimen", "identifier": [{"value": "BB-1"}]}},
            ],
        },
        ensure_ascii=False,
    ).encode(),
]  # fmt: skip
CSV_SEEDS = [
    (
        ",".join(DEFAULT_COLUMNS)
        + "\nC-1,M-1,김,민준,1990-01-01,M,900101-1234568,010-1234-5678,"
        + '"서울특별시 종로구 세종대로 209, 3층",03154,2026-02-01,E11.9,,4548-4,6.4,%\n'
    ).encode()
]


def ends_in_record_or_rejection(parse: Callable[[bytes], ParsedMessage], raw: bytes) -> None:
    try:
        result = parse(raw)
    except Rejected as rejected:
        assert rejected.reason_code and rejected.reason_code.upper() == rejected.reason_code
        return
    assert isinstance(result, ParsedMessage)
    assert result.message_id
    assert result.identity is not None or result.merges


def hl7(raw: bytes) -> ParsedMessage:
    return parse_hl7v2(raw, None, RECEIVED)


def fhir(raw: bytes) -> ParsedMessage:
    return parse_fhir(raw, None, RECEIVED)


def csv(raw: bytes) -> ParsedMessage:
    return parse_csv(raw, RECEIVED)


# Separators and neighbours of all three formats, for replaced and inserted bytes.
ALPHABET = b'|^~\\&\r\n{}[]":,0123456789-.TAZ \x00\xff\xea'


# HL7 v2: 4,000 cases.
@cases(1500)
@given(st.binary(max_size=400))
def test_hl7_arbitrary_bytes(raw: bytes) -> None:
    ends_in_record_or_rejection(hl7, raw)
    for message in split_hl7_stream(raw):
        ends_in_record_or_rejection(hl7, message)


@cases(1500)
@given(mutated(HL7_SEEDS, ALPHABET))
def test_hl7_mutated_messages(raw: bytes) -> None:
    ends_in_record_or_rejection(hl7, raw)


SEGMENT_NAMES = st.sampled_from(["PID", "PV1", "DG1", "OBR", "OBX", "SPM", "MRG", "EVN", "ZZZ"])
FIELD_TEXT = st.text(alphabet="|^~\\&ABCDEFXHR.0123456789 가나홍-", max_size=30)


@cases(1000)
@given(
    st.sampled_from(["ADT^A01", "ADT^A04", "ADT^A08", "ADT^A28", "ADT^A31", "ADT^A40", "ORU^R01"]),
    st.lists(st.tuples(SEGMENT_NAMES, st.lists(FIELD_TEXT, max_size=25)), max_size=8),
)
def test_hl7_structured_random_segments(
    message_type: str, segments: list[tuple[str, list[str]]]
) -> None:
    lines = [f"MSH|^~\\&|A|B|C|D|20260301||{message_type}|ID-1|P|2.5"]
    lines += ["|".join([name, *fields]) for name, fields in segments]
    ends_in_record_or_rejection(hl7, "\r".join(lines).encode())


# FHIR: 3,000 cases.
@cases(1000)
@given(st.binary(max_size=400))
def test_fhir_arbitrary_bytes(raw: bytes) -> None:
    ends_in_record_or_rejection(fhir, raw)


@cases(1000)
@given(mutated(FHIR_SEEDS, ALPHABET))
def test_fhir_mutated_documents(raw: bytes) -> None:
    ends_in_record_or_rejection(fhir, raw)


KEYS = st.sampled_from(
    ["resourceType", "id", "entry", "resource", "identifier", "value", "system", "type", "coding",
     "code", "name", "text", "family", "given", "birthDate", "gender", "telecom", "address",
     "postalCode", "valueQuantity", "recordedDate", "effectiveDateTime", "link", "other", "period",
     "start", "collection", "line", "version"]
)  # fmt: skip
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "Bundle",
            "Patient",
            "Condition",
            "Observation",
            "Specimen",
            "MR",
            "replaces",
            "1997-10-13",
            "2026-13-40",
            "971013-1019901",
            "male",
            "",
        ]
    )
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=12,
)


@cases(1000)
@given(st.dictionaries(KEYS, JSON_VALUES, max_size=8), st.sampled_from(["Bundle", "Patient", None]))
def test_fhir_structured_random_documents(document: dict[str, Any], kind: str | None) -> None:
    if kind is not None:
        document["resourceType"] = kind
    ends_in_record_or_rejection(fhir, json.dumps(document).encode())


# CSV: 3,000 cases.
@cases(1000)
@given(st.binary(max_size=400))
def test_csv_arbitrary_bytes(raw: bytes) -> None:
    ends_in_record_or_rejection(csv, raw)


@cases(1000)
@given(mutated(CSV_SEEDS, ALPHABET))
def test_csv_mutated_rows(raw: bytes) -> None:
    ends_in_record_or_rejection(csv, raw)


@cases(1000)
@given(
    st.lists(st.text(alphabet='0123456789-./가나 ,"abcMF', max_size=14), min_size=16, max_size=16),
    st.sampled_from(["%Y-%m-%d", "%Y%m%d", "%d/%m/%Y"]),
)
def test_csv_random_cells_with_a_mapping(cells: list[str], date_format: str) -> None:
    mapping = CsvMapping("random", {"birth_date": "dob"}, date_format)
    header = [mapping.column(c) for c in DEFAULT_COLUMNS]
    row = ['"' + c.replace('"', '""') + '"' for c in cells]
    raw = (",".join(header) + "\n" + ",".join(row) + "\n").encode()
    ends_in_record_or_rejection(lambda r: parse_csv(r, RECEIVED, mapping), raw)


# The handler: 500 cases of any bytes under any content type.
TOPICS = Topics("p.")
CODEC = AvroCodec(SchemaRegistry())


@cases(500)
@given(
    st.one_of(st.binary(max_size=300), mutated(HL7_SEEDS + FHIR_SEEDS + CSV_SEEDS, ALPHABET)),
    st.sampled_from(
        [None, b"text/csv", b"application/fhir+json", b"x-application/hl7-v2+er7", b"a/b"]
    ),
    st.one_of(st.none(), st.binary(max_size=20)),
)
def test_handler_turns_any_message_into_records_or_a_dead_letter(
    raw: bytes, content_type: bytes | None, key: bytes | None
) -> None:
    handler = FeedMessageHandler(
        CODEC, TOPICS, Envelopes("ingest", "User:t", CODEC, TOPICS), b"k" * 32,
        IngestMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    headers = (("content-type", content_type),) if content_type is not None else ()
    message = Inbound(TOPICS.feed("H001"), 0, 7, key, raw, headers, 0)
    out = handler(message, StateStore(), dt.datetime(2026, 3, 4, tzinfo=dt.UTC))
    audits = [
        CODEC.decode(o.value, AUDIT_EVENT) for o in out if o.topic == TOPICS.audit_events_of("t")
    ]
    assert len(audits) == 1
    if audits[0]["action"] == "ingest.rejected":
        assert [o.topic for o in out] == [TOPICS.dead_letters, TOPICS.audit_events_of("t")]
    else:
        assert audits[0]["action"] == "ingest.accepted"
        assert len(out) >= 2
