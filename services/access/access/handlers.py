"""Access use cases: a command on an application becomes its events on ``access.events`` and
their audit events, or a refusal and its audit event; the events read back (at start, from the
topic) rebuild every application. Returns what to publish; the adapters publish it (one Kafka
transaction per command) and then hand the events back with ``applied``."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from biostream.codec import AvroCodec, DecodeError
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    ACCESS_EVENT,
    RELEASE_POLICY_VERSION,
    RISK_REPORT,
    RISK_REQUEST,
    AccessEvent,
    ReleasePolicyVersion,
    RiskRequest,
)
from biostream.envelopes import Envelopes
from biostream.logs import get_logger
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from access.domain.application import (
    STATUSES,
    Application,
    BrokenHistory,
    Event,
    RiskRequested,
    event_body,
    event_from_body,
    evolve,
)
from access.domain.audit_facts import audit_facts
from access.domain.commands import (
    AccessRules,
    CloseOut,
    Command,
    Create,
    Decide,
    Edit,
    Expire,
    IssueVisa,
    Refusal,
    Review,
    Revoke,
    Submit,
    Vote,
    Withdraw,
    command_name,
)
from access.domain.forms import ApplicationForm, Conditions
from access.domain.publication import Released, advance
from access.domain.risk import report_event, with_risk_request

# D49: signs a policy version with the board's key (None: this process publishes no policies).
PolicySigner = Callable[[ReleasePolicyVersion], ReleasePolicyVersion]

SERVICE = "access"


@dataclass(frozen=True)
class AccessMetrics:
    applications: Gauge
    commands: Counter
    skipped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AccessMetrics:
        return cls(
            applications=Gauge(
                "biostream_access_applications",
                "Applications by status",
                ["status"],
                registry=registry,
            ),
            commands=Counter(
                "biostream_access_commands",
                "Commands decided, by command and outcome (accepted or the refusal code)",
                ["command", "outcome"],
                registry=registry,
            ),
            skipped=Counter(
                "biostream_access_events_skipped",
                "Events on access.events that did not follow their application (not applied)",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class Decided:
    """What a command came to: the events (none when refused), the refusal, and every message
    to write in one transaction (the events and their audit events, or the refusal's audit)."""

    application_id: str
    events: list[Event]
    refusal: Refusal | None
    messages: list[Outbound]


def new_application_id() -> str:
    return f"APP-{uuid.uuid4().hex[:12]}"


def new_visa_id() -> str:
    """A visa's ``jti``: random, so a visa names no one and can be found in the events."""
    return f"visa-{uuid.uuid4().hex}"


class AccessHandler:
    def __init__(
        self,
        rules: AccessRules,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        metrics: AccessMetrics,
        sign_policy: PolicySigner | None = None,
    ) -> None:
        self.rules = rules
        self.sign_policy = sign_policy
        # D49: each dataset's newest version on access.policies, recomputed from the events.
        self.releases: dict[str, Released] = {}
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.metrics = metrics
        self.applications: dict[str, Application] = {}
        self._log = get_logger("access.handlers")

    @property
    def input_topics(self) -> list[str]:
        return [self.topics.access_events]

    # --------------------------------------------------------------------------- the stream

    def on_record(self, message: Inbound) -> None:
        """One record of ``access.events`` (at start: the replay that rebuilds every
        application; later: events other writers, e.g. the command line, wrote)."""
        try:
            wire = self.codec.decode(message.value, ACCESS_EVENT)
            event = event_from_body(wire["body_json"])
        except (DecodeError, ValidationError) as error:
            self.metrics.skipped.inc()
            self._log.error("access event unreadable, skipped", reason=type(error).__name__)
            return
        self._apply(event)

    def applied(self, events: list[Event]) -> None:
        """D45: the events of a command once the broker has committed them, applied at once so
        the next command sees them; the copy read back from the topic changes nothing, and an
        event for a sequence already taken (a concurrent writer's) is skipped: the first wins."""
        for event in events:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        current = self.applications.get(event.application_id)
        if current is not None and event.sequence <= current.sequence:
            return  # already applied (our own write read back)
        try:
            application = evolve(current, event)
        except BrokenHistory as error:
            # D45: a concurrent writer's event for a sequence already taken: the first wins.
            self.metrics.skipped.inc()
            self._log.warning("access event does not follow, skipped", problem=str(error))
            return
        self.applications[event.application_id] = application
        self.releases, _ = advance(self.releases, application, event, self.topics.prefix)
        self.refresh()

    def refresh(self) -> None:
        counts = dict.fromkeys(STATUSES, 0)
        for application in self.applications.values():
            counts[application.status] += 1
        for status, count in counts.items():
            self.metrics.applications.labels(status).set(count)

    # ------------------------------------------------------------------------------ commands

    def decide(self, application_id: str, command: Command, now: dt.datetime) -> Decided:
        """D45: the command decided on the application as it stands; a refusal changes nothing
        and is audited with its code (never the command's content)."""
        state = self.applications.get(application_id)
        outcome = self.rules.decide(state, command, now)
        name = command_name(command)
        dataset = state.dataset if state is not None else None
        if isinstance(outcome, Refusal):
            self.metrics.commands.labels(name, outcome.code).inc()
            audit = self.envelopes.audit(
                "access.refused", [application_id], [f"command:{name}", f"actor:{command.actor}"],
                now, outcome="refused", reason_code=outcome.code, dataset=dataset,
            )  # fmt: skip
            return Decided(application_id, [], outcome, [audit])
        self.metrics.commands.labels(name, "accepted").inc()
        outcome = with_risk_request(state, list(outcome), now)  # D48: a submission asks
        messages: list[Outbound] = []
        for event in outcome:
            messages.append(self.event_message(event))
            if isinstance(event, RiskRequested):
                messages.append(self.risk_request_message(event))
            form = getattr(event, "form", None)
            messages.append(
                self.envelopes.audit(
                    f"access.{event.type}",
                    [application_id],
                    # D47: the facts the processing record (audit report) reads from the ledger
                    [event.event_id, f"actor:{event.actor}", *audit_facts(event)],
                    now,
                    dataset=dataset or _dataset_of(event),
                    purpose=form.purpose if form is not None else None,
                )
            )
        messages += self.policy_messages(state, list(outcome), now)
        return Decided(application_id, list(outcome), None, messages)

    def policy_messages(
        self, state: Application | None, events: list[Event], now: dt.datetime
    ) -> list[Outbound]:
        """D49: the signed policy versions the events issue, written in their transaction:
        an approval is on ``access.policies`` exactly when its event is on ``access.events``,
        once, whatever restarts (the replay recomputes the versions and publishes nothing)."""
        if self.sign_policy is None:
            return []
        releases: dict[str, Released] = self.releases
        messages: list[Outbound] = []
        for event in events:
            state = evolve(state, event)
            releases, record = advance(releases, state, event, self.topics.prefix)
            if record is not None:
                signed = self.sign_policy(record)
                messages.append(
                    Outbound(
                        self.topics.access_policies,
                        self.codec.encode(RELEASE_POLICY_VERSION, signed),
                        key=signed["dataset"].encode(),
                    )
                )
                messages.append(
                    self.envelopes.audit(
                        "access.policy_published",
                        [event.application_id],
                        [
                            event.event_id,
                            f"policy:{signed['dataset']}@{signed['version']}",
                            f"status:{signed['status']}",
                            f"principal:{signed['principal']}",
                        ],
                        now,
                        dataset=signed["dataset"],
                        reason_code=signed["withdrawn_reason"],
                    )
                )
        return messages

    def decide_all(self, application_id: str, commands: list[Command], now: dt.datetime) -> Decided:
        """Several commands on one application as one (``access submit --form``: create and
        submit): all their events, or the first refusal and none of them."""
        saved = self.applications.get(application_id)
        events: list[Event] = []
        messages: list[Outbound] = []
        try:
            for command in commands:
                decided = self.decide(application_id, command, now)
                if decided.refusal is not None:
                    return Decided(application_id, [], decided.refusal, decided.messages)
                events += decided.events
                messages += decided.messages
                state = self.applications.get(application_id)
                for event in decided.events:
                    state = evolve(state, event)
                assert state is not None
                self.applications[application_id] = state
        finally:
            if saved is None:
                self.applications.pop(application_id, None)
            else:
                self.applications[application_id] = saved
        return Decided(application_id, events, None, messages)

    def may_see(self, account: str, application: Application) -> bool:
        """D45: board members see every application; anyone else those they apply for or are a
        team member of."""
        if self.rules.board.board.member(account) is not None:
            return True
        form = application.form
        return account == form.applicant or account in {m.account for m in form.team}

    def event_message(self, event: Event) -> Outbound:
        wire: AccessEvent = {
            "event_id": event.event_id,
            "application_id": event.application_id,
            "sequence": event.sequence,
            "event_type": event.type,
            "actor": event.actor,
            "occurred_at": event.at,
            "body_json": event_body(event),
        }
        return Outbound(
            self.topics.access_events,
            self.codec.encode(ACCESS_EVENT, wire),
            key=event.application_id.encode(),
        )

    def risk_request_message(self, event: RiskRequested) -> Outbound:
        """D48: the request the pseudonymizer answers, keyed by application."""
        wire: RiskRequest = {
            "request_id": event.request_id,
            "application_id": event.application_id,
            "requested_by": event.actor,
            "requested_at": event.at,
            "draft_policy_json": json.dumps(event.draft_policy, sort_keys=True),
            "variants_json": json.dumps(event.variants),  # in the board's order
        }
        return Outbound(
            self.topics.risk_requests,
            self.codec.encode(RISK_REQUEST, wire),
            key=event.application_id.encode(),
        )

    def receive_risk_report(self, raw: bytes | None, now: dt.datetime) -> Decided:
        """D48: a report from ``access.risk-reports`` as its application's
        ``risk_report_received`` event (and its audit event); nothing for an unreadable report,
        an unknown request or one already kept."""
        try:
            report = self.codec.decode(raw, RISK_REPORT)
            figures = json.loads(report["figures_json"]) if report["figures_json"] else None
        except (DecodeError, ValueError) as error:
            self._log.error("risk report unreadable, skipped", reason=type(error).__name__)
            return Decided("", [], None, [])
        application = self.applications.get(report["application_id"])
        event = report_event(application, report, figures)
        if event is None or application is None:
            return Decided(report["application_id"], [], None, [])
        audit = self.envelopes.audit(
            "access.risk_report_received", [event.application_id, f"risk:{event.request_id}"],
            [event.event_id, f"outcome:{event.outcome}"], now, dataset=application.dataset,
        )  # fmt: skip
        return Decided(event.application_id, [event], None, [self.event_message(event), audit])

    def due_expiries(self, now: dt.datetime) -> list[str]:
        """D45: the approved applications whose end date has come (the clock-driven sweep gives
        each an ``Expire``)."""
        return sorted(
            a.application_id
            for a in self.applications.values()
            if a.status == "approved" and a.valid_until is not None and a.valid_until <= now
        )

    def expire(self, application_id: str, now: dt.datetime) -> Decided:
        return self.decide(application_id, Expire(), now)

    def approval_of(self, dataset: str) -> Application | None:
        """The dataset's approval in force (a dataset or renewal application), if any."""
        approved = [
            a
            for a in self.applications.values()
            if a.status == "approved" and a.kind != "reidentification" and a.dataset == dataset
        ]
        return max(approved, key=lambda a: a.updated_at) if approved else None


def _dataset_of(event: Event) -> str | None:
    form = getattr(event, "form", None)
    if form is None:
        return None
    if form.requested is not None:
        return str(form.requested.dataset)
    return str(form.reidentification.dataset) if form.reidentification else None


class BadRequest(ValueError):
    """A command that could not be read (what is wrong, without quoting the input)."""


def _problems(error: ValidationError) -> str:
    return "; ".join(
        (".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "")
        + str(e["msg"]).removeprefix("Value error, ")
        for e in error.errors()
    )


COMMANDS = (
    "edit", "submit", "review", "vote", "decide", "withdraw", "revoke", "close-out", "visa",
)  # fmt: skip


def read_command(name: str, actor: str, body: Mapping[str, Any]) -> Command:
    """D45: a command on an existing application from its request body (the JSON API's, the
    command line's); the actor is the authenticated account, never a field of the body."""
    try:
        if name == "edit":
            return Edit(actor, ApplicationForm.model_validate(body.get("form")))
        if name == "submit":
            return Submit(actor)
        if name == "review":
            answers = body.get("answers")
            if not isinstance(answers, dict) or not all(
                isinstance(v, bool) for v in answers.values()
            ):
                raise BadRequest("answers: a mapping of checklist item id to true or false")
            return Review(actor, {str(k): v for k, v in answers.items()}, str(body.get("note", "")))
        if name == "vote":
            vote = body.get("vote")
            if vote not in ("approve", "reject", "abstain"):
                raise BadRequest("vote: approve, reject or abstain")
            return Vote(actor, vote)
        if name == "decide":
            outcome = body.get("outcome")
            if outcome not in ("approve", "reject", "return"):
                raise BadRequest("outcome: approve, reject or return")
            conditions = Conditions.model_validate(body.get("conditions") or {})
            return Decide(actor, outcome, conditions, str(body.get("reason", "")))
        if name == "withdraw":
            return Withdraw(actor, str(body.get("reason", "")))
        if name == "revoke":
            return Revoke(actor, str(body.get("reason", "")))
        if name == "close-out":
            return CloseOut(actor, str(body.get("destruction_sha256", "")))
        if name == "visa":
            # D47: the visa's id is made here, never taken from the request.
            return IssueVisa(actor, new_visa_id())
    except ValidationError as error:
        raise BadRequest(_problems(error)) from None
    raise BadRequest(f"unknown command {name!r} (one of {', '.join(COMMANDS)})")


def read_create(
    handler: AccessHandler, application_id: str, actor: str, body: Mapping[str, Any]
) -> Create:
    """D45: a new application from its request body: a dataset application, a renewal
    (``continues``: the application it continues) or a re-identification request (its basis is
    the dataset's approval in force)."""
    kind = body.get("kind", "dataset")
    if kind not in ("dataset", "renewal", "reidentification"):
        raise BadRequest("kind: dataset, renewal or reidentification")
    try:
        form = ApplicationForm.model_validate(body.get("form"))
    except ValidationError as error:
        raise BadRequest(_problems(error)) from None
    basis: Application | None = None
    if kind == "renewal":
        basis = handler.applications.get(str(body.get("continues", "")))
    elif kind == "reidentification" and form.reidentification is not None:
        basis = handler.approval_of(form.reidentification.dataset)
    return Create(application_id, actor, kind, form, basis)


def application_view(application: Application, rules: AccessRules) -> dict[str, Any]:
    """An application as the API and ``access show`` give it, with its DUO match (D47)."""
    approval = application.approval
    match = rules.duo_match_of(application)
    return {
        **application.summary(),
        "sequence": application.sequence,
        "basis": application.basis,
        "pseudonym_domain": application.pseudonym_domain,
        "form": application.form.model_dump(mode="json"),
        "recused": sorted(application.recused),
        "board_sha256": application.board_sha256,
        "reviews": {
            member: {"answers": review.answers, "note": review.note}
            for member, review in application.reviews.items()
        },
        "votes": dict(application.votes),
        "reason": application.reason,
        "approval": None
        if approval is None
        else {
            "approvers": list(approval.approvers),
            "conditions": approval.conditions.model_dump(mode="json"),
            "valid_until": approval.valid_until.isoformat(),
            "policy": approval.policy,
        },
        "destruction_sha256": application.destruction_sha256,
        "duo_match": {"outcome": match.outcome, "reasons": list(match.reasons)},
        "visas": [
            {
                "subject": v.subject,
                "jti": v.jti,
                "issued_at": v.at.isoformat(),
                "expires_at": v.expires_at.isoformat(),
            }
            for v in application.visas
        ],
        "risk_requests": list(application.risk_requests),
        "risk_report": None
        if application.risk_report is None
        else application.risk_report.model_dump(mode="json", exclude={"draft_policy"}),
    }
