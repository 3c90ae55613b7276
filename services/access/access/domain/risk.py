"""D48: the disclosure-risk report in the access service: what is asked, and what is kept.

The access service never sees a clinical or identity record: it asks the pseudonymizer (a
``RiskRequest`` on ``access.risk-requests``) for the figures of the application's draft policy
and of the variants the board's conditions would make, and folds the answer (counts only) into
the application as a ``risk_report_received`` event. Pure: the state and the time come in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from access.domain.application import (
    Application,
    Event,
    RiskReportReceived,
    RiskRequested,
    Submitted,
)
from access.domain.forms import Conditions, RequestedData, add_months, approved_policy

SYSTEM = "system"
# How often a report may be asked for one application (a reviewer's request beyond submission).
MAX_REQUESTS = 20


def board_variants(requested: RequestedData) -> dict[str, dict[str, Any]]:
    """D48: the conditions a board most often weighs, each as a variant of the draft, where it
    would change something: k raised to 10, birth as 5-year age bands, address as the province,
    no postal digits, sex dropped, and all of these together."""
    g = requested.generalisation
    variants: dict[str, dict[str, Any]] = {}
    if requested.min_k < 10:
        variants["k raised to 10"] = {"min_k": 10}
    if g.birth == "year":
        variants["birth as 5-year age bands"] = {"birth": "age_band_5"}
    if g.address == "district":
        variants["address as province"] = {"address": "province"}
    if g.postal_digits > 0:
        variants["no postal digits"] = {"postal_digits": 0}
    if g.sex == "keep":
        variants["sex dropped"] = {"sex": "drop"}
    together: dict[str, Any] = {}
    for changes in variants.values():
        together.update(changes)
    if len(variants) > 1:
        variants["all of these"] = together
    return variants


def draft_policy(application: Application, now: dt.datetime) -> dict[str, Any] | None:
    """D48: the release policy the application asks for (D45's ``approved_policy`` without
    conditions), in the pseudonymizer's words; None for a re-identification request."""
    requested = application.form.requested
    if requested is None:
        return None
    return approved_policy(
        application.application_id, requested, application.form.purpose, Conditions(),
        application.pseudonym_domain or requested.dataset, 0,
        now, add_months(now, requested.duration_months),
    )  # fmt: skip


def risk_request(
    application: Application, actor: str, now: dt.datetime, sequence: int
) -> RiskRequested | None:
    """D48: the request event for an application's report, numbered ``sequence``; None when
    there is nothing to measure (a re-identification request) or it was asked too often."""
    document = draft_policy(application, now)
    if document is None or len(application.risk_requests) >= MAX_REQUESTS:
        return None
    assert application.form.requested is not None
    return RiskRequested(
        application_id=application.application_id, sequence=sequence, actor=actor, at=now,
        request_id=f"{application.application_id}/risk/{len(application.risk_requests) + 1}",
        draft_policy=document, variants=board_variants(application.form.requested),
    )  # fmt: skip


def with_risk_request(
    before: Application | None, events: list[Event], now: dt.datetime
) -> list[Event]:
    """D48: a submission (the first, or after a return) asks for the report in the same
    transaction: the ``risk_requested`` event follows the command's events."""
    from access.domain.application import evolve

    if not any(isinstance(e, Submitted) for e in events):
        return events
    state = before
    for event in events:
        state = evolve(state, event)
    assert state is not None
    asked = risk_request(state, SYSTEM, now, state.sequence + 1)
    return events if asked is None else [*events, asked]


def report_event(
    application: Application | None, report: Mapping[str, Any], figures: dict[str, Any] | None
) -> RiskReportReceived | None:
    """D48: the event that folds a report into its application; None if the application or the
    request is unknown, or that request's report is already kept (a report sent twice)."""
    if application is None or report["request_id"] not in application.risk_requests:
        return None
    kept = application.risk_report
    if kept is not None and kept.request_id == report["request_id"]:
        return None
    if kept is not None and application.risk_requests.index(
        kept.request_id
    ) > application.risk_requests.index(report["request_id"]):
        return None  # an older request's late answer does not replace a newer one
    return RiskReportReceived(
        application_id=application.application_id, sequence=application.sequence + 1,
        actor=SYSTEM, at=report["computed_at"], request_id=report["request_id"],
        outcome=report["outcome"], error_reason=report["error_reason"],
        records_read=report["records_read"], computed_at=report["computed_at"], figures=figures,
    )  # fmt: skip
