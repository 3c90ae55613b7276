"""The fold (D45): any sequence of commands yields only legal states, the state rebuilt from the
events equals the state the commands built, a refused command adds no event, and events survive
their JSON body unchanged. A history that does not follow is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from access import testing
from access.domain.application import (
    FINAL,
    STATUSES,
    Application,
    BrokenHistory,
    Event,
    Expired,
    Submitted,
    event_body,
    event_from_body,
    evolve,
    replay,
)
from access.domain.commands import (
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
from access.domain.forms import Conditions
from hypothesis import given, settings
from hypothesis import strategies as st

APPLICANT = testing.APPLICANT
ACTORS = [APPLICANT, "chair", "rev-a", "rev-b", "rev-c", "rev-applicant-home", "mallory"]
RULES = testing.rules()
FORM = testing.form()

commands = st.one_of(
    st.builds(Submit, st.sampled_from(ACTORS)),
    st.builds(Edit, st.sampled_from(ACTORS), st.just(FORM)),
    st.builds(
        Review,
        st.sampled_from(ACTORS),
        st.sampled_from([testing.CHECKLIST_YES, {"purpose": True}]),
    ),
    st.builds(Vote, st.sampled_from(ACTORS), st.sampled_from(["approve", "reject", "abstain"])),
    st.builds(
        Decide,
        st.sampled_from(ACTORS),
        st.sampled_from(["approve", "reject", "return"]),
        st.just(Conditions(min_k=10)),
        st.sampled_from(["", "a reason"]),
    ),
    st.builds(Withdraw, st.sampled_from(ACTORS)),
    st.builds(Expire),
    st.builds(Revoke, st.sampled_from(ACTORS), st.sampled_from(["", "breach"])),
    st.builds(CloseOut, st.sampled_from(ACTORS), st.sampled_from([testing.SHA, "x"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(commands, st.integers(0, 500)), max_size=30))
def test_any_sequence_of_commands_yields_only_legal_states(
    steps: list[tuple[Command, int]],
) -> None:
    now = testing.NOW
    first = RULES.decide(None, Create("APP-1", APPLICANT, "dataset", FORM), now)
    assert not isinstance(first, Refusal)
    events: list[Event] = list(first)
    state: Application | None = replay(events)
    for command, days in steps:
        now += dt.timedelta(days=days)
        assert state is not None
        before = state
        outcome = RULES.decide(state, command, now)
        if isinstance(outcome, Refusal):
            assert outcome.code and outcome.reason
            assert state == before
            continue
        for event in outcome:
            state = evolve(state, event)
        events += outcome
        assert state is not None and state.status in STATUSES
        assert before.status not in FINAL  # nothing ever leaves a final state
        # votes only from members who reviewed, none from a recused member
        assert set(state.votes) <= set(state.reviews)
        assert not (set(state.reviews) & state.recused)
        if state.status == "approved":
            assert state.approval is not None and state.approval.policy is not None
    assert replay(events) == state
    assert replay(event_from_body(event_body(e)) for e in events) == state
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


def test_a_history_that_does_not_follow_is_refused() -> None:
    created = RULES.decide(None, Create("APP-1", APPLICANT, "dataset", FORM), testing.NOW)
    assert not isinstance(created, Refusal)
    state = replay(created)
    head = {"application_id": "APP-1", "actor": APPLICANT, "at": testing.NOW}
    with pytest.raises(BrokenHistory, match="expected sequence 2"):
        evolve(state, Submitted(**head, sequence=3, board_sha256="x"))  # type: ignore[arg-type]
    with pytest.raises(BrokenHistory, match="does not follow draft"):
        evolve(state, Expired(**head, sequence=2))  # type: ignore[arg-type]
    with pytest.raises(BrokenHistory, match="created twice"):
        evolve(state, created[0])
    with pytest.raises(BrokenHistory, match="no such application"):
        evolve(None, Expired(**head, sequence=2))  # type: ignore[arg-type]
