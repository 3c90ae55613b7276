"""The access rules (D45): every transition, every refusal the issue names, recusal, the voting
rules, conditions applied to the approved policy, expiry, revocation, close-out, renewal and
re-identification's two distinct approvers."""

from __future__ import annotations

import datetime as dt

import pytest
from access import testing
from access.domain.application import Application, Event, evolve
from access.domain.commands import (
    AccessRules,
    CloseOut,
    Command,
    Create,
    Decide,
    Edit,
    Expire,
    Refusal,
    Review,
    Revoke,
    Submit,
    Vote,
    Withdraw,
)
from access.domain.forms import Conditions, add_months
from pydantic import ValidationError

NOW = testing.NOW
APPLICANT = testing.APPLICANT


def run(
    rules: AccessRules, state: Application | None, *commands: Command
) -> tuple[Application | None, list[Event]]:
    """Applies each command, failing on a refusal; returns the state and every event."""
    events: list[Event] = []
    for number, command in enumerate(commands):
        outcome = rules.decide(state, command, NOW + dt.timedelta(minutes=number))
        assert not isinstance(outcome, Refusal), outcome
        events += outcome
        for event in outcome:
            state = evolve(state, event)
    return state, events


def refused(rules: AccessRules, state: Application | None, command: Command) -> Refusal:
    outcome = rules.decide(state, command, NOW)
    assert isinstance(outcome, Refusal), outcome
    return outcome


def submitted(rules: AccessRules, **form_changes: object) -> Application:
    state, _ = run(
        rules,
        None,
        Create("APP-1", APPLICANT, "dataset", testing.form(**form_changes)),  # type: ignore[arg-type]
        Submit(APPLICANT),
    )
    assert state is not None
    return state


def reviewed(rules: AccessRules, votes: dict[str, str]) -> Application:
    state: Application | None = submitted(rules)
    for member, vote in votes.items():
        state, _ = run(
            rules,
            state,
            Review(member, testing.CHECKLIST_YES),
            Vote(member, vote),  # type: ignore[arg-type]
        )
    assert state is not None
    return state


@pytest.fixture
def rules() -> AccessRules:
    return testing.rules()


def test_an_application_goes_from_draft_to_approved_with_its_policy(rules: AccessRules) -> None:
    state = reviewed(rules, {"rev-a": "approve", "rev-b": "approve"})
    assert state.status == "under_review"
    state, events = run(rules, state, Decide("chair", "approve", Conditions(min_k=10)))
    assert state is not None and state.status == "approved"
    approved = events[-1]
    assert approved.type == "approved" and approved.approvers == ("rev-a", "rev-b")  # type: ignore[union-attr]
    assert state.approval is not None and state.approval.policy is not None
    policy = state.approval.policy
    assert policy["approval_ref"] == "APP-1" and policy["dataset"] == "diabetes-cohort"
    assert policy["k_anonymity"] == {"min_k": 10}
    assert policy["pseudonym_domain"] == "diabetes-cohort"
    assert state.valid_until == add_months(NOW + dt.timedelta(minutes=0), 12)


def test_each_event_is_numbered_in_its_application(rules: AccessRules) -> None:
    state = reviewed(rules, {"rev-a": "approve"})
    assert state.sequence == 4  # created, submitted, reviewed, voted


def test_submission_recuses_members_of_the_applicants_institution(rules: AccessRules) -> None:
    state = submitted(rules)
    assert state.recused == {"rev-applicant-home"}
    assert state.board_sha256 == rules.board.sha256


def test_a_recused_or_unknown_reviewer_is_refused(rules: AccessRules) -> None:
    state = submitted(rules)
    recused = refused(rules, state, Review("rev-applicant-home", testing.CHECKLIST_YES))
    assert recused.code == "RECUSED_REVIEWER" and "recused" in recused.reason
    under_review, _ = run(rules, state, Review("rev-a", testing.CHECKLIST_YES))
    assert refused(rules, under_review, Vote("rev-applicant-home", "approve")).code == (
        "RECUSED_REVIEWER"
    )
    unknown = refused(rules, under_review, Vote("mallory", "approve"))
    assert unknown.code == "UNKNOWN_REVIEWER" and "not a member" in unknown.reason


def test_a_vote_needs_the_completed_checklist_first(rules: AccessRules) -> None:
    state, _ = run(rules, submitted(rules), Review("rev-a", testing.CHECKLIST_YES))
    assert refused(rules, state, Vote("rev-b", "approve")).code == "CHECKLIST_FIRST"


def test_the_checklist_is_answered_item_by_item(rules: AccessRules) -> None:
    state = submitted(rules)
    missing = refused(rules, state, Review("rev-a", {"purpose": True}))
    assert missing.code == "CHECKLIST_INCOMPLETE" and "irb" in missing.reason
    extra = refused(rules, state, Review("rev-a", {**testing.CHECKLIST_YES, "vibes": True}))
    assert extra.code == "CHECKLIST_INCOMPLETE" and "vibes" in extra.reason


def test_one_review_and_one_vote_per_member(rules: AccessRules) -> None:
    state = reviewed(rules, {"rev-a": "approve"})
    assert refused(rules, state, Review("rev-a", testing.CHECKLIST_YES)).code == "ALREADY_REVIEWED"
    assert refused(rules, state, Vote("rev-a", "reject")).code == "ALREADY_VOTED"


def test_an_unknown_duo_code_is_refused_with_the_code(rules: AccessRules) -> None:
    form = testing.form(duo_codes=["HMB", "XYZ"])
    outcome = refused(rules, None, Create("APP-1", APPLICANT, "dataset", form))
    assert outcome.code == "UNKNOWN_DUO_CODE" and "'XYZ'" in outcome.reason


def test_duo_codes_need_a_permission_and_no_repeat(rules: AccessRules) -> None:
    only_modifiers = testing.form(duo_codes=["IRB", "PUB"])
    assert refused(rules, None, Create("A", APPLICANT, "dataset", only_modifiers)).code == (
        "INVALID_DUO_CODES"
    )
    twice = testing.form(duo_codes=["GRU", "DUO:0000042"])
    assert "twice" in refused(rules, None, Create("A", APPLICANT, "dataset", twice)).reason


def test_a_decision_on_a_withdrawn_application_is_refused(rules: AccessRules) -> None:
    state, _ = run(rules, submitted(rules), Withdraw(APPLICANT, "funding ended"))
    assert state is not None and state.status == "withdrawn"
    for outcome in ("approve", "reject", "return"):
        refusal = refused(rules, state, Decide("chair", outcome))  # type: ignore[arg-type]
        assert refusal.code == "APPLICATION_WITHDRAWN" and "withdrawn" in refusal.reason


def test_only_the_chair_decides_and_only_when_the_rule_is_met(rules: AccessRules) -> None:
    state = reviewed(rules, {"rev-a": "approve"})
    assert refused(rules, state, Decide("rev-a", "approve")).code == "NOT_CHAIR"
    not_met = refused(rules, state, Decide("chair", "approve"))
    assert not_met.code == "RULE_NOT_MET" and "1 cast" in not_met.reason
    state, _ = run(rules, state, Review("rev-b", testing.CHECKLIST_YES), Vote("rev-b", "reject"))
    # a tie under majority: neither approve nor reject
    assert refused(rules, state, Decide("chair", "approve")).code == "RULE_NOT_MET"
    assert refused(rules, state, Decide("chair", "reject", reason="no")).code == "RULE_NOT_MET"
    state, _ = run(rules, state, Review("rev-c", testing.CHECKLIST_YES), Vote("rev-c", "reject"))
    assert refused(rules, state, Decide("chair", "approve")).code == "RULE_NOT_MET"
    assert refused(rules, state, Decide("chair", "reject")).code == "REASON_REQUIRED"
    state, _ = run(rules, state, Decide("chair", "reject", reason="risk too high"))
    assert state is not None and state.status == "rejected" and state.reason == "risk too high"


def test_any_veto_rejects_on_one_reject() -> None:
    rules = testing.rules("any_veto", min_votes=2)
    state = reviewed(rules, {"rev-a": "approve", "rev-b": "approve", "rev-c": "reject"})
    assert refused(rules, state, Decide("chair", "approve")).code == "RULE_NOT_MET"
    state, _ = run(rules, state, Decide("chair", "reject", reason="vetoed"))
    assert state is not None and state.status == "rejected"


def test_return_for_changes_then_a_new_round(rules: AccessRules) -> None:
    state = reviewed(rules, {"rev-a": "approve"})
    assert refused(rules, state, Decide("chair", "return")).code == "REASON_REQUIRED"
    state, _ = run(rules, state, Decide("chair", "return", reason="narrow the fields"))
    assert state is not None and state.status == "returned" and state.reason == "narrow the fields"
    narrower = testing.form(
        requested={**testing.form().requested.model_dump(), "fields": ["code"]}  # type: ignore[union-attr]
    )
    state, _ = run(rules, state, Edit(APPLICANT, narrower), Submit(APPLICANT))
    assert state is not None and state.status == "submitted"
    assert state.votes == {} and state.reviews == {}  # the earlier round does not count


def test_only_the_applicant_edits_submits_withdraws_and_closes_out(rules: AccessRules) -> None:
    state, _ = run(rules, None, Create("APP-1", APPLICANT, "dataset", testing.form()))
    for command in (Submit("rev-a"), Withdraw("rev-a"), Edit("rev-a", testing.form())):
        assert refused(rules, state, command).code == "NOT_APPLICANT"
    other = testing.form().model_copy(update={"applicant": "someone-else"})
    assert refused(rules, None, Create("APP-2", APPLICANT, "dataset", other)).code == (
        "NOT_APPLICANT"
    )


def test_every_illegal_transition_is_refused_by_name(rules: AccessRules) -> None:
    draft, _ = run(rules, None, Create("APP-1", APPLICANT, "dataset", testing.form()))
    for command in (
        Review("rev-a", testing.CHECKLIST_YES),
        Vote("rev-a", "approve"),
        Decide("chair", "approve"),
        Expire(),
        Revoke("chair", "x"),
        CloseOut(APPLICANT, testing.SHA),
    ):
        refusal = refused(rules, draft, command)
        assert refusal.code == "ILLEGAL_TRANSITION" and "draft" in refusal.reason
    assert refused(rules, draft, Create("APP-1", APPLICANT, "dataset", testing.form())).code == (
        "APPLICATION_EXISTS"
    )
    assert refused(rules, None, Submit(APPLICANT)).code == "UNKNOWN_APPLICATION"
    submitted_state = submitted(rules)
    assert refused(rules, submitted_state, Decide("chair", "approve")).code == "ILLEGAL_TRANSITION"


def approved(rules: AccessRules, conditions: Conditions | None = None) -> Application:
    state = reviewed(rules, {"rev-a": "approve", "rev-b": "approve"})
    decision = Decide("chair", "approve", conditions or Conditions())
    state, _ = run(rules, state, decision)  # type: ignore[assignment]
    assert state is not None
    return state


def test_conditions_narrow_the_approved_policy(rules: AccessRules) -> None:
    conditions = Conditions(
        min_k=10, no_free_text=True, expires_in_months=6, fields_removed=frozenset({"value_unit"}),
        consent_required=True, text=("annual report to the board",),
    )  # fmt: skip
    state = approved(rules, conditions)
    assert state.approval is not None and state.approval.policy is not None
    policy = state.approval.policy
    assert "value_text" not in policy["fields"] and "value_unit" not in policy["fields"]
    assert policy["free_text"] == "drop" and policy["consent_required"] is True
    assert policy["k_anonymity"]["min_k"] == 10
    # six months, not the twelve requested
    decided = state.updated_at
    assert state.valid_until == add_months(decided, 6)
    assert policy["valid_until"] == add_months(decided, 6).isoformat()


def test_conditions_name_only_known_fields() -> None:
    with pytest.raises(ValidationError, match="unknown fields"):
        Conditions(fields_removed=frozenset({"name"}))


def test_expiry_only_at_the_end_date(rules: AccessRules) -> None:
    state = approved(rules)
    assert state.valid_until is not None
    early = rules.decide(state, Expire(), state.valid_until - dt.timedelta(seconds=1))
    assert isinstance(early, Refusal) and early.code == "NOT_YET_EXPIRED"
    events = rules.decide(state, Expire(), state.valid_until)
    assert not isinstance(events, Refusal)
    assert events[0].type == "expired"


def test_revocation_by_the_chair_then_close_out(rules: AccessRules) -> None:
    state = approved(rules)
    assert refused(rules, state, Revoke("rev-a", "breach")).code == "NOT_CHAIR"
    assert refused(rules, state, Revoke("chair", " ")).code == "REASON_REQUIRED"
    state, _ = run(rules, state, Revoke("chair", "terms breached"))
    assert state is not None and state.status == "revoked"
    assert refused(rules, state, CloseOut(APPLICANT, "not-a-hash")).code == "INVALID_ATTESTATION"
    state, _ = run(rules, state, CloseOut(APPLICANT, testing.SHA))
    assert state is not None and state.status == "closed"
    assert state.destruction_sha256 == testing.SHA


def test_a_renewal_continues_the_same_dataset_and_pseudonyms(rules: AccessRules) -> None:
    basis = approved(rules)
    renewal_form = testing.form()
    state, _ = run(rules, None, Create("APP-2", APPLICANT, "renewal", renewal_form, basis))
    assert state is not None and state.basis == "APP-1"
    assert state.pseudonym_domain == basis.pseudonym_domain
    other = testing.form(dataset="another-dataset")
    assert refused(rules, None, Create("APP-3", APPLICANT, "renewal", other, basis)).code == (
        "NO_BASIS"
    )
    assert refused(rules, None, Create("APP-3", APPLICANT, "renewal", renewal_form)).code == (
        "NO_BASIS"
    )
    rejected = reviewed(rules, {"rev-a": "reject", "rev-b": "reject"})
    rejected, _ = run(rules, rejected, Decide("chair", "reject", reason="no"))  # type: ignore[assignment]
    assert refused(rules, None, Create("APP-3", APPLICANT, "renewal", renewal_form, rejected))


def test_reidentification_needs_two_distinct_approvers() -> None:
    rules = testing.rules(min_votes=1)
    basis = approved(rules)
    form = testing.form("reidentification")
    state, _ = run(
        rules, None, Create("RE-1", APPLICANT, "reidentification", form, basis), Submit(APPLICANT)
    )
    state, _ = run(rules, state, Review("rev-a", testing.CHECKLIST_YES), Vote("rev-a", "approve"))
    one = refused(rules, state, Decide("chair", "approve"))
    assert one.code == "RULE_NOT_MET" and "2 distinct approvers" in one.reason
    state, _ = run(rules, state, Review("rev-b", testing.CHECKLIST_YES), Vote("rev-b", "approve"))
    state, _ = run(rules, state, Decide("chair", "approve"))
    assert state is not None and state.status == "approved"
    assert state.approval is not None and state.approval.policy is None
    assert state.approval.approvers == ("rev-a", "rev-b")


def test_reidentification_needs_an_approval_in_force(rules: AccessRules) -> None:
    form = testing.form("reidentification")
    assert refused(rules, None, Create("RE-1", APPLICANT, "reidentification", form)).code == (
        "NO_BASIS"
    )
    with_data = testing.form(reidentification=None)
    wrong_kind = refused(rules, None, Create("RE-1", APPLICANT, "reidentification", with_data))
    assert wrong_kind.code == "INVALID_FORM"


def test_a_refused_command_changes_nothing(rules: AccessRules) -> None:
    state = submitted(rules)
    before = state
    refused(rules, state, Vote("mallory", "approve"))
    assert state == before  # frozen: a refusal returns no events, and there is nothing else


def test_unknown_vocabulary_in_the_request_is_refused_by_the_form() -> None:
    with pytest.raises(ValidationError, match="unknown fields"):
        testing.form(requested={"dataset": "x-y", "record_types": ["Condition"], "fields": ["rrn"]})
    with pytest.raises(ValidationError, match="unknown record types"):
        testing.form(requested={"dataset": "x-y", "record_types": ["Genome"], "fields": ["code"]})
