"""D33 in linkage: after the patient-ref key rotated, a known hospital patient's new ref continues
its source record (same person, a decision for the new ref, audited); merges find each side by
its ref or its older refs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import IDENTITY_RECORD, LINK_DECISION, PATIENT_MERGE
from biostream.envelopes import Envelopes, audit_events_in
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from linkage.domain.rotation import ROTATION_RULE, known_predecessors
from linkage.domain.weights import default_params
from linkage.handlers import LinkageHandler, LinkageMetrics
from prometheus_client import CollectorRegistry

CODEC = AvroCodec(SchemaRegistry())
TOPICS = Topics("t.")
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


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


def merge(surviving: str, retired: str, offset: int, **fields: Any) -> Inbound:
    record: dict[str, Any] = {
        "merge_id": f"H001/A40/{offset}", "hospital": "H001", "message_id": "A40",
        "received_at": NOW, "surviving_patient_ref": surviving, "retired_patient_ref": retired,
    }  # fmt: skip
    record.update(fields)
    return inbound(TOPICS.patient_merges, CODEC.encode(PATIENT_MERGE, record), offset)


def decisions(out: list[Outbound]) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value, LINK_DECISION) for o in out if o.topic == TOPICS.link_decisions]


def audits(out: list[Any]) -> list[dict[str, Any]]:
    return [
        dict(event)
        for o in out
        if o.topic == TOPICS.audit_events_of("linkage")
        for event in audit_events_in(CODEC, o.value)
    ]


def test_known_predecessors_are_the_known_older_refs_newest_first_each_once() -> None:
    known = {"pr_k2": "pr_k2", "pr_k1": "pr_k1", "pr_alias": "pr_k1"}
    found = known_predecessors(["pr_x", "pr_k2", "pr_alias", "pr_k1"], known.get)
    assert found == ["pr_k2", "pr_k1"]
    assert known_predecessors([], known.get) == []
    assert known_predecessors(["pr_x"], known.get) == []


def test_a_new_ref_whose_older_ref_is_known_continues_that_patient() -> None:
    link, state = handler(), StateStore()
    [first] = decisions(link(identity("pr_old", 0), state, NOW))
    # The same patient after the rotation, with a new phone and a moved address: no comparison
    # is needed, the hospital's own numbers say it is the same patient.
    out = link(
        identity("pr_new", 1, previous_patient_refs=["pr_old"], phone="01099998888",
                 given_name="서윤"),
        state, NOW,
    )  # fmt: skip
    [continued] = decisions(out)
    assert continued["patient_ref"] == "pr_new"
    assert continued["person_id"] == first["person_id"]
    assert (continued["outcome"], continued["rule"]) == ("MATCH", ROTATION_RULE)
    [audit] = [a for a in audits(out) if a["action"] == "linkage.linked"]
    assert audit["reason_code"] == "PATIENT_REF_ROTATED"
    assert audit["outputs"] == [continued["decision_id"]]

    # The older ref is still known (records still sent under it), and after a restart too.
    again = handler()
    assert decisions(again(identity("pr_old", 2), state, NOW)) == []
    assert decisions(again(identity("pr_new", 3), state, NOW)) == []
    assert again.index is not None
    assert again.index.refs["pr_old"].person == again.index.refs["pr_new"].person


def test_unknown_older_refs_change_nothing() -> None:
    link, state = handler(), StateStore()
    link(identity("pr_a", 0), state, NOW)
    [other] = decisions(
        link(
            identity(
                "pr_b2",
                1,
                previous_patient_refs=["pr_b1"],
                family_name="박",
                given_name="지훈",
                birth_date=None,
                phone="01055554444",
                sex="M",
            ),
            state,
            NOW,
        )
    )
    assert (other["outcome"], other["rule"]) == ("NEW_PERSON", "fellegi-sunter")


def test_older_refs_in_two_persons_are_one_patient_and_merged() -> None:
    link, state = handler(), StateStore()
    [a] = decisions(link(identity("pr_a1", 0), state, NOW))
    [b] = decisions(
        link(identity("pr_b1", 1, family_name="박", given_name="지훈", birth_date=None,
                      phone="01055554444", sex="M"), state, NOW)
    )  # fmt: skip
    assert a["person_id"] != b["person_id"]
    out = link(identity("pr_c3", 2, previous_patient_refs=["pr_b1", "pr_a1"]), state, NOW)
    found = decisions(out)
    assert {d["person_id"] for d in found} == {a["person_id"]}  # the older person survives
    assert {d["patient_ref"]: d["outcome"] for d in found} == {"pr_b1": "MERGED", "pr_c3": "MATCH"}


def test_a_merge_finds_each_side_by_its_older_refs() -> None:
    link, state = handler(), StateStore()
    [a] = decisions(link(identity("pr_a1", 0), state, NOW))
    [b] = decisions(
        link(identity("pr_b1", 1, family_name="박", given_name="지훈", birth_date=None,
                      phone="01055554444", sex="M"), state, NOW)
    )  # fmt: skip
    message = merge(
        "pr_a2", "pr_b2", 2,
        previous_surviving_patient_refs=["pr_a1"], previous_retired_patient_refs=["pr_b1"],
    )  # fmt: skip
    [moved] = decisions(link(message, state, NOW))
    assert (moved["patient_ref"], moved["outcome"]) == ("pr_b1", "MERGED")
    assert (moved["person_id"], moved["previous_person_id"]) == (a["person_id"], b["person_id"])


def test_a_merge_whose_retired_side_is_unseen_points_it_at_the_known_older_ref() -> None:
    link, state = handler(), StateStore()
    [a] = decisions(link(identity("pr_a1", 0), state, NOW))
    message = merge("pr_a2", "pr_z2", 1, previous_surviving_patient_refs=["pr_a1"])
    assert decisions(link(message, state, NOW)) == []
    # The retired patient's first record joins the surviving patient's person.
    [joined] = decisions(
        link(identity("pr_z2", 2, family_name="박", given_name="지훈", phone=None), state, NOW)
    )
    assert (joined["person_id"], joined["rule"]) == (a["person_id"], "hospital-merge")
