"""An access application as a fold over its events (event-sourced, as in REMS; D45).

The events are the record: every state an application ever had is ``replay`` of its events, and
nothing else is stored. An event names its application, its place in the application's
sequence (1, 2, ...), who caused it and when; ``evolve`` applies one, and refuses one that does
not follow (a gap, a repeat or a transition the rules never produce), so a replay cannot build a
state the commands could not have built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from access.domain.board import VoteChoice
from access.domain.forms import ApplicationForm, ApplicationKind, Conditions

Status = Literal[
    "draft",
    "submitted",
    "returned",
    "under_review",
    "approved",
    "rejected",
    "withdrawn",
    "expired",
    "revoked",
    "closed",
]
STATUSES: tuple[Status, ...] = (
    "draft", "submitted", "returned", "under_review", "approved", "rejected", "withdrawn",
    "expired", "revoked", "closed",
)  # fmt: skip
# No command moves an application out of these.
FINAL: frozenset[Status] = frozenset({"rejected", "withdrawn", "closed"})


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    application_id: str
    sequence: int = Field(ge=1)
    actor: str
    at: dt.datetime

    @property
    def event_id(self) -> str:
        return f"{self.application_id}/{self.sequence}"


class Created(_Event):
    type: Literal["created"] = "created"
    kind: ApplicationKind
    form: ApplicationForm
    # renewal: the application it continues; re-identification: the dataset's approval
    basis: str | None = None
    pseudonym_domain: str | None = None


class Edited(_Event):
    type: Literal["edited"] = "edited"
    form: ApplicationForm


class Submitted(_Event):
    type: Literal["submitted"] = "submitted"
    recused: tuple[str, ...] = ()
    board_sha256: str


class Returned(_Event):
    type: Literal["returned"] = "returned"
    reason: str


class Reviewed(_Event):
    type: Literal["reviewed"] = "reviewed"
    answers: dict[str, bool]
    note: str = ""


class Voted(_Event):
    type: Literal["voted"] = "voted"
    vote: VoteChoice


class Approved(_Event):
    type: Literal["approved"] = "approved"
    conditions: Conditions
    approvers: tuple[str, ...]
    valid_until: dt.datetime
    policy: dict[str, Any] | None = None  # none for re-identification: nothing is released


class Rejected(_Event):
    type: Literal["rejected"] = "rejected"
    reason: str


class Withdrawn(_Event):
    type: Literal["withdrawn"] = "withdrawn"
    reason: str = ""


class Expired(_Event):
    type: Literal["expired"] = "expired"


class Revoked(_Event):
    type: Literal["revoked"] = "revoked"
    reason: str


class VisaIssued(_Event):
    """D47: a member of an approved application was given a visa (the token itself is not
    kept: it is a bearer credential; its id, subject and end are)."""

    type: Literal["visa_issued"] = "visa_issued"
    subject: str
    jti: str
    expires_at: dt.datetime


class ClosedOut(_Event):
    type: Literal["closed_out"] = "closed_out"
    destruction_sha256: str


class RiskRequested(_Event):
    """D48: the board asked the pseudonymizer for the draft's disclosure-risk report."""

    type: Literal["risk_requested"] = "risk_requested"
    request_id: str
    draft_policy: dict[str, Any]
    variants: dict[str, dict[str, Any]]


class RiskReportReceived(_Event):
    """D48: the pseudonymizer's report (counts only), folded into the application."""

    type: Literal["risk_report_received"] = "risk_report_received"
    request_id: str
    outcome: str
    error_reason: str | None = None
    records_read: int = 0
    computed_at: dt.datetime
    figures: dict[str, Any] | None = None


Event = Annotated[
    Created | Edited | Submitted | Returned | Reviewed | Voted | Approved | Rejected | Withdrawn
    | Expired | Revoked | ClosedOut | VisaIssued | RiskRequested | RiskReportReceived,
    Field(discriminator="type"),
]  # fmt: skip
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: tuple[str, ...] = (
    "created", "edited", "submitted", "returned", "reviewed", "voted", "approved", "rejected",
    "withdrawn", "expired", "revoked", "closed_out", "visa_issued", "risk_requested",
    "risk_report_received",
)  # fmt: skip


def event_body(event: Event) -> str:
    """The event as JSON (what the ``AccessEvent`` contract carries as its body)."""
    return event.model_dump_json()


def event_from_body(body: str) -> Event:
    """Raises ``pydantic.ValidationError`` for a body that is no access event."""
    return EVENT_ADAPTER.validate_json(body)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Application:
    application_id: str
    kind: ApplicationKind
    form: ApplicationForm
    status: Status
    sequence: int
    created_at: dt.datetime
    updated_at: dt.datetime
    basis: str | None = None
    pseudonym_domain: str | None = None
    recused: frozenset[str] = frozenset()
    board_sha256: str | None = None
    reviews: Mapping[str, Reviewed] = field(default_factory=lambda: _frozen({}))
    votes: Mapping[str, VoteChoice] = field(default_factory=lambda: _frozen({}))
    approval: Approved | None = None
    reason: str | None = None  # why it was returned, rejected, withdrawn or revoked
    destruction_sha256: str | None = None
    visas: tuple[VisaIssued, ...] = ()  # D47: the visas issued, in order
    # D48: the risk reports asked for (request ids, in order) and the newest one received.
    risk_requests: tuple[str, ...] = ()
    risk_report: RiskReportReceived | None = None

    @property
    def dataset(self) -> str | None:
        if self.form.requested is not None:
            return self.form.requested.dataset
        return self.form.reidentification.dataset if self.form.reidentification else None

    @property
    def valid_until(self) -> dt.datetime | None:
        return self.approval.valid_until if self.approval else None

    def summary(self) -> dict[str, Any]:
        """What lists show: references, states and dates."""
        return {
            "application_id": self.application_id,
            "kind": self.kind,
            "status": self.status,
            "dataset": self.dataset,
            "title": self.form.title,
            "applicant": self.form.applicant,
            "institution": self.form.institution,
            "updated_at": self.updated_at.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


class BrokenHistory(ValueError):
    """An event that cannot follow the application's history (replay skips it, D45)."""


# Which event moves which status where. Reviewed and Voted keep the status (the first review
# moves a submitted application under review).
_MOVES: dict[str, tuple[frozenset[Status], Status | None]] = {
    "edited": (frozenset({"draft", "returned"}), None),
    "submitted": (frozenset({"draft", "returned"}), "submitted"),
    "returned": (frozenset({"submitted", "under_review"}), "returned"),
    "reviewed": (frozenset({"submitted", "under_review"}), "under_review"),
    "voted": (frozenset({"under_review"}), None),
    "approved": (frozenset({"under_review"}), "approved"),
    "rejected": (frozenset({"under_review"}), "rejected"),
    "withdrawn": (frozenset({"draft", "submitted", "returned", "under_review"}), "withdrawn"),
    "expired": (frozenset({"approved"}), "expired"),
    "revoked": (frozenset({"approved"}), "revoked"),
    "closed_out": (frozenset({"approved", "expired", "revoked"}), "closed"),
    "visa_issued": (frozenset({"approved"}), None),
    # D48: asked for while the board reviews; a report is kept whenever it arrives.
    "risk_requested": (frozenset({"submitted", "under_review"}), None),
    "risk_report_received": (frozenset(STATUSES) - {"draft"}, None),
}


def evolve(state: Application | None, event: Event) -> Application:
    """D45: the application after one more event, or ``BrokenHistory``."""
    if isinstance(event, Created):
        if state is not None or event.sequence != 1:
            raise BrokenHistory(f"{event.event_id}: created twice or not first")
        return Application(
            application_id=event.application_id, kind=event.kind, form=event.form,
            status="draft", sequence=1, created_at=event.at, updated_at=event.at,
            basis=event.basis, pseudonym_domain=event.pseudonym_domain,
        )  # fmt: skip
    if state is None:
        raise BrokenHistory(f"{event.event_id}: no such application")
    if event.application_id != state.application_id or event.sequence != state.sequence + 1:
        raise BrokenHistory(f"{event.event_id}: expected sequence {state.sequence + 1}")
    allowed, target = _MOVES[event.type]
    if state.status not in allowed:
        raise BrokenHistory(f"{event.event_id}: {event.type} does not follow {state.status}")
    moved = replace(
        state, sequence=event.sequence, updated_at=event.at, status=target or state.status
    )
    if isinstance(event, Edited):
        return replace(moved, form=event.form)
    if isinstance(event, Submitted):
        # A new round: reviews and votes of an earlier round (before a return) do not count.
        return replace(
            moved, recused=frozenset(event.recused), board_sha256=event.board_sha256,
            reviews=_frozen({}), votes=_frozen({}), reason=None,
        )  # fmt: skip
    if isinstance(event, Reviewed):
        return replace(moved, reviews=_frozen({**state.reviews, event.actor: event}))
    if isinstance(event, Voted):
        return replace(moved, votes=_frozen({**state.votes, event.actor: event.vote}))
    if isinstance(event, Approved):
        return replace(moved, approval=event)
    if isinstance(event, Returned | Rejected | Withdrawn | Revoked):
        return replace(moved, reason=event.reason or None)
    if isinstance(event, ClosedOut):
        return replace(moved, destruction_sha256=event.destruction_sha256)
    if isinstance(event, VisaIssued):
        return replace(moved, visas=(*state.visas, event))
    if isinstance(event, RiskRequested):
        return replace(moved, risk_requests=(*state.risk_requests, event.request_id))
    if isinstance(event, RiskReportReceived):
        if event.request_id not in state.risk_requests:
            raise BrokenHistory(f"{event.event_id}: a report for a request never made")
        return replace(moved, risk_report=event)
    return moved  # Expired


def replay(events: Iterable[Event]) -> Application | None:
    """D45: an application's state is the fold of its events, in order."""
    state: Application | None = None
    for event in events:
        state = evolve(state, event)
    return state
