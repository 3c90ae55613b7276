"""D48: a disclosure-risk request answered from the retained data: what the report says.

The handler's half of ``pseudonymizer risk`` (the Kafka loop is ``adapters/risk_reports.py``):
a ``RiskRequest`` and the retained data in, a ``RiskReport`` out, or a report naming why it
could not be computed. No Kafka, no clock (``now`` is an argument).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from biostream.contracts import RiskReport, RiskRequest

from pseudonymizer.domain.consent import Consent
from pseudonymizer.domain.release import PersonFacts
from pseudonymizer.domain.risk import (
    RetainedRecord,
    VariantError,
    disclosure_risk,
    draft_policy,
)
from pseudonymizer.domain.rotation import deciding_ref

MAX_VARIANTS = 12


@dataclass(slots=True)
class Retained:
    """What the report is computed over: the clinical records retained (only what places them)
    and, from the service's state changelog, each patient_ref's newest facts and the consent."""

    records: list[RetainedRecord] = field(default_factory=list)
    facts: dict[str, PersonFacts] = field(default_factory=dict)
    withdrawn: dict[str, list[str]] = field(default_factory=dict)
    granted: dict[str, list[str]] = field(default_factory=dict)

    def facts_of(self, record: RetainedRecord) -> PersonFacts | None:
        """D33: the record's own ref's decision, else its newest older ref's (as the release)."""
        ref = deciding_ref(
            record.patient_ref, record.previous_patient_refs, self.facts.__contains__
        )
        return None if ref is None else self.facts[ref]

    def consent_of(self, person_id: str) -> Consent:
        return Consent(self.withdrawn.get(person_id), self.granted.get(person_id))


def read_variants(raw: str) -> dict[str, dict[str, Any]]:
    """D48: the request's variants, label -> conditions; a malformed list is ``VariantError``."""
    try:
        variants = json.loads(raw or "{}")
    except ValueError:
        raise VariantError("variants are not JSON") from None
    if not isinstance(variants, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in variants.items()
    ):
        raise VariantError("variants must map a label to its conditions")
    if len(variants) > MAX_VARIANTS:
        raise VariantError(f"at most {MAX_VARIANTS} variants")
    return variants


def answer(
    request: RiskRequest,
    retained: Callable[[], Retained],
    now: dt.datetime,
) -> RiskReport:
    """D48: the report of one request. The draft and the variants are checked before the
    retained data is used; a report that cannot be computed says why (``DRAFT_INVALID``,
    ``VARIANT_INVALID``)."""
    try:
        document = json.loads(request["draft_policy_json"])
        if not isinstance(document, dict):
            raise VariantError("the draft policy is not a JSON object")
        draft = draft_policy(document)
    except (ValueError, VariantError) as error:
        return failed(request, "DRAFT_INVALID", str(error)[:500], now)
    try:
        variants = read_variants(request["variants_json"])
        data = retained()
        figures = disclosure_risk(data.records, data.facts_of, data.consent_of, draft, variants)
    except VariantError as error:
        return failed(request, "VARIANT_INVALID", str(error)[:500], now)
    return RiskReport(
        request_id=request["request_id"], application_id=request["application_id"],
        computed_at=now, outcome="COMPUTED", error_reason=None, records_read=len(data.records),
        figures_json=json.dumps(figures.as_json(), sort_keys=True, separators=(",", ":")),
    )  # fmt: skip


def failed(request: RiskRequest, outcome: str, reason: str, now: dt.datetime) -> RiskReport:
    """D48: the report of a request that could not be answered: the reason code and a reason
    that names no record (a draft's or a variant's problem, a read that stalled, an error's
    type)."""
    return RiskReport(
        request_id=request["request_id"], application_id=request["application_id"],
        computed_at=now, outcome=outcome, error_reason=reason, records_read=0, figures_json=None,
    )  # fmt: skip


def numbers_only(figures: Mapping[str, Any] | Iterable[Any] | Any, labels: set[str]) -> bool:
    """D48: a report's figures hold numbers, this module's bucket labels and field names, the
    request's own variant labels and condition words, nothing else (the canary test's rule)."""
    if isinstance(figures, Mapping):
        return all(numbers_only(v, labels) for v in figures.values())
    if isinstance(figures, list | tuple):
        return all(numbers_only(v, labels) for v in figures)
    return isinstance(figures, int | float | bool) or figures is None or figures in labels
