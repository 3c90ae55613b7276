"""DUO matching (D47, REMS style): a dataset's own DUO terms against an application's data use
codes: match, no match or needs review with reasons; the catalogue file and its errors; the
outcome in the application's view."""

from __future__ import annotations

from pathlib import Path

import pytest
from access import testing
from access.adapters.files import load_catalogue, shipped_duo_terms
from access.domain.board import BoardError
from access.domain.catalogue import parse_catalogue
from access.domain.commands import AccessRules
from access.domain.duo import duo_match
from access.handlers import application_view

TERMS = shipped_duo_terms()
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("dataset", "requested", "outcome"),
    [
        # the permission hierarchy: NRES > GRU > HMB > DS; GRU > POA
        (["NRES"], ["GRU"], "match"),
        (["GRU"], ["HMB"], "match"),
        (["GRU"], ["POA"], "match"),
        (["HMB"], ["DS"], "match"),
        (["DUO:0000006"], ["HMB"], "match"),  # by id or shorthand alike
        (["HMB"], ["GRU"], "no_match"),
        (["HMB"], ["POA"], "no_match"),
        (["POA"], ["HMB"], "no_match"),
        (["GRU", "NPOA"], ["POA"], "no_match"),  # a prohibition
        (["GRU", "NPOA"], ["HMB"], "match"),
        (["DS"], ["DS"], "needs_review"),  # which disease: the board compares the terms
        # modifiers are conditions the applicant accepts; IRB is met by the IRB approval
        (["HMB", "IRB"], ["HMB"], "match"),
        (["HMB", "NPUNCU"], ["HMB", "NPUNCU"], "match"),
        (["HMB", "NPUNCU"], ["HMB"], "needs_review"),
        (["GRU", "PUB", "COL"], ["HMB", "PUB"], "needs_review"),
        (["HMB", "NPUNCU"], ["GRU"], "no_match"),
    ],
)
def test_dataset_terms_against_requested_codes(
    dataset: list[str], requested: list[str], outcome: str
) -> None:
    assert duo_match(dataset, requested, TERMS).outcome == outcome


def test_each_outcome_says_why() -> None:
    assert duo_match(["HMB", "IRB"], ["HMB"], TERMS).reasons == ()
    missing = duo_match(["HMB", "NPUNCU"], ["HMB"], TERMS)
    assert missing.reasons == ("NPUNCU (not for profit, non commercial use only): not accepted "
                               "by the application",)  # fmt: skip
    refused = duo_match(["HMB", "NPUNCU"], ["GRU"], TERMS)
    assert refused.reasons[0] == "GRU: not allowed by the dataset's HMB"
    assert len(refused.reasons) == 2  # and the modifier still to accept
    assert duo_match(["HMB", "IRB"], ["HMB"], TERMS, irb_approved=False).outcome == "needs_review"
    unconfigured = duo_match(None, ["HMB"], TERMS)
    assert unconfigured.outcome == "needs_review" and "no DUO terms" in unconfigured.reasons[0]


def test_the_shipped_catalogue_reads_and_bad_ones_are_refused_naming_the_dataset() -> None:
    catalogue = load_catalogue(ROOT / "config" / "access" / "catalogue.yaml", TERMS)
    assert catalogue["diabetes-cohort"] == ("HMB", "IRB", "NPUNCU")
    assert load_catalogue(None, TERMS) == {}
    for text, problem in (
        ("datasets: {x-y: {duo: [HMB, WHAT]}}", "x-y: unknown DUO code(s) 'WHAT'"),
        ("datasets: {x-y: {duo: [IRB]}}", "x-y: no DUO data use permission"),
        ("datasets: {Bad Name: {duo: [GRU]}}", "'Bad Name' is not a dataset name"),
        ("datasets: {x-y: [GRU]}", "x-y: expected `duo: [codes]`"),
        ("[1, 2]", "expected a mapping"),
    ):
        with pytest.raises(BoardError) as error:
            parse_catalogue(text, "catalogue.yaml", TERMS)
        assert str(error.value).startswith("catalogue.yaml: ") and problem in str(error.value)


def test_the_application_view_shows_its_match() -> None:
    base = testing.rules()
    catalogue = parse_catalogue("datasets: {diabetes-cohort: {duo: [HMB, IRB]}}", "c", TERMS)
    rules = AccessRules(base.board, base.duo, catalogue)
    state = testing.approved(rules)
    # the test form asks HMB, IRB, NPUNCU: within HMB, the IRB approval given
    assert application_view(state, rules)["duo_match"] == {"outcome": "match", "reasons": []}
    assert application_view(state, base)["duo_match"]["outcome"] == "needs_review"
