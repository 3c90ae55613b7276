"""parse_hl7v2 and split_hl7_stream: HL7 v2 ER7 ADT and ORU messages."""

from __future__ import annotations

import datetime as dt

import pytest
from ingest.domain.codes import KCD_SYSTEM_PREFIX, LOINC_SYSTEM
from ingest.domain.files import split_feed
from ingest.domain.hl7v2 import parse_hl7v2, split_hl7_stream
from ingest.domain.messages import detect_format
from ingest.domain.model import Rejected

RECEIVED = dt.date(2026, 3, 4)


def er7(*segments: str) -> bytes:
    return "\r".join(segments).encode() + b"\r"


MSH_A01 = "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260301093000||ADT^A01^ADT_A01|MSG0001|P|2.5"
PID = (
    "PID|1||00012345^^^H001^MR~971013-1019901^^^KOR^NNKOR||홍^길동^^^^^L~Hong^Gildong^^^^^A||"
    "19971013|M|||세종대로 110^^중구^서울특별시^04524^KOR||010-1234-5678"
)
PV1 = "PV1|1|I|W1^101^1" + "|" * 41 + "20260301093000"
DG1 = "DG1|1||E11.9^Type 2 diabetes^KCD-9||20260301|A"


def rejection(raw: bytes) -> str:
    with pytest.raises(Rejected) as caught:
        parse_hl7v2(raw, None, RECEIVED)
    return caught.value.reason_code


def test_adt_a01_gives_identity_encounter_and_diagnosis() -> None:
    parsed = parse_hl7v2(er7(MSH_A01, "EVN|A01|20260301093000", PID, PV1, DG1), None, RECEIVED)
    assert parsed.message_id == "MSG0001"
    assert parsed.message_type == "ADT^A01"
    identity = parsed.identity
    assert identity is not None
    assert identity.local_patient_no == "00012345"
    assert identity.rrn == "9710131019901"
    assert (identity.family_name, identity.given_name) == ("홍", "길동")
    assert identity.name_latin == "Hong Gildong"  # the second PID-5 repetition
    assert identity.birth_date == dt.date(1997, 10, 13)
    assert identity.sex == "M"
    assert identity.phone == "01012345678"
    assert identity.address == "서울특별시 중구 세종대로 110"
    assert identity.postal_code == "04524"
    assert identity.province_code == "11"
    encounter, diagnosis = parsed.events
    assert (encounter.resource_type, encounter.code, encounter.event_date) == (
        "Encounter",
        "I",
        dt.date(2026, 3, 1),
    )
    assert diagnosis.resource_type == "Condition"
    assert (diagnosis.code_system, diagnosis.code, diagnosis.code_version) == (
        KCD_SYSTEM_PREFIX + "9",
        "E11.9",
        "9",
    )
    assert diagnosis.quality_flags == ()


@pytest.mark.parametrize("trigger", ["A04", "A08", "A28", "A31"])
def test_other_adt_triggers_register_or_update_the_patient(trigger: str) -> None:
    msh = MSH_A01.replace("ADT^A01^ADT_A01", f"ADT^{trigger}")
    parsed = parse_hl7v2(er7(msh, PID), None, RECEIVED)
    assert parsed.message_type == f"ADT^{trigger}"
    assert parsed.identity is not None and parsed.identity.local_patient_no == "00012345"
    assert parsed.events == ()  # missing optional segments are fine


def test_diagnosis_without_version_gets_it_inferred_and_flagged() -> None:
    parsed = parse_hl7v2(
        er7(MSH_A01, PID, "DG1|1||E119^^KCD||20251231", "DG1|2||I10||20260102"),
        None,
        RECEIVED,
    )
    first, second = parsed.events
    assert first.code_version == "8"  # 2025: KCD-8
    assert {"KCD_VERSION_INFERRED", "KCD_CODE_WITHOUT_DOT"} <= set(first.quality_flags)
    assert second.code_version == "9"  # no coding system at all: KCD assumed, 2026: KCD-9
    assert {"KCD_SYSTEM_ASSUMED", "KCD_VERSION_INFERRED"} <= set(second.quality_flags)


def test_oru_r01_gives_observations_with_specimen_references() -> None:
    raw = er7(
        "MSH|^~\\&|LIS|H001|BIOSTREAM|NBB|20260302101500||ORU^R01^ORU_R01|LAB-77|P|2.5.1",
        PID,
        "OBR|1|ORD-1|FIL-1|4548-4^HbA1c^LN|||20260302080000",
        "OBX|1|NM|4548-4^HbA1c^LN||7.1|%^percent^UCUM|4.0-6.0|H|||F",
        "OBX|2|SN|2345-7^Glucose^LN||>^180|mg/dL|||||F|||20260302083000",
        "OBX|3|ST|8251-1^Note^LN||hemolysed sample||||||F",
        "SPM|1|BB-0001&BIOBANK&1.2.410&ISO^SEQ-RUN-9||BLD^Whole blood^HL70487",
        "OBX|4|NM|718-7^Hemoglobin^LN||abc|g/dL|||||F",
    )
    parsed = parse_hl7v2(raw, None, RECEIVED)
    assert parsed.message_type == "ORU^R01"
    kinds = [e.resource_type for e in parsed.events]
    assert kinds == ["Observation", "Observation", "Observation", "Specimen", "Observation"]
    hba1c, glucose, note, specimen, hemoglobin = parsed.events
    assert (hba1c.code_system, hba1c.code, hba1c.value_number, hba1c.value_unit) == (
        LOINC_SYSTEM,
        "4548-4",
        7.1,
        "%",
    )
    assert hba1c.event_date == dt.date(2026, 3, 2)  # OBR-7 when OBX-14 is absent
    assert hba1c.specimen_refs == ("FIL-1",)
    assert glucose.value_number == 180.0
    assert note.value_text == "hemolysed sample"
    assert specimen.specimen_refs == ("BB-0001", "SEQ-RUN-9")
    assert specimen.code == "BLD"
    assert hemoglobin.value_number is None
    assert hemoglobin.specimen_refs == ("BB-0001", "SEQ-RUN-9")
    assert "OBSERVATION_VALUE_NOT_NUMERIC" in hemoglobin.quality_flags


def test_a40_merge_names_surviving_and_retired_patient_numbers() -> None:
    raw = er7(
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260301093000||ADT^A40^ADT_A39|MRG-1|P|2.5",
        "EVN|A40|20260301093000",
        "PID|1||00012345^^^H001^MR||홍^길동",
        "MRG|00099999^^^H001^MR",
    )
    parsed = parse_hl7v2(raw, None, RECEIVED)
    assert parsed.message_type == "ADT^A40"
    assert parsed.merges == (("00012345", "00099999"),)
    assert parsed.identity is None  # name only: too little for an identity record, merge kept


def test_a40_with_full_identity_keeps_the_identity() -> None:
    raw = er7(MSH_A01.replace("ADT^A01^ADT_A01", "ADT^A40"), PID, "MRG|00099999^^^H001^MR")
    parsed = parse_hl7v2(raw, None, RECEIVED)
    assert parsed.identity is not None and parsed.identity.rrn == "9710131019901"
    assert parsed.merges == (("00012345", "00099999"),)


@pytest.mark.parametrize("mrg", ["", "MRG|", "MRG|00012345^^^H001^MR"])
def test_a40_without_a_usable_mrg_is_rejected(mrg: str) -> None:
    segments = [
        "MSH|^~\\&|A|B|C|D|20260301||ADT^A40|M1|P|2.5",
        "PID|1||00012345^^^H001^MR||홍^길동",
    ]
    assert rejection(er7(*segments, *([mrg] if mrg else []))) == "HL7_MERGE_INVALID"


def test_escape_sequences_are_decoded() -> None:
    pid = "PID|1||00012345^^^H001^MR||홍^길동||19971013|M|||세종대로 110\\F\\3층^^중구^서울특별시^04524"
    parsed = parse_hl7v2(er7(MSH_A01, pid), None, RECEIVED)
    assert parsed.identity is not None
    assert parsed.identity.address == "서울특별시 중구 세종대로 110|3층"


def test_other_encoding_characters_are_honoured() -> None:
    msh = "MSH#*@$%#HIS#H001#BIOSTREAM#NBB#20260301##ADT*A08#ENC-1#P#2.5"
    pid = "PID#1##00012345***H001*MR@9710131019901***KOR*NNKOR##홍*길동##19971013#M"
    parsed = parse_hl7v2(er7(msh, pid), None, RECEIVED)
    assert parsed.message_type == "ADT^A08"
    assert parsed.identity is not None
    assert parsed.identity.local_patient_no == "00012345"
    assert parsed.identity.rrn == "9710131019901"
    assert parsed.identity.given_name == "길동"


def test_euc_kr_text_is_read() -> None:
    raw = er7(MSH_A01, "PID|1||00012345^^^H001^MR||홍^길동||19971013|M").decode().encode("cp949")
    parsed = parse_hl7v2(raw, None, RECEIVED)
    assert parsed.identity is not None and parsed.identity.family_name == "홍"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"PID|1||123", "HL7_NO_MSH"),
        (b"MSH", "HL7_NO_MSH"),
        (b"MSHA^~\\&|x", "HL7_UNPARSEABLE"),
        (b"MSH|^^^^|A", "HL7_UNPARSEABLE"),
        (b"\xff\xfe\xfd\xfc", "HL7_ENCODING"),
        (er7("MSH|^~\\&|A|B|C|D|20260301||ADT^A24|M1|P|2.5", PID), "HL7_MESSAGE_TYPE_UNSUPPORTED"),
        (er7(MSH_A01, "EVN|A01"), "HL7_PID_MISSING"),
        (er7(MSH_A01, "PID|1||^^^H001^MR||홍^길동||19971013"), "PATIENT_NUMBER_MISSING"),
        (er7(MSH_A01, PID, "DG1|1||E11^^KCD-12"), "KCD_VERSION_INVALID"),
    ],
)
def test_bad_messages_are_rejected_with_a_stable_reason(raw: bytes, reason: str) -> None:
    assert rejection(raw) == reason


def test_rejection_messages_never_quote_values() -> None:
    raw = er7(MSH_A01, "PID|1||^^^H001^MR||홍^길동||19971399|M")
    with pytest.raises(Rejected) as caught:
        parse_hl7v2(raw, None, RECEIVED)
    assert "홍" not in caught.value.message and "19971399" not in caught.value.message


def test_message_key_is_the_fallback_message_id() -> None:
    raw = er7("MSH|^~\\&|A|B|C|D|20260301||ADT^A01||P|2.5", PID)
    assert parse_hl7v2(raw, "KEY-9", RECEIVED).message_id == "KEY-9"


def test_stream_split_handles_mllp_frames_line_breaks_and_batches() -> None:
    one = er7(MSH_A01, PID)
    two = er7(MSH_A01.replace("MSG0001", "MSG0002"), PID)
    framed = b"\x0b" + one + b"\x1c\r" + b"\x0b" + two + b"\x1c\r"
    assert list(split_hl7_stream(framed)) == [one, two]
    lines = one.replace(b"\r", b"\n") + b"\n" + two.replace(b"\r", b"\r\n")
    assert list(split_hl7_stream(lines)) == [one, two]
    batch = b"FHS|^~\\&|A\rBHS|^~\\&|A\r" + one + two + b"BTS|2\rFTS|1\r"
    assert list(split_hl7_stream(batch)) == [one, two]
    assert list(split_hl7_stream(b"PID|orphan\r" + one)) == [b"PID|orphan\r", one]


def test_feed_split_keys_hl7_messages_by_control_id() -> None:
    data = er7(MSH_A01, PID) + er7(MSH_A01.replace("MSG0001", "MSG0002"), PID)
    messages = list(split_feed("hl7", data))
    assert [m.key for m in messages] == [b"MSG0001", b"MSG0002"]
    assert {m.content_type for m in messages} == {"x-application/hl7-v2+er7"}
    assert detect_format(None, messages[0].value) == "hl7"
    assert detect_format("x-application/hl7-v2+er7", b"") == "hl7"


def test_whole_hangul_name_in_the_family_component_is_split() -> None:
    for raw_name, expected in (("홍길동", ("홍", "길동")), ("남궁민수", ("남궁", "민수"))):
        pid = f"PID|1||00012345^^^H001^MR||{raw_name}||19971013|M"
        identity = parse_hl7v2(er7(MSH_A01, pid), None, RECEIVED).identity
        assert identity is not None
        assert (identity.family_name, identity.given_name) == expected
        assert "NAME_SPLIT_FROM_TEXT" in identity.quality_flags
