"""The shared data review board as the programme configures it (one YAML file, D45): its
checklist, its members and its voting rule; and what the rule says about a set of votes.

Parsing is pure (the text and the file's name are arguments); the errors name the file and the
problem, and a board that could not be applied exactly is refused at start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

IDENTIFIER = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
INSTITUTION = r"^[A-Z0-9][A-Z0-9_-]{0,31}$"
VoteChoice = Literal["approve", "reject", "abstain"]
Verdict = Literal["approve", "reject", "pending"]


class BoardError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChecklistItem(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    question: str = Field(min_length=1)


class Member(_Strict):
    """A board member: an account id (not a name), the institution they work at (a reviewer
    from the applicant's institution is recused), and the hospital that named them."""

    id: str = Field(pattern=IDENTIFIER)
    institution: str = Field(pattern=INSTITUTION)
    named_by: str = Field(pattern=INSTITUTION)
    role: Literal["member", "chair"] = "member"


class Voting(_Strict):
    rule: Literal["majority", "any_veto"]
    min_votes: int = Field(ge=1, le=50)


class Board(_Strict):
    board: str = Field(pattern=IDENTIFIER)
    # D47: the board's public address, the source its visas name (none: no visas issued)
    url: str | None = Field(default=None, pattern=r"^https://[^\s]+$")
    checklist: tuple[ChecklistItem, ...] = Field(min_length=1)
    members: tuple[Member, ...] = Field(min_length=1)
    voting: Voting

    @model_validator(mode="after")
    def _consistent(self) -> Board:
        for what, ids in (
            ("checklist item", [item.id for item in self.checklist]),
            ("member", [member.id for member in self.members]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{what} id listed twice: {twice}")
        if not any(member.role == "chair" for member in self.members):
            raise ValueError("members: no chair (role: chair) to record decisions")
        if len(self.members) < self.voting.min_votes:
            raise ValueError(
                f"voting.min_votes is {self.voting.min_votes} but the board has only "
                f"{len(self.members)} members"
            )
        return self

    @property
    def chairs(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.role == "chair")

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    @property
    def checklist_ids(self) -> frozenset[str]:
        return frozenset(item.id for item in self.checklist)


@dataclass(frozen=True)
class BoardConfig:
    """The board and the SHA-256 of the file it was read from (each submission records which
    board version it was reviewed under)."""

    board: Board
    sha256: str


def parse_board(text: str, source: str) -> BoardConfig:
    """D45: the board file, validated; ``source`` (the file's name) opens every error."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BoardError(f"{source}: not YAML{where} ({type(error).__name__})") from None
    if not isinstance(raw, dict):
        raise BoardError(f"{source}: expected a mapping with board, checklist, members, voting")
    try:
        board = Board.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            (".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "")
            + str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        )
        raise BoardError(f"{source}: {problems}") from None
    return BoardConfig(board, hashlib.sha256(text.encode()).hexdigest())


def recused_members(board: Board, applicant_institution: str) -> frozenset[str]:
    """D45: a member who works at the applicant's institution does not review, vote on or
    decide its application: recused automatically when it is submitted."""
    return frozenset(m.id for m in board.members if m.institution == applicant_institution)


def verdict(
    voting: Voting, votes: Mapping[str, VoteChoice], required_approvers: int = 1
) -> Verdict:
    """D45: what the board's rule says about the votes cast (recused members cannot have voted).

    ``majority``: once at least ``min_votes`` members voted, approve if more approved than
    rejected, reject if more rejected than approved, otherwise (a tie, or only abstentions)
    pending. ``any_veto``: one reject rejects at once; approve once ``min_votes`` voted with no
    reject. Either way approval needs ``required_approvers`` distinct approving members (two for
    re-identification)."""
    approvals = sum(1 for v in votes.values() if v == "approve")
    rejections = sum(1 for v in votes.values() if v == "reject")
    if voting.rule == "any_veto" and rejections:
        return "reject"
    if len(votes) < voting.min_votes:
        return "pending"
    if voting.rule == "majority" and rejections > approvals:
        return "reject"
    if approvals > rejections and approvals >= required_approvers:
        return "approve"
    return "pending"
