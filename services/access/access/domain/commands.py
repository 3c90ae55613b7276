"""What people ask of an application, and the rules that answer (D45).

A command is decided by one pure function, ``AccessRules.decide(state, command, now)``: the
events it causes, or a ``Refusal`` with a stable code (for the audit trail) and a reason a person
can act on. A refused command causes no event, so it changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from access.domain.application import (
    Application,
    Approved,
    ClosedOut,
    Created,
    Edited,
    Event,
    Expired,
    Rejected,
    Returned,
    Reviewed,
    Revoked,
    Status,
    Submitted,
    VisaIssued,
    Voted,
    Withdrawn,
)
from access.domain.board import BoardConfig, Member, VoteChoice, recused_members, verdict
from access.domain.catalogue import EMPTY, Catalogue
from access.domain.duo import DuoMatch, DuoTerms, duo_match, duo_problem
from access.domain.forms import (
    SHA256_HEX,
    ApplicationForm,
    ApplicationKind,
    Conditions,
    access_months,
    add_months,
    approved_policy,
    form_problem,
)
from access.domain.visas import visa_problem

SYSTEM = "system"  # the actor of clock-driven commands (expiry)
Outcome = Literal["approve", "reject", "return"]
# A re-identification needs two distinct approving members (D35, D45).
REIDENTIFICATION_APPROVERS = 2


class Head(TypedDict):
    """What every event of a command carries: its application, place, actor and time."""

    application_id: str
    sequence: int
    actor: str
    at: dt.datetime


@dataclass(frozen=True)
class Refusal:
    code: str
    reason: str


@dataclass(frozen=True)
class Create:
    application_id: str
    actor: str
    kind: ApplicationKind
    form: ApplicationForm
    # renewal: the application continued; re-identification: the dataset's approved application
    basis: Application | None = None


@dataclass(frozen=True)
class Edit:
    actor: str
    form: ApplicationForm


@dataclass(frozen=True)
class Submit:
    actor: str


@dataclass(frozen=True)
class Review:
    actor: str
    answers: dict[str, bool]
    note: str = ""


@dataclass(frozen=True)
class Vote:
    actor: str
    vote: VoteChoice


@dataclass(frozen=True)
class Decide:
    actor: str
    outcome: Outcome
    conditions: Conditions = field(default_factory=Conditions)
    reason: str = ""


@dataclass(frozen=True)
class Withdraw:
    actor: str
    reason: str = ""


@dataclass(frozen=True)
class Expire:
    actor: str = SYSTEM


@dataclass(frozen=True)
class Revoke:
    actor: str
    reason: str


@dataclass(frozen=True)
class CloseOut:
    actor: str
    destruction_sha256: str


@dataclass(frozen=True)
class IssueVisa:
    """D47: a member asks for their visa; ``jti`` is the new visa's id (the caller's)."""

    actor: str
    jti: str


Command = (
    Create | Edit | Submit | Review | Vote | Decide | Withdraw | Expire | Revoke | CloseOut
    | IssueVisa
)  # fmt: skip

# In which states each command may be given (every other state: an illegal transition).
ALLOWED: dict[type, frozenset[Status]] = {
    Edit: frozenset({"draft", "returned"}),
    Submit: frozenset({"draft", "returned"}),
    Review: frozenset({"submitted", "under_review"}),
    Vote: frozenset({"under_review"}),
    Decide: frozenset({"submitted", "under_review"}),
    Withdraw: frozenset({"draft", "submitted", "returned", "under_review"}),
    Expire: frozenset({"approved"}),
    Revoke: frozenset({"approved"}),
    CloseOut: frozenset({"approved", "expired", "revoked"}),
    IssueVisa: frozenset({"approved"}),
}
COMMAND_NAMES: dict[type, str] = {
    Create: "create", Edit: "edit", Submit: "submit", Review: "review", Vote: "vote",
    Decide: "decide", Withdraw: "withdraw", Expire: "expire", Revoke: "revoke",
    CloseOut: "close-out", IssueVisa: "visa",
}  # fmt: skip


def command_name(command: Command) -> str:
    return COMMAND_NAMES[type(command)]


@dataclass(frozen=True)
class AccessRules:
    """The board (its file, D45) and the DUO term list every decision is taken under."""

    board: BoardConfig
    duo: DuoTerms
    catalogue: Catalogue = field(default_factory=lambda: EMPTY)  # D47: each dataset's own DUO terms

    def decide(
        self, state: Application | None, command: Command, now: dt.datetime
    ) -> list[Event] | Refusal:
        """D45: the events ``command`` causes on ``state`` at ``now``, or why it is refused."""
        if isinstance(command, Create):
            return self._create(state, command, now)
        if state is None:
            return Refusal("UNKNOWN_APPLICATION", "no such application")
        if isinstance(command, IssueVisa):
            return self._visa(state, command, now)
        if state.status not in ALLOWED[type(command)]:
            return illegal_transition(state, command)
        head = Head(
            application_id=state.application_id,
            sequence=state.sequence + 1,
            actor=command.actor,
            at=now,
        )
        if (
            isinstance(command, Edit | Submit | Withdraw | CloseOut)
            and command.actor != state.form.applicant
        ):
            return Refusal("NOT_APPLICANT", f"only the applicant may {command_name(command)}")
        if isinstance(command, Edit):
            problem = self._form_refusal(state.kind, command.form)
            if problem is not None:
                return problem
            if command.form.applicant != state.form.applicant:
                return Refusal("NOT_APPLICANT", "the applicant of an application cannot change")
            return [Edited(**head, form=command.form)]
        if isinstance(command, Submit):
            recused = sorted(recused_members(self.board.board, state.form.institution))
            return [Submitted(**head, recused=tuple(recused), board_sha256=self.board.sha256)]
        if isinstance(command, Withdraw):
            return [Withdrawn(**head, reason=command.reason.strip())]
        if isinstance(command, CloseOut):
            if not _is_sha256(command.destruction_sha256):
                return Refusal(
                    "INVALID_ATTESTATION",
                    "the close-out needs the SHA-256 (64 hex digits) of the destruction attestation",
                )
            return [ClosedOut(**head, destruction_sha256=command.destruction_sha256)]
        if isinstance(command, Expire):
            if state.valid_until is None or now < state.valid_until:
                return Refusal("NOT_YET_EXPIRED", "the approval has not reached its end date")
            return [Expired(**head)]
        if isinstance(command, Review):
            return self._review(state, command, head)
        if isinstance(command, Vote):
            return self._vote(state, command, head)
        if isinstance(command, Revoke):
            refused = self._chair_refusal(state, command.actor)
            if refused is not None:
                return refused
            if not command.reason.strip():
                return Refusal("REASON_REQUIRED", "a revocation states its reason")
            return [Revoked(**head, reason=command.reason.strip())]
        return self._decision(state, command, now, head)

    def duo_match_of(self, state: Application) -> DuoMatch:
        """D47: the application's data use codes against its dataset's catalogue terms."""
        dataset = state.dataset
        return duo_match(
            self.catalogue.get(dataset) if dataset is not None else None,
            state.form.duo_codes, self.duo,
        )  # fmt: skip

    # -------------------------------------------------------------------------------- parts

    def _visa(
        self, state: Application, command: IssueVisa, now: dt.datetime
    ) -> list[Event] | Refusal:
        problem = visa_problem(state, command.actor, self.board.board.url, now)
        if problem is not None:
            return Refusal(problem.code, problem.reason)
        assert state.valid_until is not None  # an approval in force has its end date
        return [
            VisaIssued(
                application_id=state.application_id, sequence=state.sequence + 1,
                actor=command.actor, at=now, subject=command.actor, jti=command.jti,
                expires_at=state.valid_until,
            )
        ]  # fmt: skip

    def _form_refusal(self, kind: ApplicationKind, form: ApplicationForm) -> Refusal | None:
        problem = form_problem(kind, form)
        if problem is not None:
            return Refusal("INVALID_FORM", problem)
        problem = duo_problem(form.duo_codes, self.duo)
        if problem is not None:
            code = "UNKNOWN_DUO_CODE" if problem.startswith("unknown") else "INVALID_DUO_CODES"
            return Refusal(code, problem)
        return None

    def _create(
        self, state: Application | None, command: Create, now: dt.datetime
    ) -> list[Event] | Refusal:
        if state is not None:
            return Refusal("APPLICATION_EXISTS", "an application with this id exists")
        if command.actor != command.form.applicant:
            return Refusal("NOT_APPLICANT", "an application is created by its applicant")
        problem = self._form_refusal(command.kind, command.form)
        if problem is not None:
            return problem
        basis, domain = command.basis, None
        if command.kind == "renewal":
            if basis is None or basis.kind == "reidentification":
                return Refusal("NO_BASIS", "a renewal continues an existing dataset application")
            if basis.status not in ("approved", "expired"):
                return Refusal(
                    "NO_BASIS",
                    f"a renewal continues an approved or expired dataset, not a {basis.status} one",
                )
            if basis.dataset != command.form.requested.dataset:  # type: ignore[union-attr]
                return Refusal("NO_BASIS", "a renewal continues the same dataset")
            if basis.form.institution != command.form.institution:
                return Refusal("NO_BASIS", "a renewal comes from the same institution")
            # The same dataset keeps the same pseudonyms: the same pseudonym domain.
            domain = basis.pseudonym_domain
        elif command.kind == "reidentification":
            if basis is None or basis.status != "approved" or basis.kind == "reidentification":
                return Refusal(
                    "NO_BASIS",
                    "re-identification is asked for a dataset whose approval is in force",
                )
            if basis.dataset != command.form.reidentification.dataset:  # type: ignore[union-attr]
                return Refusal("NO_BASIS", "the approval given is not the dataset's")
        else:
            if basis is not None:
                return Refusal("NO_BASIS", "a new dataset application continues nothing")
            domain = command.form.requested.dataset  # type: ignore[union-attr]
        return [
            Created(
                application_id=command.application_id, sequence=1, actor=command.actor, at=now,
                kind=command.kind, form=command.form,
                basis=basis.application_id if basis else None, pseudonym_domain=domain,
            )
        ]  # fmt: skip

    def _member_refusal(self, state: Application, actor: str) -> Refusal | Member:
        member = self.board.board.member(actor)
        if member is None:
            return Refusal("UNKNOWN_REVIEWER", f"{actor!r} is not a member of the board")
        if actor in state.recused:
            return Refusal(
                "RECUSED_REVIEWER",
                f"{actor} is recused: a member of the applicant's institution "
                f"({state.form.institution}) does not review, vote or decide",
            )
        return member

    def _chair_refusal(self, state: Application, actor: str) -> Refusal | None:
        member = self._member_refusal(state, actor)
        if isinstance(member, Refusal):
            return member
        if member.role != "chair":
            return Refusal("NOT_CHAIR", "only the board's chair records decisions")
        return None

    def _review(self, state: Application, command: Review, head: Head) -> list[Event] | Refusal:
        member = self._member_refusal(state, command.actor)
        if isinstance(member, Refusal):
            return member
        if command.actor in state.reviews:
            return Refusal(
                "ALREADY_REVIEWED", f"{command.actor} has already completed the checklist"
            )
        expected = self.board.board.checklist_ids
        missing = sorted(expected - set(command.answers))
        unknown = sorted(set(command.answers) - expected)
        if missing or unknown:
            return Refusal(
                "CHECKLIST_INCOMPLETE",
                "the checklist is answered item by item: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing}" if missing else "",
                        f"not on the checklist {unknown}" if unknown else "",
                    )
                    if part
                ),
            )
        return [Reviewed(**head, answers=dict(command.answers), note=command.note.strip())]

    def _vote(self, state: Application, command: Vote, head: Head) -> list[Event] | Refusal:
        member = self._member_refusal(state, command.actor)
        if isinstance(member, Refusal):
            return member
        if command.actor not in state.reviews:
            return Refusal("CHECKLIST_FIRST", "a member completes the checklist before voting")
        if command.actor in state.votes:
            return Refusal("ALREADY_VOTED", f"{command.actor} has already voted")
        return [Voted(**head, vote=command.vote)]

    def _decision(
        self, state: Application, command: Decide, now: dt.datetime, head: Head
    ) -> list[Event] | Refusal:
        refused = self._chair_refusal(state, command.actor)
        if refused is not None:
            return refused
        reason = command.reason.strip()
        if command.outcome == "return":
            if not reason:
                return Refusal("REASON_REQUIRED", "a return for changes says what to change")
            return [Returned(**head, reason=reason)]
        if state.status != "under_review":
            return illegal_transition(state, command)
        required = REIDENTIFICATION_APPROVERS if state.kind == "reidentification" else 1
        said = verdict(self.board.board.voting, state.votes, required)
        if said != command.outcome:
            voting = self.board.board.voting
            return Refusal(
                "RULE_NOT_MET",
                f"the votes do not {command.outcome}: rule {voting.rule}, at least "
                f"{voting.min_votes} votes"
                + (f" and {required} distinct approvers" if required > 1 else "")
                + f"; {len(state.votes)} cast, the rule says {said}",
            )
        if command.outcome == "reject":
            if not reason:
                return Refusal("REASON_REQUIRED", "a rejection states its reason")
            return [Rejected(**head, reason=reason)]
        approvers = tuple(sorted(m for m, v in state.votes.items() if v == "approve"))
        if state.kind == "reidentification":
            # Nothing is released: the approval is what allows the look-up, for a short while.
            months = command.conditions.expires_in_months or 1
            valid_until = add_months(now, months)
            return [
                Approved(**head, conditions=command.conditions, approvers=approvers,
                         valid_until=valid_until, policy=None)
            ]  # fmt: skip
        requested = state.form.requested
        assert requested is not None  # form_problem: a dataset or renewal application requests data
        valid_until = add_months(now, access_months(requested, command.conditions))
        policy = approved_policy(
            state.application_id, requested, state.form.purpose, command.conditions,
            state.pseudonym_domain or requested.dataset, state.sequence + 1, now, valid_until,
        )  # fmt: skip
        return [
            Approved(**head, conditions=command.conditions, approvers=approvers,
                     valid_until=valid_until, policy=policy)
        ]  # fmt: skip


def illegal_transition(state: Application, command: Command) -> Refusal:
    """D45: a command the application's state does not allow, named as such. A decision on a
    withdrawn application has its own reason, as the issue asks."""
    name = command_name(command)
    if state.status == "withdrawn":
        return Refusal(
            "APPLICATION_WITHDRAWN", f"the application was withdrawn by its applicant: no {name}"
        )
    allowed = ", ".join(s for s in ALLOWED[type(command)])
    return Refusal(
        "ILLEGAL_TRANSITION",
        f"cannot {name} an application that is {state.status} (only: {allowed})",
    )


def _is_sha256(value: str) -> bool:
    return re.fullmatch(SHA256_HEX, value) is not None
