"""Test doubles of the access service, shipped with it: a board, a complete application form,
and the rules built from them (used by the unit and integration tests alike)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from biostream.contract import Outbound
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from access.adapters.files import shipped_duo_terms
from access.domain.application import Application, evolve
from access.domain.board import BoardConfig, parse_board
from access.domain.commands import (
    AccessRules,
    Command,
    Create,
    Decide,
    Refusal,
    Review,
    Submit,
    Vote,
)
from access.domain.forms import ApplicationForm, ApplicationKind

BOARD_YAML = """
board: test-drb
url: https://drb.test.example
checklist:
  - id: purpose
    question: Is the purpose clear?
  - id: irb
    question: Does the IRB approval cover it?
  - id: minimum-data
    question: Is it the minimum data?
members:
  - {id: chair, institution: KDCA, named_by: KDCA, role: chair}
  - {id: rev-a, institution: SNU, named_by: H001}
  - {id: rev-b, institution: YONSEI, named_by: H002}
  - {id: rev-c, institution: KOREA, named_by: H003}
  - {id: rev-applicant-home, institution: APPLICANT-U, named_by: H001}
voting: {rule: RULE, min_votes: 2}
"""
CHECKLIST_YES = {"purpose": True, "irb": True, "minimum-data": True}
REVIEWERS = ("rev-a", "rev-b", "rev-c")
APPLICANT = "researcher-1"
INSTITUTION = "APPLICANT-U"
SHA = "ab" * 32


def board(rule: str = "majority", min_votes: int = 2) -> BoardConfig:
    text = BOARD_YAML.replace("RULE", rule).replace("min_votes: 2", f"min_votes: {min_votes}")
    return parse_board(text, "test-board.yaml")


def rules(rule: str = "majority", min_votes: int = 2) -> AccessRules:
    return AccessRules(board(rule, min_votes), shipped_duo_terms())


def form(
    kind: ApplicationKind = "dataset", dataset: str = "diabetes-cohort", **changes: Any
) -> ApplicationForm:
    """A complete form of ``kind``; ``changes`` replace top-level fields."""
    raw: dict[str, Any] = {
        "applicant": APPLICANT,
        "institution": INSTITUTION,
        "team": [{"account": "analyst-1", "role": "analyst"}],
        "title": "Type 2 diabetes outcomes",
        "purpose": "Outcomes of type 2 diabetes treatment across hospitals",
        "lay_summary": "How well diabetes treatments work, using records without names.",
        "irb": {"number": "IRB-2026-0042", "date": "2026-11-02", "document_sha256": SHA},
        "duo_codes": ["HMB", "DUO:0000021", "NPUNCU"],
        "attachments": [{"name": "protocol.pdf", "sha256": "cd" * 32}],
    }
    if kind == "reidentification":
        raw["reidentification"] = {
            "dataset": dataset,
            "pseudonyms": ["ps_0001"],
            "reason": "a clinically actionable finding for one participant",
        }
    else:
        raw["requested"] = {
            "dataset": dataset,
            "record_types": ["Condition", "Observation"],
            "fields": ["code_system", "code", "event_date", "value_number", "value_unit",
                       "value_text"],
            "generalisation": {"birth": "age_band_5", "address": "province"},
            "min_k": 5,
            "duration_months": 12,
        }  # fmt: skip
    raw.update(changes)
    return ApplicationForm.model_validate(raw)


NOW = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


def approval_commands(application_id: str, kind: ApplicationKind = "dataset") -> list[Command]:
    """Create, submit, two reviews and approving votes, the chair's approval (12 months)."""
    commands: list[Command] = [
        Create(application_id, APPLICANT, kind, form(kind)), Submit(APPLICANT),
    ]  # fmt: skip
    for reviewer in ("rev-a", "rev-b"):
        commands += [Review(reviewer, CHECKLIST_YES), Vote(reviewer, "approve")]
    return [*commands, Decide("chair", "approve")]


def approved(access_rules: AccessRules, application_id: str = "APP-1") -> Application:
    """An approved dataset application, decided at ``NOW`` (commands a minute apart before)."""
    state: Application | None = None
    commands = approval_commands(application_id)
    for number, command in enumerate(commands):
        at = NOW - dt.timedelta(minutes=len(commands) - 1 - number)
        outcome = access_rules.decide(state, command, at)
        assert not isinstance(outcome, Refusal), outcome
        for event in outcome:
            state = evolve(state, event)
    assert state is not None and state.status == "approved"
    return state


def visa_key_pem() -> bytes:
    """A fresh Ed25519 visa key (PKCS#8 PEM), made at test time, never committed."""
    return Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )


class RecordingWriter:
    """Stands in for the transactional writer where no broker runs: keeps each transaction's
    messages, or fails every write when ``failing``."""

    def __init__(self, failing: bool = False) -> None:
        self.transactions: list[list[Outbound]] = []
        self.failing = failing

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def write(self, messages: Sequence[Outbound]) -> None:
        if self.failing:
            raise ConnectionError("no broker")
        self.transactions.append(list(messages))
