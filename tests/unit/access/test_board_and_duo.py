"""The board file (errors name the file and the problem; the shipped board is valid), the voting
rules, the shipped DUO term list (its hash is the one its README records) and the release
vocabulary the access service shares with the pseudonymizer."""

from __future__ import annotations

import hashlib
import re
import typing
from pathlib import Path

import pytest
from access import testing
from access.adapters.files import load_board, shipped_duo_terms
from access.domain.board import BoardError, Voting, parse_board, recused_members, verdict
from access.domain.duo import duo_problem, parse_duo_csv
from access.domain.forms import Generalisation as RequestedGeneralisation
from biostream import release_vocabulary
from pseudonymizer.domain import policy

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "services/access/access/data"


def test_the_shipped_board_file_is_valid() -> None:
    config = load_board(ROOT / "config/access/board.yaml")
    assert config.board.chairs and config.board.voting.rule in ("majority", "any_veto")
    assert len(config.sha256) == 64


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.replace("rule: majority", "rule: unanimity"), "voting.rule"),
        (lambda t: t.replace("role: chair", "role: member"), "no chair"),
        (lambda t: t.replace("min_votes: 2", "min_votes: 9"), "min_votes is 9"),
        (lambda t: t.replace("id: irb", "id: purpose"), "checklist item id listed twice"),
        (lambda t: t.replace("named_by: H002", "named_by: H002, colour: red"), "colour"),
        (lambda t: t + "\n  : [", "not YAML at line"),
        (lambda t: "- just\n- a list\n", "expected a mapping"),
    ],
)
def test_a_bad_board_file_is_refused_naming_the_file_and_the_problem(
    change: typing.Callable[[str], str], problem: str
) -> None:
    text = change(testing.BOARD_YAML.replace("RULE", "majority"))
    with pytest.raises(BoardError) as error:
        parse_board(text, "config/access/board.yaml")
    assert str(error.value).startswith("config/access/board.yaml: ")
    assert problem in str(error.value)


def test_a_missing_board_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="cannot read"):
        load_board(tmp_path / "nothing.yaml")


def test_recusal_is_by_institution() -> None:
    board = testing.board().board
    assert recused_members(board, "APPLICANT-U") == {"rev-applicant-home"}
    assert recused_members(board, "ELSEWHERE") == frozenset()


@pytest.mark.parametrize(
    ("rule", "votes", "required", "expected"),
    [
        ("majority", {"a": "approve"}, 1, "pending"),  # below min_votes
        ("majority", {"a": "approve", "b": "approve"}, 1, "approve"),
        ("majority", {"a": "approve", "b": "reject"}, 1, "pending"),  # a tie
        ("majority", {"a": "reject", "b": "reject", "c": "approve"}, 1, "reject"),
        ("majority", {"a": "abstain", "b": "abstain"}, 1, "pending"),
        ("majority", {"a": "approve", "b": "abstain"}, 2, "pending"),  # one approver of two
        ("any_veto", {"a": "reject"}, 1, "reject"),  # at once, below min_votes
        ("any_veto", {"a": "approve", "b": "approve"}, 1, "approve"),
        ("any_veto", {"a": "approve", "b": "approve", "c": "reject"}, 1, "reject"),
    ],
)
def test_verdict(rule: str, votes: dict[str, str], required: int, expected: str) -> None:
    voting = Voting(rule=rule, min_votes=2)  # type: ignore[arg-type]
    assert verdict(voting, votes, required) == expected  # type: ignore[arg-type]


def test_the_shipped_duo_file_is_the_one_its_readme_records() -> None:
    digest = hashlib.sha256((DATA / "duo.csv").read_bytes()).hexdigest()
    readme = (DATA / "README.md").read_text()
    assert digest in readme
    assert "CC BY 4.0" in readme and "github.com/EBISPOT/DUO" in readme


def test_duo_terms_by_id_and_shorthand() -> None:
    terms = shipped_duo_terms()
    assert terms.find("DUO:0000042") == terms.find("GRU") == terms.find("gru")
    gru = terms.find("GRU")
    assert gru is not None and gru.kind == "permission" and gru.label == "general research use"
    for modifier in ("IRB", "COL", "PUB", "NPUNCU", "US", "TS", "GS"):
        term = terms.find(modifier)
        assert term is not None and term.kind == "modifier", modifier
    for permission in ("HMB", "DS", "NRES", "POA"):
        term = terms.find(permission)
        assert term is not None and term.kind == "permission", permission
    # the abstract classes are not codes
    assert terms.find("DUO:0000001") is None and terms.find("DUO:0000017") is None
    assert len(terms.terms) == 23


def test_duo_problems() -> None:
    terms = shipped_duo_terms()
    assert duo_problem(["HMB", "IRB"], terms) is None
    assert "unknown DUO code(s) 'DUO:9999999'" in (duo_problem(["DUO:9999999"], terms) or "")
    assert "permission" in (duo_problem(["IRB"], terms) or "")
    with pytest.raises(ValueError, match="columns"):
        parse_duo_csv("a,b\n1,2\n")


def test_the_release_vocabulary_is_the_pseudonymizers() -> None:
    """The access service requests data in the words the pseudonymizer enforces: the same
    objects (one place) and the same generalisation choices."""
    assert policy.RELEASABLE_FIELDS is release_vocabulary.RELEASABLE_FIELDS
    assert policy.RELEASABLE_RECORD_TYPES is release_vocabulary.RELEASABLE_RECORD_TYPES
    theirs = policy.Generalisation.model_fields
    ours = RequestedGeneralisation.model_fields
    for name in ("birth", "sex", "address"):
        assert typing.get_args(theirs[name].annotation) == typing.get_args(ours[name].annotation)
    methods = set(typing.get_args(policy.DateOther.model_fields["method"].annotation))
    methods |= set(typing.get_args(policy.DateShift.model_fields["method"].annotation))
    assert methods == set(typing.get_args(ours["event_date"].annotation))
    shift = policy.DateShift.model_fields["max_days"].metadata
    assert re.search(rf"le={release_vocabulary.MAX_DATE_SHIFT_DAYS}\b", repr(shift))
