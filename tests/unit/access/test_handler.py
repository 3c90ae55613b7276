"""The access handler (D45): a command's events go out with their audit events, a refusal with
its audit event only (its code, never the command's content); events read back are applied once,
an event that does not follow is skipped; the expiry sweep finds approvals past their end."""

from __future__ import annotations

import datetime as dt

from access import testing
from access.domain.commands import Create, Decide, Review, Submit, Vote
from access.handlers import SERVICE, AccessHandler, AccessMetrics, read_command
from biostream.codec import default_codec
from biostream.contract import Inbound, Outbound
from biostream.contracts import ACCESS_EVENT, AUDIT_EVENT
from biostream.envelopes import Envelopes
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

CODEC = default_codec()
TOPICS = Topics("t-")
NOW = testing.NOW


def handler() -> AccessHandler:
    envelopes = Envelopes(SERVICE, "User:t-svc-access", CODEC, TOPICS)
    return AccessHandler(
        testing.rules(), CODEC, TOPICS, envelopes, AccessMetrics.create(CollectorRegistry())
    )


def inbound(message: Outbound, offset: int) -> Inbound:
    return Inbound(message.topic, 0, offset, message.key, message.value, (), 0)


def created(h: AccessHandler) -> None:
    form = testing.form()
    decided = h.decide_all(
        "APP-1",
        [Create("APP-1", testing.APPLICANT, "dataset", form), Submit(testing.APPLICANT)],
        NOW,
    )
    assert decided.refusal is None
    h.applied(decided.events)


def test_events_and_their_audit_events_leave_together() -> None:
    h = handler()
    decided = h.decide_all(
        "APP-1",
        [Create("APP-1", testing.APPLICANT, "dataset", testing.form()), Submit(testing.APPLICANT)],
        NOW,
    )
    assert [m.topic for m in decided.messages] == [
        "t-access.events", "t-audit.events.svc-access", "t-access.events",
        "t-audit.events.svc-access",
        # D48: the submission asks for the disclosure-risk report in the same transaction
        "t-access.events", "t-access.risk-requests", "t-audit.events.svc-access",
    ]  # fmt: skip
    assert "APP-1" not in h.applications  # nothing applied before the broker has it
    wire = CODEC.decode(decided.messages[0].value, ACCESS_EVENT)
    assert (wire["event_id"], wire["event_type"], decided.messages[0].key) == (
        "APP-1/1", "created", b"APP-1",
    )  # fmt: skip
    audit = CODEC.decode(decided.messages[1].value, AUDIT_EVENT)
    assert audit["action"] == "access.created" and audit["dataset"] == "diabetes-cohort"


def test_a_refusal_is_audited_with_its_code_and_no_content() -> None:
    h = handler()
    created(h)
    before = h.applications["APP-1"]
    decided = h.decide("APP-1", Review("rev-applicant-home", testing.CHECKLIST_YES), NOW)
    assert decided.events == [] and decided.refusal is not None
    [message] = decided.messages
    audit = CODEC.decode(message.value, AUDIT_EVENT)
    assert (audit["action"], audit["outcome"], audit["reason_code"]) == (
        "access.refused", "refused", "RECUSED_REVIEWER",
    )  # fmt: skip
    assert h.applications["APP-1"] == before
    # the refusal's text (which may quote what was typed) is not in the audit event
    assert decided.refusal.reason not in repr(audit)


def test_a_refused_step_refuses_the_whole_batch() -> None:
    h = handler()
    bad = testing.form(duo_codes=["NOPE"])
    decided = h.decide_all(
        "APP-9",
        [Create("APP-9", testing.APPLICANT, "dataset", bad), Submit(testing.APPLICANT)],
        NOW,
    )
    assert decided.refusal is not None and decided.refusal.code == "UNKNOWN_DUO_CODE"
    assert decided.events == [] and "APP-9" not in h.applications


def test_replay_applies_each_event_once_and_skips_one_that_does_not_follow() -> None:
    writer = handler()
    reader = handler()
    first = writer.decide_all(
        "APP-2",
        [Create("APP-2", testing.APPLICANT, "dataset", testing.form()), Submit(testing.APPLICANT)],
        NOW,
    )
    stream = [m for m in first.messages if m.topic == TOPICS.access_events]
    for offset, message in enumerate(stream + stream):  # a repeat changes nothing
        reader.on_record(inbound(message, offset))
    assert reader.applications["APP-2"].status == "submitted"
    assert reader.applications["APP-2"].sequence == 3  # created, submitted, risk_requested
    # a concurrent writer's event for a sequence already taken: the first one wins
    rival = handler()
    for offset, message in enumerate(stream):
        rival.on_record(inbound(message, offset))
    late = rival.decide("APP-2", read_command("withdraw", testing.APPLICANT, {}), NOW)
    mine = reader.decide("APP-2", Review("rev-a", testing.CHECKLIST_YES), NOW)
    reader.applied(mine.events)
    reader.on_record(inbound(late.messages[0], 10))
    assert reader.applications["APP-2"].status == "under_review"
    reader.on_record(Inbound(TOPICS.access_events, 0, 11, b"x", b"garbage", (), 0))
    assert reader.applications["APP-2"].sequence == 4


def test_the_sweep_expires_approvals_past_their_end() -> None:
    h = handler()
    created(h)
    for member in ("rev-a", "rev-b"):
        for command in (Review(member, testing.CHECKLIST_YES), Vote(member, "approve")):
            h.applied(h.decide("APP-1", command, NOW).events)
    h.applied(h.decide("APP-1", Decide("chair", "approve"), NOW).events)
    end = h.applications["APP-1"].valid_until
    assert end is not None
    assert h.due_expiries(end - dt.timedelta(seconds=1)) == []
    assert h.due_expiries(end) == ["APP-1"]
    h.applied(h.expire("APP-1", end).events)
    assert h.applications["APP-1"].status == "expired" and h.due_expiries(end) == []
