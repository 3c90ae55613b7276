"""Release policies, keys, generalisation, free-text scrubbing and pseudonyms: pure, no Kafka."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pseudonymizer.adapters.keys import KeyMaterialError, KeyStore
from pseudonymizer.domain import kanon, pseudonyms
from pseudonymizer.domain.policy import PolicyError, load_policies, load_policy
from pseudonymizer.domain.pseudonyms import date_offset, pseudonym, specimen_id
from pseudonymizer.domain.release import age_band
from pseudonymizer.domain.scrub import scrub
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[3]


def policy_dict(**changes: Any) -> dict[str, Any]:
    base = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    base.update(changes)
    return base


def write(directory: Path, name: str, document: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(json.dumps(document))
    return path


def test_the_repository_policies_load() -> None:
    policies = load_policies(REPO / "policies")
    assert [p.dataset for p in policies] == ["cohort-demo"]
    assert policies[0].topic == "curated.cohort-demo"
    assert policies[0].key_id == "cohort-demo/k1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fields": ["code", "patient_name"]}, "unknown fields ['patient_name']"),
        ({"record_types": ["Condition", "Patient"]}, "unknown record types ['Patient']"),
        ({"target_topic": "identity.records"}, "unknown target topic 'identity.records'"),
        (
            {"generalisation": {"event_date": {"method": "jitter"}}},
            "generalisation.event_date: Input tag 'jitter'",
        ),
        ({"generalisation": {"birth": "decade"}}, "generalisation.birth"),
        ({"free_text": "keep"}, "free_text"),
        ({"k_anonymity": {"min_k": 0}}, "k_anonymity.min_k"),
        ({"approval_ref": ""}, "approval_ref"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_a_policy_it_cannot_enforce_is_refused_naming_the_problem(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, "p.json", policy_dict(**change))
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_two_policies_may_not_share_a_dataset_or_topic(tmp_path: Path) -> None:
    write(tmp_path, "a.json", policy_dict())
    write(tmp_path, "b.json", policy_dict(dataset="other", target_topic="curated.cohort-demo"))
    with pytest.raises(PolicyError, match="topic used by more than one policy"):
        load_policies(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PolicyError, match="no policy files"):
        load_policies(empty)


def test_keys_come_from_files_one_per_domain_and_version_or_the_environment(
    tmp_path: Path,
) -> None:
    for name in ("cohort-a.k1.key", "cohort-a.k2.key"):
        fd = os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, name.encode())
        os.close(fd)
    store = KeyStore.load(tmp_path, {"cohort-b/k1": SecretStr("from-env")})
    assert store.key("cohort-a/k2") == b"cohort-a.k2.key"
    assert store.key("cohort-b/k1") == b"from-env"
    assert set(store.versions("cohort-a")) == {"k1", "k2"}
    with pytest.raises(KeyMaterialError, match="no key cohort-c/k1"):
        store.key("cohort-c/k1")


def test_a_key_file_readable_by_others_is_refused_and_its_value_never_quoted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cohort-a.k1.key"
    path.write_text("s3cret-key-value")
    path.chmod(0o644)
    with pytest.raises(KeyMaterialError) as error:
        KeyStore.load(tmp_path, {})
    assert "group or others" in str(error.value)
    assert "s3cret" not in str(error.value)


def test_pseudonyms_are_stable_in_a_domain_and_unlinkable_across_domains() -> None:
    assert pseudonym(b"a" * 32, "P1") == pseudonym(b"a" * 32, "P1")
    assert pseudonym(b"a" * 32, "P1") != pseudonym(b"b" * 32, "P1")
    assert pseudonym(b"a" * 32, "P1") != pseudonym(b"a" * 32, "P2")
    assert specimen_id(b"a" * 32, "SPC-1") != specimen_id(b"b" * 32, "SPC-1")
    assert "SPC" not in specimen_id(b"a" * 32, "SPC-1")


def test_date_offsets_are_per_person_within_bounds() -> None:
    offsets = {date_offset(b"k" * 32, f"P{n}", 7) for n in range(400)}
    assert offsets <= set(range(-7, 8))
    assert len(offsets) == 15  # every offset is used
    assert date_offset(b"k" * 32, "P1", 7) == date_offset(b"k" * 32, "P1", 7)


@pytest.mark.parametrize(
    ("year", "month", "event", "band"),
    [
        (1990, 6, dt.date(2026, 5, 31), "35-39"),  # 35 before the birthday
        (1990, 6, dt.date(2025, 5, 31), "30-34"),  # 34
        (1990, None, dt.date(2025, 5, 31), "35-39"),  # no month: birthday taken as passed
        (1930, 1, dt.date(2026, 2, 1), "90+"),
        (None, None, dt.date(2026, 2, 1), None),
        (1990, 6, None, None),
    ],
)
def test_age_band_at_the_event(
    year: int | None, month: int | None, event: dt.date | None, band: str | None
) -> None:
    assert age_band(year, month, event) == band


# Each note with every identifying value planted in it: all of them must go.
SCRUB_CANARIES = [
    ("환자 김서연 (850321-2012342) 연락처 010-3141-5926",
     ["김서연", "850321", "2012342", "3141", "5926"]),
    ("보호자 연락 +82-10-2718-2818, kim.seoyeon@example.kr", ["2718", "2818", "kim.seoyeon"]),
    ("부산광역시 해운대구 센텀중앙로 79 거주", ["센텀중앙로", "79"]),
    ("등록번호: 71000001 재내원", ["71000001"]),
    ("이민준 님 검사 결과 정상, 유선 02-123-4567", ["이민준", "123-4567"]),
    ("MRN H-778812 specimen SPC-2026-0001", ["778812", "SPC-2026-0001", "2026-0001"]),
    ("김철수 환자 내원", ["김철수"]),
    ("김철수 환자는 어제 입원", ["김철수"]),
    ("환자 박지훈은 퇴원", ["박지훈"]),
    ("성명: 홍길동, 보호자 김영희 동행", ["홍길동", "김영희"]),
    ("남궁민수 님 재방문", ["남궁민수"]),
    ("김서연씨는 전화 요망", ["김서연"]),
    ("Kim Seoyeon visited; HONG, GIL DONG called", ["Seoyeon", "HONG", "GIL DONG"]),
    ("Gil-dong Hong, Mr. Park Jiyeon and Lee Min Ho", ["Gil-dong", "Hong", "Jiyeon", "Min Ho"]),
    ("Patient: Choi Yuna, follow-up", ["Choi", "Yuna"]),
    ("BYEONG-SIK CHOI and GAYOUNG YUN, GIL DONG HONG", ["BYEONG", "CHOI", "GAYOUNG", "GIL DONG"]),
    ("검체번호 S26-00123, FASTQ-H001-0042 and AC123456", ["S26-00123", "H001-0042", "AC123456"]),
    ("SPC-2026-0001에서 채취", ["SPC-2026-0001"]),
    ("전화 (02) 123-4567", ["123-4567"]),
]  # fmt: skip


@pytest.mark.parametrize(("note", "canaries"), SCRUB_CANARIES)
def test_scrubbing_removes_identifiers_from_notes(note: str, canaries: list[str]) -> None:
    scrubbed = scrub(note)
    for canary in canaries:
        assert canary not in scrubbed, (canary, scrubbed)


@pytest.mark.parametrize(
    "note",
    [
        "HbA1c 7.1% 정상 범위 내",
        "당뇨 환자 metformin 500 mg bid, 고혈압 환자 amlodipine 5mg",
        "이 환자는 우울증 환자로 sertraline 50 mg 복용",
        "환자 상태 양호, 환자 이송 예정, 담당 선생님께 보고",
        "Lipid panel: LDL 130 mg/dL, eGFR 60 mL/min/1.73m2, Fluid 500 mL",
        "COVID-19 PCR 음성, CA19-9 35 U/mL, HER2-positive, SpO2 98%",
        "E11.9 제2형 당뇨병, BP 130/80 mmHg, Vitamin D3 1000 IU",
        "insulin glargine 10 units, 2026-03-01 검사, 검체 12개",
        "Park Avenue clinic referral, go home",
    ],
)
def test_scrubbing_keeps_clinical_content(note: str) -> None:
    assert scrub(note) == note


def test_scrubbing_types_what_it_removed() -> None:
    assert scrub("김철수 환자 내원") == "[NAME] 환자 내원"
    assert scrub("MRN H-778812 specimen SPC-2026-0001") == "[PATIENT_NO] [SPECIMEN_ID]"
    assert scrub("Gil-dong Hong called") == "[NAME] called"


def test_a_k_class_opens_with_the_kth_distinct_person() -> None:
    first = kanon.admit(None, "P1", 3)
    again = kanon.admit(first.state, "P1", 3)
    second = kanon.admit(again.state, "P2", 3)
    third = kanon.admit(second.state, "P3", 3)
    assert not first.releasable and not again.releasable and not second.releasable
    assert third.releasable and third.opened
    later = kanon.admit(third.state, "P4", 3)
    assert later.releasable and not later.opened
    assert kanon.admit(None, "P1", 1).releasable


def _published_mac(key: bytes, label: str, value: str) -> str:
    """The pseudonym formula as first released; ids already given to projects depend on it."""
    digest = hmac.new(key, f"{label}\x1f{value}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:26]


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=64), st.text(max_size=40), st.text(max_size=40))
def test_pseudonym_values_never_change_from_the_published_formula(
    key: bytes, label: str, value: str
) -> None:
    assert pseudonyms._mac(key, label, value) == _published_mac(key, label, value)
    assert pseudonyms.pseudonym(key, value) == "ps_" + _published_mac(key, "person", value)
