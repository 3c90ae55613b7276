"""`audit report` reads the approvals (D47): the access service's own audit events, as its
handler writes them, folded into each dataset's processing record: who applied, who reviewed,
voted and decided, when, under which conditions and DUO terms, until when, the state now."""

from __future__ import annotations

import datetime as dt

from access import testing
from access.domain.commands import CloseOut, Command, Decide, IssueVisa, Review, Revoke, Vote
from access.domain.forms import Conditions
from access.handlers import SERVICE, AccessHandler, AccessMetrics
from audit.domain.approvals import approval_records
from audit.domain.lineage import Logged, processing_records
from biostream.codec import default_codec
from biostream.contracts import AUDIT_EVENT, AuditEvent
from biostream.envelopes import Envelopes
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

CODEC = default_codec()
NOW = testing.NOW


class Ledger:
    """The access handler's audit events, in the order the audit service would chain them."""

    def __init__(self) -> None:
        topics = Topics()
        self.handler = AccessHandler(
            testing.rules(), CODEC, topics, Envelopes(SERVICE, "User:svc-access", CODEC, topics),
            AccessMetrics.create(CollectorRegistry()),
        )  # fmt: skip
        self.events: list[Logged] = []
        self.minutes = 0

    def run(self, application_id: str, *commands: Command) -> None:
        for command in commands:
            self.minutes += 1
            at = NOW + dt.timedelta(minutes=self.minutes)
            decided = self.handler.decide(application_id, command, at)
            for message in decided.messages:
                if message.topic.startswith("audit.events"):
                    event: AuditEvent = CODEC.decode(message.value, AUDIT_EVENT)  # type: ignore[assignment]
                    self.events.append((len(self.events) + 1, event))
            self.handler.applied(decided.events)


def test_the_processing_record_lists_each_approval_and_its_end() -> None:
    ledger = Ledger()
    approval = testing.approval_commands("APP-1")
    conditions = Conditions(min_k=10, no_free_text=True, text=("publish the code",))
    ledger.run("APP-1", *approval[:-1], Decide("chair", "approve", conditions))
    ledger.run("APP-1", IssueVisa("analyst-1", "visa-x"), IssueVisa("rev-a", "visa-y"))
    ledger.run("APP-1", Revoke("chair", "breach of the agreement"))
    ledger.run("APP-1", CloseOut(testing.APPLICANT, "ef" * 32))
    # a second application for another dataset, rejected
    other = testing.approval_commands("APP-2")
    other[0] = type(other[0])("APP-2", testing.APPLICANT, "dataset", testing.form(dataset="lungs"))
    ledger.run("APP-2", *other[:2], Review("rev-a", testing.CHECKLIST_YES), Vote("rev-a", "reject"))
    ledger.run("APP-2", Review("rev-b", testing.CHECKLIST_YES), Vote("rev-b", "reject"))
    ledger.run("APP-2", Decide("chair", "reject", reason="not the minimum data"))

    records = processing_records(ledger.events)
    assert sorted(records) == ["diabetes-cohort", "lungs"]
    [app1] = records["diabetes-cohort"]["approvals"]
    assert records["diabetes-cohort"]["counts"]["released"] == 0  # approved, nothing released yet
    assert app1["application_id"] == "APP-1" and app1["kind"] == "dataset"
    assert (app1["applicant"], app1["institution"], app1["team"]) == (
        testing.APPLICANT, testing.INSTITUTION, ["analyst-1"],
    )  # fmt: skip
    assert app1["purpose"] == testing.form().purpose
    assert app1["duo_codes"] == ["HMB", "DUO:0000021", "NPUNCU"]
    assert app1["irb"] == "IRB-2026-0042"
    assert app1["recused"] == ["rev-applicant-home"]
    assert app1["reviewed_by"] == ["rev-a", "rev-b"]
    assert app1["votes"] == {"rev-a": "approve", "rev-b": "approve"}
    decision = app1["decision"]
    approved = ledger.handler.applications["APP-1"]
    assert approved.approval is not None
    assert decision == {
        "outcome": "approved",
        "by": "chair",
        "at": approved.approval.at.isoformat(),
        "approvers": ["rev-a", "rev-b"],
        "conditions": {"min_k": 10, "no_free_text": True},
        "conditions_in_free_text": 1,
        "valid_until": approved.approval.valid_until.isoformat(),
    }
    assert app1["state"] == "closed"
    assert app1["ended"]["revoked_by"] == "chair"
    assert app1["ended"]["close_out_attestation_sha256"] == "ef" * 32
    assert [v["subject"] for v in app1["visas"]] == ["analyst-1"]  # rev-a's was refused
    [app2] = records["lungs"]["approvals"]
    assert (app2["state"], app2["decision"]["outcome"], app2["votes"]) == (
        "rejected", "rejected", {"rev-a": "reject", "rev-b": "reject"},
    )  # fmt: skip
    # free text never reaches the ledger: the reasons and the board's text condition
    text = repr(ledger.events)
    assert "breach of the agreement" not in text and "publish the code" not in text
    assert "not the minimum data" not in text


def test_a_resubmission_starts_a_new_round_and_the_expiry_is_the_state() -> None:
    ledger = Ledger()
    approval = testing.approval_commands("APP-1")
    ledger.run("APP-1", *approval[:4], Decide("chair", "return", reason="narrow the fields"))
    ledger.run("APP-1", *approval[1:])
    [record] = approval_records(ledger.events)["diabetes-cohort"]
    assert record.state == "approved" and record.votes == {"rev-a": "approve", "rev-b": "approve"}
    assert record.reviewers == ["rev-a", "rev-b"]  # the first round's review does not count twice
    valid_until = ledger.handler.applications["APP-1"].valid_until
    assert valid_until is not None
    decided = ledger.handler.expire("APP-1", valid_until)
    for message in decided.messages[1:]:
        ledger.events.append((99, CODEC.decode(message.value, AUDIT_EVENT)))  # type: ignore[arg-type]
    [record] = approval_records(ledger.events)["diabetes-cohort"]
    assert record.state == "expired" and record.ended_at == valid_until.isoformat()
