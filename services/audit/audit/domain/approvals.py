"""The approvals behind each dataset, read from the access service's audit events in the ledger
(D47): who applied, who reviewed, voted and decided, when, under which conditions and DUO terms,
until when, and the state now. Pure: events arrive decoded, in ledger order.

The access service writes every application event's facts as ``key:value`` references of its
audit event (``access/domain/audit_facts.py``); this module reads only those words, never the
access service's code (services never import each other).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from biostream.contracts import AuditEvent

Logged = tuple[int, AuditEvent]
ACCESS = "access."
# Which access event leaves the application in which state (the others keep it).
STATES = {
    "access.created": "draft", "access.submitted": "submitted", "access.returned": "returned",
    "access.reviewed": "under_review", "access.approved": "approved",
    "access.rejected": "rejected", "access.withdrawn": "withdrawn", "access.expired": "expired",
    "access.revoked": "revoked", "access.closed_out": "closed",
}  # fmt: skip


def _facts(event: AuditEvent) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for ref in event["outputs"][1:]:  # the first is the access event's id
        key, sep, value = ref.partition(":")
        if sep:
            found.setdefault(key, []).append(value)
    return found


def _one(facts: dict[str, list[str]], key: str) -> str | None:
    values = facts.get(key)
    return values[0] if values else None


def _at(event: AuditEvent) -> str:
    return event["occurred_at"].isoformat()


@dataclass
class ApplicationRecord:
    """One application for a dataset as the ledger tells it (account ids, never names)."""

    application_id: str
    dataset: str
    kind: str | None = None
    applicant: str | None = None
    institution: str | None = None
    team: list[str] = field(default_factory=list)
    duo_codes: list[str] = field(default_factory=list)
    irb: str | None = None
    purpose: str | None = None
    basis: str | None = None
    state: str | None = None
    submitted_at: str | None = None
    recused: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    votes: dict[str, str] = field(default_factory=dict)
    decided_by: str | None = None
    decided_at: str | None = None
    decision: str | None = None
    approvers: list[str] = field(default_factory=list)
    conditions: dict[str, Any] | None = None
    conditions_text: int = 0
    valid_until: str | None = None
    ended_at: str | None = None  # expired, revoked, closed
    revoked_by: str | None = None
    destruction_sha256: str | None = None
    visas: list[dict[str, str]] = field(default_factory=list)

    def apply(self, event: AuditEvent) -> None:
        action, facts = event["action"], _facts(event)
        actor = _one(facts, "actor")
        self.state = STATES.get(action, self.state)
        if action in ("access.created", "access.edited"):
            self.kind = _one(facts, "kind") or self.kind
            self.applicant = _one(facts, "applicant")
            self.institution = _one(facts, "institution")
            self.team = facts.get("team", [])
            self.duo_codes = facts.get("duo", [])
            self.irb = _one(facts, "irb")
            self.purpose = event["purpose"]
            self.basis = _one(facts, "basis") or self.basis
        elif action == "access.submitted":
            # A new round: earlier reviews and votes no longer count (D45).
            self.submitted_at, self.recused = _at(event), facts.get("recused", [])
            self.reviewers, self.votes = [], {}
        elif action == "access.reviewed" and actor is not None:
            self.reviewers.append(actor)
        elif action == "access.voted" and actor is not None:
            self.votes[actor] = _one(facts, "vote") or "?"
        elif action in ("access.approved", "access.rejected", "access.returned"):
            self.decided_by, self.decided_at = actor, _at(event)
            self.decision = action.removeprefix(ACCESS)
            if action == "access.approved":
                self.approvers = facts.get("approver", [])
                self.valid_until = _one(facts, "valid-until")
                raw = _one(facts, "conditions")
                self.conditions = json.loads(raw) if raw else {}
                self.conditions_text = int(_one(facts, "conditions-text") or 0)
        elif action in ("access.expired", "access.revoked", "access.closed_out"):
            self.ended_at = self.ended_at or _at(event)
            if action == "access.revoked":
                self.revoked_by = actor
            if action == "access.closed_out":
                self.destruction_sha256 = _one(facts, "destruction-sha256")
        elif action == "access.visa_issued":
            self.visas.append(
                {"subject": _one(facts, "subject") or "?", "issued_at": _at(event),
                 "until": _one(facts, "visa-until") or "?"}
            )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id,
            "kind": self.kind,
            "state": self.state,
            "applicant": self.applicant,
            "institution": self.institution,
            "team": self.team,
            "purpose": self.purpose,
            "duo_codes": self.duo_codes,
            "irb": self.irb,
            "continues": self.basis,
            "submitted_at": self.submitted_at,
            "recused": self.recused,
            "reviewed_by": self.reviewers,
            "votes": dict(sorted(self.votes.items())),
            "decision": {
                "outcome": self.decision,
                "by": self.decided_by,
                "at": self.decided_at,
                "approvers": self.approvers,
                "conditions": self.conditions,
                "conditions_in_free_text": self.conditions_text,
                "valid_until": self.valid_until,
            },
            "ended": {
                "at": self.ended_at,
                "revoked_by": self.revoked_by,
                "close_out_attestation_sha256": self.destruction_sha256,
            },
            "visas": self.visas,
        }


def approval_records(events: Iterable[Logged]) -> dict[str, list[ApplicationRecord]]:
    """D47: per dataset, every application for it (dataset, renewal or re-identification), in
    the order they were made, folded from the access service's audit events. An application's
    refusals (``access.refused``) change nothing and are not part of it."""
    by_id: dict[str, ApplicationRecord] = {}
    for _, event in events:
        action = event["action"]
        if not action.startswith(ACCESS) or action == "access.refused" or not event["inputs"]:
            continue
        application_id = event["inputs"][0]
        record = by_id.get(application_id)
        if record is None:
            if not event["dataset"]:
                continue
            record = by_id[application_id] = ApplicationRecord(application_id, event["dataset"])
        record.apply(event)
    grouped: dict[str, list[ApplicationRecord]] = {}
    for record in by_id.values():
        grouped.setdefault(record.dataset, []).append(record)
    return grouped
