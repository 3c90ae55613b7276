"""Reading the ledger's events: trace one record, the processing record per dataset, and
reconciliation of every published hospital message.

Events arrive decoded, each with its ledger sequence. Every function here is pure.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from biostream.contracts import AuditEvent

Logged = tuple[int, AuditEvent]  # (ledger sequence, event)

INGEST_DEAD_LETTERED = frozenset({"ingest.rejected", "ingest.failed"})
SETTLING = frozenset(
    {
        "linkage.linked", "linkage.confirmed", "linkage.rejected", "linkage.failed",
        "pseudonymizer.released", "pseudonymizer.withheld", "pseudonymizer.rejected",
        "pseudonymizer.failed",
    }
)  # fmt: skip


def trace(events: Sequence[Logged], reference: str, max_rounds: int = 10) -> list[Logged]:
    """Every event about ``reference`` and about what it became or came from.

    References (source positions, record ids, decision ids, curated ids) connect events through
    their inputs and outputs; the closure from one reference is the record's history: the source
    message, the records it was split into, their link decisions, releases and withholdings.
    """
    by_ref: dict[str, list[int]] = defaultdict(list)
    for index, (_, event) in enumerate(events):
        for ref in (*event["inputs"], *event["outputs"]):
            by_ref[ref].append(index)
    seen_refs = {reference}
    frontier = {reference}
    hits: set[int] = set()
    for _ in range(max_rounds):
        new_refs: set[str] = set()
        for ref in frontier:
            for index in by_ref.get(ref, ()):
                if index in hits:
                    continue
                hits.add(index)
                _, event = events[index]
                new_refs.update(r for r in (*event["inputs"], *event["outputs"]) if r)
        frontier = new_refs - seen_refs
        seen_refs |= frontier
        if not frontier:
            break
    return [events[i] for i in sorted(hits)]


@dataclass
class DatasetReport:
    """The processing record Korean law asks for (PIPA pseudonymization: purpose, items, history
    of use, recipients, period), for one dataset."""

    dataset: str
    purposes: set[str] = field(default_factory=set)
    policy_versions: set[str] = field(default_factory=set)
    released: int = 0
    withheld: Counter[str] = field(default_factory=Counter)
    held_pending: int = 0
    released_by_hospital: Counter[str] = field(default_factory=Counter)
    principals: set[str] = field(default_factory=set)
    first_release: dt.datetime | None = None
    last_release: dt.datetime | None = None
    items: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "purpose": sorted(self.purposes),
            "policy_versions": sorted(self.policy_versions),
            "items_released": self.items,
            "recipients": self.recipients,
            "period": {
                "from": self.first_release.isoformat() if self.first_release else None,
                "to": self.last_release.isoformat() if self.last_release else None,
            },
            "counts": {
                "released": self.released,
                "withheld": sum(self.withheld.values()),
                "withheld_by_reason": dict(sorted(self.withheld.items())),
                "held_awaiting_link": self.held_pending,
                "released_by_hospital": dict(sorted(self.released_by_hospital.items())),
            },
            "processed_by": sorted(self.principals),
        }


def dataset_reports(
    events: Iterable[Logged], policies: dict[str, dict[str, Any]] | None = None
) -> dict[str, DatasetReport]:
    """Per dataset, from pseudonymizer events; ``policies`` (dataset -> release policy JSON) adds
    the approved purpose, items and recipient project the events do not carry."""
    reports: dict[str, DatasetReport] = {}
    held: dict[str, set[str]] = defaultdict(set)
    for _, event in events:
        dataset = event["dataset"]
        if not dataset or not event["action"].startswith("pseudonymizer."):
            continue
        report = reports.setdefault(dataset, DatasetReport(dataset))
        report.principals.add(event["principal"])
        if event["purpose"]:
            report.policy_versions.add(event["purpose"])
        action = event["action"]
        records = set(event["inputs"])
        if action == "pseudonymizer.held":
            held[dataset] |= records
        elif action == "pseudonymizer.released":
            held[dataset] -= records
            report.released += 1
            report.released_by_hospital[event["hospital"] or "?"] += 1
            at = event["occurred_at"]
            report.first_release = min(report.first_release or at, at)
            report.last_release = max(report.last_release or at, at)
        elif action == "pseudonymizer.withheld":
            held[dataset] -= records
            report.withheld[event["reason_code"] or "?"] += 1
    for dataset, report in reports.items():
        report.held_pending = len(held[dataset])
        policy = (policies or {}).get(dataset)
        if policy:
            report.purposes.add(str(policy.get("purpose", "")))
            report.items = sorted(str(t) for t in policy.get("resource_types", []))
            approval = policy.get("approval_ref")
            report.recipients = [f"research project approved under {approval}"]
    return reports


@dataclass
class Reconciliation:
    """What became of every published hospital message (by source position topic/partition/offset)."""

    published: int = 0
    curated: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # accepted, nothing of it released by policy
    held: list[str] = field(default_factory=list)  # accepted, clinical records awaiting a link
    linked_only: list[str] = field(default_factory=list)  # identity data only: linked, no release
    dead_lettered: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unaccounted: dict[str, str] = field(default_factory=dict)  # source -> what is missing

    @property
    def complete(self) -> bool:
        return not self.unaccounted

    def counts(self) -> dict[str, int]:
        return {
            "published": self.published,
            "curated": len(self.curated),
            "withheld": len(self.withheld),
            "held": len(self.held),
            "linked_only": len(self.linked_only),
            "dead_lettered": len(self.dead_lettered),
            "duplicates": len(self.duplicates),
            "unaccounted": len(self.unaccounted),
        }


def reconcile(published: Iterable[str], events: Iterable[Logged]) -> Reconciliation:
    """Each published message must have an ingest outcome, and each record ingest made of it an
    outcome downstream (linked, released, withheld, held, or dead-lettered)."""
    ingest: dict[str, AuditEvent] = {}
    settled: dict[str, str] = {}
    held: set[str] = set()
    for _, event in events:
        action = event["action"]
        if action.startswith("ingest.") and event["inputs"]:
            ingest.setdefault(event["inputs"][0], event)
        elif action in SETTLING:
            for ref in event["inputs"]:
                settled[ref] = action
                held.discard(ref)
        elif action == "pseudonymizer.held":
            held.update(r for r in event["inputs"] if r not in settled)
    result = Reconciliation()
    for source in published:
        result.published += 1
        outcome = ingest.get(source)
        if outcome is None:
            result.unaccounted[source] = "no ingest event"
            continue
        action = outcome["action"]
        if action in INGEST_DEAD_LETTERED:
            result.dead_lettered.append(source)
        elif action == "ingest.duplicate":
            result.duplicates.append(source)
        elif action == "ingest.accepted":
            outcomes = [settled.get(ref) for ref in outcome["outputs"]]
            missing = [
                ref
                for ref, o in zip(outcome["outputs"], outcomes, strict=True)
                if o is None and ref not in held
            ]
            if missing:
                result.unaccounted[source] = f"no downstream outcome for {len(missing)} record(s)"
            elif any(ref in held for ref in outcome["outputs"]):
                result.held.append(source)
            elif "pseudonymizer.released" in outcomes:
                result.curated.append(source)
            elif "pseudonymizer.withheld" in outcomes:
                result.withheld.append(source)
            else:
                result.linked_only.append(source)
        else:
            result.unaccounted[source] = f"unexpected ingest action {action}"
    return result
