"""The linkage handler: decisions, review tasks, review decisions, hospital merges, restore."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    IDENTITY_RECORD,
    LINK_DECISION,
    PATIENT_MERGE,
    REVIEW_DECISION,
    REVIEW_TASK,
)
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry

CODEC = AvroCodec(SchemaRegistry())
TOPICS = Topics("t.")
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
RRN = "9710131019901"  # born 1997-10-13, male


def handler() -> LinkageHandler:
    envelopes = Envelopes("linkage", "User:linkage", CODEC, TOPICS)
    return LinkageHandler(
        CODEC, TOPICS, envelopes, b"p" * 32, default_params(),
        LinkageMetrics.create(CollectorRegistry()),
    )  # fmt: skip


def inbound(topic: str, value: bytes, offset: int) -> Inbound:
    return Inbound(topic, 0, offset, None, value, (), int(NOW.timestamp() * 1000))


def identity(ref: str, offset: int, **fields: Any) -> Inbound:
    record: dict[str, Any] = {
        "record_id": f"H001/M{offset}/0", "patient_ref": ref, "hospital": "H001",
        "message_id": f"M{offset}", "source_format": "FHIR", "received_at": NOW,
        "family_name": "김", "given_name": "서연", "name_latin": None,
        "birth_date": dt.date(1997, 10, 13), "sex": "F", "rrn": None, "local_patient_no": "1",
        "phone": "01012345678", "address": None, "postal_code": None, "province_code": "11",
        "quality_flags": [],
    }  # fmt: skip
    record.update(fields)
    return inbound(TOPICS.identity_records, CODEC.encode(IDENTITY_RECORD, record), offset)


def decisions(out: list[Outbound]) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value, LINK_DECISION) for o in out if o.topic == TOPICS.link_decisions]


def tasks(out: list[Outbound]) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value, REVIEW_TASK) for o in out if o.topic == TOPICS.review_tasks]


def review(task_id: str, verdict: str, offset: int) -> Inbound:
    value = CODEC.encode(
        REVIEW_DECISION,
        {"task_id": task_id, "decision": verdict, "candidate_person_id": None,
         "reviewer": "steward-1", "reason": None, "decided_at": NOW},
    )  # fmt: skip
    return inbound(TOPICS.review_decisions, value, offset)


def merge(surviving: str, retired: str, offset: int) -> Inbound:
    value = CODEC.encode(
        PATIENT_MERGE,
        {"merge_id": f"H001/A40/{offset}", "hospital": "H001", "message_id": "A40",
         "received_at": NOW, "surviving_patient_ref": surviving, "retired_patient_ref": retired},
    )  # fmt: skip
    return inbound(TOPICS.patient_merges, value, offset)


def test_registration_number_links_two_hospitals_and_never_leaves() -> None:
    link, state = handler(), StateStore()
    [first] = decisions(link(identity("pr_a", 0, rrn=RRN, sex="M"), state, NOW))
    [second] = decisions(
        link(identity("pr_b", 1, rrn=RRN, sex="M", given_name="길동", phone=None), state, NOW)
    )
    assert (first["outcome"], second["outcome"]) == ("NEW_PERSON", "MATCH")
    assert first["person_id"] == second["person_id"] and second["rule"] == "rrn-exact"
    assert second["birth_year"] == 1997
    assert RRN not in json.dumps(second, default=str)
    stored = b"".join(state.get(k) or b"" for k in state.keys_with_prefix(""))
    assert RRN.encode() not in stored


def test_possible_match_opens_a_review_and_same_person_merges() -> None:
    link, state = handler(), StateStore()
    [a] = decisions(link(identity("pr_a", 0), state, NOW))
    out = link(identity("pr_b", 1, phone="01099998888"), state, NOW)
    [b] = decisions(out)
    [task] = tasks(out)
    assert b["outcome"] == "POSSIBLE_MATCH" and b["person_id"] != a["person_id"]
    assert task["candidate_person_ids"] == [a["person_id"]]
    assert task["provisional_person_id"] == b["person_id"]
    assert "BIRTH_SAME" in task["reason"] and "PHONE_DIFFERENT" in task["reason"]
    [merged] = decisions(link(review(task["task_id"], "SAME_PERSON", 2), state, NOW))
    assert merged["patient_ref"] == "pr_b"
    assert (merged["outcome"], merged["person_id"]) == ("MERGED", a["person_id"])
    assert merged["previous_person_id"] == b["person_id"] and merged["sequence"] == 1
    # The task is closed: a second answer changes nothing.
    assert decisions(link(review(task["task_id"], "DIFFERENT_PEOPLE", 3), state, NOW)) == []


def test_different_people_confirms_and_splits_after_a_later_merge() -> None:
    link, state = handler(), StateStore()
    decisions(link(identity("pr_a", 0), state, NOW))
    [task] = tasks(link(identity("pr_b", 1, phone="01099998888"), state, NOW))
    # Meanwhile the hospital merged the two patients: they are one person now.
    [moved] = decisions(link(merge("pr_a", "pr_b", 2), state, NOW))
    assert moved["outcome"] == "MERGED"
    [split] = decisions(link(review(task["task_id"], "DIFFERENT_PEOPLE", 3), state, NOW))
    assert split["outcome"] == "SPLIT" and split["previous_person_id"] == moved["person_id"]
    assert split["person_id"] != moved["person_id"] and split["sequence"] == 2


def test_escalate_keeps_the_task_open() -> None:
    link, state = handler(), StateStore()
    decisions(link(identity("pr_a", 0), state, NOW))
    [task] = tasks(link(identity("pr_b", 1, phone="01099998888"), state, NOW))
    assert decisions(link(review(task["task_id"], "ESCALATE", 2), state, NOW)) == []
    [reviewed] = decisions(link(review(task["task_id"], "DIFFERENT_PEOPLE", 3), state, NOW))
    assert reviewed["outcome"] == "REVIEWED" and reviewed["sequence"] == 1


def test_hospital_merge_before_the_retired_patient_is_seen() -> None:
    link, state = handler(), StateStore()
    [a] = decisions(link(identity("pr_a", 0), state, NOW))
    assert decisions(link(merge("pr_a", "pr_z", 1), state, NOW)) == []
    [z] = decisions(link(identity("pr_z", 2, given_name="민준", sex="M"), state, NOW))
    assert (z["person_id"], z["rule"]) == (a["person_id"], "hospital-merge")


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_restarted_handler_on_the_restored_state_continues_identically(cut: int) -> None:
    messages = [
        identity("pr_a", 0),
        identity("pr_b", 1, phone="01099998888"),
        identity("pr_c", 2, given_name="서영", phone="01012345678"),
        merge("pr_a", "pr_b", 3),
        identity("pr_d", 4, given_name="민준", sex="M", birth_date=dt.date(1980, 1, 2)),
    ]
    straight, state = handler(), StateStore()
    expected = [decisions(straight(m, state, NOW)) for m in messages]
    first, second, restored = handler(), handler(), StateStore()
    got = [decisions(first(m, restored, NOW)) for m in messages[:cut]]
    # A new process: only the durable state survives (as the changelog restores it).
    fresh = StateStore()
    for key in list(restored.keys_with_prefix("")):
        fresh.restore(key, restored.get(key))
    got += [decisions(second(m, fresh, NOW)) for m in messages[cut:]]
    assert got == expected


def test_a_merge_alias_re_pointed_before_either_patient_is_seen_survives_a_restart() -> None:
    # pr_z is retired into pr_x, then (a correction) into pr_y, before any of them is seen.
    messages = [
        merge("pr_x", "pr_z", 0),
        merge("pr_y", "pr_z", 1),
        identity("pr_y", 2),
        identity("pr_z", 3, given_name="민준", sex="M", phone="01055554444"),
    ]
    straight, state = handler(), StateStore()
    expected = [decisions(straight(m, state, NOW)) for m in messages]
    assert expected[3][0]["rule"] == "hospital-merge"
    first, second, restored = handler(), handler(), StateStore()
    got = [decisions(first(m, restored, NOW)) for m in messages[:2]]
    fresh = StateStore()
    for key in list(restored.keys_with_prefix("")):
        fresh.restore(key, restored.get(key))
    got += [decisions(second(m, fresh, NOW)) for m in messages[2:]]
    assert got == expected


def test_undecodable_input_is_dead_lettered() -> None:
    link, state = handler(), StateStore()
    out = link(inbound(TOPICS.patient_merges, b"junk", 0), state, NOW)
    assert [o.topic for o in out] == [TOPICS.dead_letters, TOPICS.audit_events_of("linkage")]


@pytest.mark.parametrize(
    ("address", "province", "code"),
    [
        ("서울특별시 종로구 세종대로 209", "11", "11110"),
        ("경기 수원시 영통구 광교로 152, 101동 1203호", "41", "41117"),
        ("강원도 춘천시 중앙로 1", "42", "51110"),
        ("중구 세종대로 110", None, None),  # six 중구: no code rather than a guess
        (None, "11", None),
    ],
)
def test_a_decision_carries_the_district_of_the_address(
    address: str | None, province: str | None, code: str | None
) -> None:
    link, state = handler(), StateStore()
    [decision] = decisions(
        link(identity("pr_a", 0, address=address, province_code=province), state, NOW)
    )
    assert decision["district_code"] == code
    assert decision["province_code"] == province


def test_a_ref_stored_before_districts_existed_gets_its_district_from_the_profile() -> None:
    link, state = handler(), StateStore()
    address = "서울특별시 종로구 세종대로 209"
    decisions(link(identity("pr_a", 0, address=address), state, NOW))
    decisions(link(identity("pr_c", 1, given_name="민준", sex="M", address=address), state, NOW))
    # The state as D24's predecessor wrote it: meta without the district.
    old = StateStore()
    for key in list(state.keys_with_prefix("")):
        old.restore(key, state.get(key))
    for key in ("r:pr_a", "r:pr_c"):
        person, sequence, profile, meta = json.loads(state.get(key) or b"")
        assert meta[3] == "11110"
        old.restore(key, json.dumps([person, sequence, profile, meta[:3]]).encode())
    # A hospital merge moves pr_a: its decision comes from the stored entry alone.
    [moved] = decisions(handler()(merge("pr_c", "pr_a", 2), old, NOW))
    assert moved["outcome"] == "MERGED" and moved["district_code"] == "11110"


def test_a_refused_bridge_opens_a_review_and_same_person_joins_them() -> None:
    link, state = handler(), StateStore()
    namesake = {"sex": "M", "birth_date": dt.date(1897, 10, 13), "given_name": "민준",
                "postal_code": "06236", "address": "서울특별시 강남구 테헤란로 152"}  # fmt: skip
    [a] = decisions(link(identity("pr_a", 0, rrn="9710139019902", **namesake), state, NOW))
    [b] = decisions(
        link(identity("pr_b", 1, rrn="9710139019918", phone="01055550000", **namesake), state, NOW)
    )
    assert a["person_id"] != b["person_id"]  # different strong registration numbers
    out = link(identity("pr_c", 2, **namesake), state, NOW)
    [c] = decisions(out)
    [task] = tasks(out)
    assert (c["outcome"], c["person_id"]) == ("MATCH", a["person_id"])
    assert task["candidate_person_ids"] == [b["person_id"]]
    merged = decisions(link(review(task["task_id"], "SAME_PERSON", 3), state, NOW))
    assert {d["person_id"] for d in merged} == {a["person_id"]}
