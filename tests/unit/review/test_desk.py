"""The desk's model: queue order and filter, side-by-side view, closing and escalating, the
resulting person; the handler's decisions and audit events carry no identifying values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT, REVIEW_DECISION
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.topics import Topics
from prometheus_client import CollectorRegistry
from review.domain.desk import Desk, masked_rrn
from review.handlers import ReviewHandler, ReviewMetrics, UnknownTask

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def task(ref: str, minutes: int, hospital: str = "H001", **extra: Any) -> dict[str, Any]:
    return {
        "task_id": f"review/{ref}/0", "created_at": T0 + dt.timedelta(minutes=minutes),
        "record_id": f"{hospital}/M/{ref}", "patient_ref": ref, "hospital": hospital,
        "provisional_person_id": f"P-{ref}", "candidate_person_ids": ["P-a"], "score": 2.5,
        "reason": "FAMILY_SAME,PHONE_DIFFERENT",
        "comparisons": [{"field": "family", "level": "SAME", "weight": 5.4},
                        {"field": "phone", "level": "DIFFERENT", "weight": -1.7}],
        **extra,
    }  # fmt: skip


def identity(ref: str, phone: str) -> dict[str, Any]:
    return {
        "record_id": f"H/M/{ref}", "patient_ref": ref, "hospital": "H001",
        "family_name": "윤", "given_name": "하은", "name_latin": None,
        "birth_date": dt.date(1979, 5, 12), "sex": "F", "rrn": "7905122345678",
        "phone": phone, "address": None, "postal_code": None,
    }  # fmt: skip


def link(ref: str, person: str, rule: str = "match", sequence: int = 0) -> dict[str, Any]:
    return {"patient_ref": ref, "person_id": person, "rule": rule, "sequence": sequence}


def test_queue_is_oldest_first_and_filters_by_hospital() -> None:
    desk = Desk()
    desk.on_task(task("b", 5, "H002"))
    desk.on_task(task("c", 9))
    desk.on_task(task("a", 1))
    assert [t.patient_ref for t in desk.open_tasks()] == ["a", "b", "c"]
    assert [t.patient_ref for t in desk.open_tasks("H001")] == ["a", "c"]
    assert desk.hospitals() == ["H001", "H002"]
    assert desk.oldest_age_s(T0 + dt.timedelta(minutes=11)) == 600.0


def test_view_puts_record_and_candidate_side_by_side_with_agreement() -> None:
    desk = Desk()
    desk.on_identity(identity("a", "01011112222"))
    desk.on_identity(identity("b", "01033334444"))
    desk.on_link(link("a", "P-a"))
    desk.on_link(link("b", "P-b"))
    desk.on_task(task("b", 0))
    view = desk.view("review/b/0")
    assert view is not None
    assert [s.values["phone"] for s in view.sides] == ["01033334444", "01011112222"]
    assert [s.person_id for s in view.sides] == ["P-b", "P-a"]
    assert view.sides[0].values["rrn"] == "790512-2******"
    assert (view.agreement["phone"].level, view.agreement["phone"].weight) == ("DIFFERENT", -1.7)
    assert view.agreement["family_name"].level == "SAME"
    assert view.resulting_person is None


def test_a_decision_closes_the_task_and_the_applied_review_names_the_person() -> None:
    desk = Desk()
    desk.on_link(link("a", "P-a"))
    desk.on_link(link("b", "P-b"))
    desk.on_task(task("b", 0))
    desk.on_decision(
        {"task_id": "review/b/0", "decision": "SAME_PERSON", "reviewer": "s1", "decided_at": T0}
    )
    assert desk.open_tasks() == []
    view = desk.view("review/b/0")
    assert view is not None and view.decided is not None
    assert view.resulting_person is None  # linkage has not applied it yet
    desk.on_link(link("b", "P-a", rule="review", sequence=1))
    view = desk.view("review/b/0")
    assert view is not None
    assert (view.resulting_person, view.resulting_members) == ("P-a", 2)
    # A replayed task after its decision does not reopen it.
    desk.on_task(task("b", 0))
    assert desk.open_tasks() == []


def test_escalation_keeps_the_task_open_and_marked() -> None:
    desk = Desk()
    desk.on_task(task("b", 0))
    desk.on_decision(
        {"task_id": "review/b/0", "decision": "ESCALATE", "reviewer": "s1", "decided_at": T0}
    )
    [open_task] = desk.open_tasks()
    assert open_task.escalated and open_task.summary(T0)["escalated"] is True


def test_masked_rrn_keeps_birth_part_and_sex_digit_only() -> None:
    assert masked_rrn("7905122345678") == "790512-2******"
    assert masked_rrn(None) is None


CODEC = AvroCodec(SchemaRegistry())


def handler_with_open_task() -> ReviewHandler:
    """A review handler whose desk holds task review/b/0 and the identity behind it."""
    topics = Topics("")
    handler = ReviewHandler(
        CODEC, topics, Envelopes("review", "svc-review", CODEC, topics),
        ReviewMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    handler.desk.on_identity(identity("b", "01033334444"))
    handler.desk.on_task(task("b", 0))
    return handler


def test_handler_decision_and_audit_without_identifying_values() -> None:
    handler = handler_with_open_task()
    reason = "phone 01033334444 differs but same person"
    decision, audit = handler.decide("review/b/0", "SAME_PERSON", reason, "s1", T0)
    wire = CODEC.decode(decision.value, REVIEW_DECISION)
    assert (wire["task_id"], wire["decision"], wire["reviewer"]) == (
        "review/b/0",
        "SAME_PERSON",
        "s1",
    )
    event = CODEC.decode(audit.value, AUDIT_EVENT)
    assert (event["action"], event["inputs"], event["outcome"]) == (
        "review.decided", ["review/b/0"], "same_person",
    )  # fmt: skip
    assert "01033334444" not in repr(event) and "하은" not in repr(event)
    viewed = CODEC.decode(handler.viewed("review/b/0", "s1", T0).value, AUDIT_EVENT)
    assert viewed["action"] == "review.viewed" and "steward:s1" in viewed["outputs"]
    with pytest.raises(UnknownTask):
        handler.decide("review/zz/0", "SAME_PERSON", None, "s1", T0)
    with pytest.raises(ValueError):
        handler.decide("review/b/0", "MAYBE", None, "s1", T0)


def test_a_published_decision_shows_at_once_and_its_copy_from_the_topic_changes_nothing() -> None:
    handler = handler_with_open_task()
    messages = handler.decide("review/b/0", "SAME_PERSON", "same person", "s1", T0)
    view = handler.desk.view("review/b/0")
    assert view is not None and view.decided is None  # nothing applied before the broker has it
    handler.published(messages)
    after = handler.desk.view("review/b/0")
    assert after is not None and after.decided is not None
    assert after.decided.decision == "SAME_PERSON" and handler.desk.open_tasks() == []
    handler.desk.on_decision(CODEC.decode(messages[0].value, REVIEW_DECISION))  # read back
    again = handler.desk.view("review/b/0")
    assert again is not None and again.decided == after.decided
    assert handler.desk.open_tasks() == []
