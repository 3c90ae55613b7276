"""Ingest removes the patient's own identifiers from the clinical record's free text (D24c)."""

from __future__ import annotations

import datetime as dt

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import CLINICAL_RECORD, IDENTITY_RECORD
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.domain.identity import validate_identity
from ingest.domain.model import RawIdentity
from ingest.domain.own_identifiers import own_identifiers, scrub_own_identifiers
from ingest.handlers import FeedMessageHandler, IngestMetrics
from prometheus_client import CollectorRegistry

RECEIVED = dt.date(2026, 3, 5)

HONG = RawIdentity(
    local_patient_no="H-778812", family_name="홍", given_name="길동", name_latin="HONG GILDONG",
    birth_date="1997-10-13", sex="M", rrn="971013-1019901", phone="010-3141-5926",
    address="경기도 수원시 영통구 광교로 152, 101동 1203호", postal_code="16514",
)  # fmt: skip
NAMGUNG = RawIdentity(
    local_patient_no="00071234", full_name="남궁민수", name_latin="Min-su Namgung",
    birth_date="1985-03-21", sex="M", phone="+82 2-123-4567",
    address="서울특별시 종로구 사직로8길 4", postal_code="03169",
)  # fmt: skip
LEE = RawIdentity(
    local_patient_no="9001", family_name="이", given_name="현", birth_date="1950-01-02", sex="F"
)
# A foreign resident known by a Latin name only; the registration number's date is impossible,
# so validation drops it, but it is still in the source and still removed.
FOREIGN = RawIdentity(
    local_patient_no="F-0042", name_latin="NGUYEN, THI HOA", birth_date="1990-05-02", sex="F",
    rrn="901302-6123456", phone="010 2222 3333",
)  # fmt: skip

CANARIES = [
    (HONG, "홍길동 환자 내원, HbA1c 7.1%", ["홍길동"]),
    (HONG, "환자 홍 길동, 보호자 홍씨 동행", ["홍 길동", "홍씨"]),
    (HONG, "길동이가 어지럼 호소, 길동님께 설명함. 길동 본인 동의", ["길동"]),
    (HONG, "HONG, GIL DONG seen; Gil-dong Hong again; Hong Gildong; hong gil-dong", ["ong", "il"]),
    (HONG, "Gildong reports dizziness; Mr. Hong to return", ["Gildong", "Hong"]),
    (HONG, "RRN 971013-1019901 / 9710131019901 / 971013 1019901, 뒷자리 1019901",
     ["971013", "1019901"]),
    (HONG, "연락처 010-3141-5926, 01031415926, +82 10 3141 5926, (010)3141.5926, 3141-5926",
     ["3141", "5926"]),
    (HONG, "+82 (0)10-3141-5926 로 연락", ["3141", "5926"]),
    (HONG, "MRN H-778812, H778812, 778812", ["778812"]),
    (HONG, "생년월일 1997-10-13 (97.10.13, 19971013, 1997년 10월 13일)", ["1997", "97.10", "10월"]),
    (HONG, "주소 경기도 수원시 영통구 광교로 152, 101동 1203호 (광교로152)", ["광교로", "1203호"]),
    (HONG, "경기 수원시 영통구 광교로 152 거주", ["광교로", "수원시"]),
    (HONG, "mail gildong.hong@example.kr", ["gildong.hong", "example.kr"]),
    (NAMGUNG, "남궁민수 님 내원, 남궁 민수 본인", ["남궁민수", "남궁 민수"]),
    (NAMGUNG, "Min-su Namgung; NAMGUNG MINSU; Minsu Namgung", ["Min", "amgung", "AMGUNG"]),
    (NAMGUNG, "자택 02-123-4567, 등록번호 00071234, 서울 종로구 사직로8길 4", ["123", "4567", "71234", "사직로"]),
    (LEE, "이현 님 내원, 이 현 본인, 이현은 귀가", ["이현", "이 현"]),
    (FOREIGN, "NGUYEN THI HOA 내원, Thi Hoa Nguyen, Ms. Nguyen", ["NGUYEN", "Nguyen", "HOA", "Hoa"]),
    (FOREIGN, "등록증 901302-6123456, phone 010-2222-3333, patient F-0042", ["901302", "6123456", "2222", "3333", "0042"]),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "note", "canaries"), CANARIES)
def test_the_patients_own_identifiers_leave_the_note(
    raw: RawIdentity, note: str, canaries: list[str]
) -> None:
    identity = validate_identity(raw, RECEIVED)
    scrubbed = scrub_own_identifiers(note, own_identifiers(identity))
    for canary in canaries:
        assert canary not in scrubbed, (canary, scrubbed)


def test_placeholders_are_typed_and_the_rest_stays() -> None:
    identity = validate_identity(HONG, RECEIVED)
    note = "홍길동 환자 HbA1c 7.1% (010-3141-5926), H-778812, 광교로 152 거주"
    assert scrub_own_identifiers(note, own_identifiers(identity)) == (
        "[NAME] 환자 HbA1c 7.1% ([PHONE]), [PATIENT_NO], [ADDRESS] 거주"
    )


def test_the_messages_specimen_numbers_leave_the_note() -> None:
    identity = validate_identity(HONG, RECEIVED)
    own = own_identifiers(identity, ["SPC-2026-0001", "BIOBANK-778"])
    scrubbed = scrub_own_identifiers("specimen SPC-2026-0001 (BIOBANK-778) 채취", own)
    assert scrubbed == "specimen [SPECIMEN_ID] ([SPECIMEN_ID]) 채취"


@pytest.mark.parametrize(
    "note",
    [
        "HbA1c 7.1% 정상 범위 내, 공복혈당 126 mg/dL",
        "metformin 500 mg bid, amlodipine 5mg qd, insulin glargine 10 units",
        "길동역 근처 약국 방문 후 민길동 씨와 통화",  # another 길동: not the patient's name as a word
        "eGFR 60 mL/min/1.73m2, BP 130/80 mmHg, 2026-03-01 재검",
        "Hongkong trip; Gildongs are fine; Mr. Hongo",  # Latin forms only on word boundaries
        "광교로 1520 (another building), 영통구 보건소",
        "WBC 3141, Plt 5926 x10^3/uL",  # the phone's digits, but not a whole phone or subscriber
        "1997-10-14 (not the birthday), 19971012",
        "1203호 병실에서 1층 검사실로 이동",  # a room number like the flat's, without its 동
    ],
)
def test_clinical_content_survives(note: str) -> None:
    identity = validate_identity(HONG, RECEIVED)
    assert scrub_own_identifiers(note, own_identifiers(identity)) == note


def test_a_two_syllable_name_is_removed_only_as_a_word() -> None:
    own = own_identifiers(validate_identity(LEE, RECEIVED))
    assert scrub_own_identifiers("이 현상 관찰, 이현상 없음", own) == "이 현상 관찰, 이현상 없음"
    assert scrub_own_identifiers("이현 님 내원", own) == "[NAME] 님 내원"


# --- through the handler --------------------------------------------------------------------------

TOPICS = Topics("o.")
CODEC = AvroCodec(SchemaRegistry())
HL7 = (("content-type", b"x-application/hl7-v2+er7"),)
NOTE = (
    "홍길동 환자 HbA1c 7.1% 재검, metformin 500 mg 유지. HONG GILDONG 본인 010 3141 5926, "
    "RRN 9710131019901, MRN H-778812, 광교로 152 101동 1203호, specimen SPC-2026-0001"
)
ORU = (
    "MSH|^~\\&|LIS|H009|BIOSTREAM|NBB|20260301101500||ORU^R01|O-1|P|2.5.1\r"
    "PID|1||H-778812^^^H009^MR~971013-1019901^^^KOR^NNKOR||홍^길동~HONG^GILDONG||19971013|M|||"
    "광교로 152^101동 1203호^수원시 영통구^경기도^16514||010-3141-5926\r"
    "OBR|1|ORD-1|FIL-1|4548-4^HbA1c^LN|||20260301080000\r"
    "OBX|1|NM|4548-4^HbA1c^LN||7.1|%|||||F|||20260301\r"
    f"OBX|2|TX|8251-1^Nursing note^LN||{NOTE}||||||F|||20260301\r"
    "SPM|1|SPC-2026-0001^BIOBANK-778||BLD|||||||||||||20260301\r"
).encode()


def test_the_clinical_record_carries_the_note_without_the_patients_identifiers() -> None:
    handler = FeedMessageHandler(
        CODEC, TOPICS, Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS), b"k" * 32,
        IngestMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    out = handler(Inbound(TOPICS.feed("H009"), 0, 0, None, ORU, HL7, 0), StateStore(), NOW)
    clinical = [
        CODEC.decode(o.value, CLINICAL_RECORD) for o in out if o.topic == TOPICS.clinical_records
    ]
    [note] = [c["value_text"] for c in clinical if c["value_text"]]
    for canary in ("홍길동", "HONG", "GILDONG", "3141", "5926", "9710131019901", "778812",
                   "광교로", "1203호", "SPC-2026-0001"):  # fmt: skip
        assert canary not in note, (canary, note)
    for kept in ("HbA1c 7.1%", "metformin 500 mg", "재검"):
        assert kept in note
    # The identity record is the identity zone's: it keeps the values.
    [identity] = [
        CODEC.decode(o.value, IDENTITY_RECORD) for o in out if o.topic == TOPICS.identity_records
    ]
    assert (identity["family_name"], identity["given_name"]) == ("홍", "길동")
    assert identity["phone"] == "01031415926"


NOW = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
