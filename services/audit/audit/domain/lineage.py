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

from audit.domain.approvals import approval_records

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


POLICY_IN_FORCE = "pseudonymizer.policy_in_force"
FROM_LEDGER = "ledger"
FROM_POLICY_FILE = "policy-file"
UNKNOWN = "unknown"


@dataclass
class PolicyPeriod:
    """One release policy for the time it was in force, and what was released under it.

    ``source`` says where its purpose, approval and items come from: ``ledger`` (the
    pseudonymizer's ``pseudonymizer.policy_in_force`` event, D23c), ``policy-file`` (a ledger
    written before D23c: the policy file of the same version, given to ``audit report``), or
    ``unknown`` (neither says).
    """

    policy_version: str
    source: str
    digest: str | None = None
    approval_ref: str | None = None
    purpose: str | None = None
    record_types: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    in_force_from: dt.datetime | None = None
    superseded_at: dt.datetime | None = None
    released: int = 0
    first_release: dt.datetime | None = None
    last_release: dt.datetime | None = None

    @classmethod
    def announced(cls, event: AuditEvent) -> PolicyPeriod:
        policy = event["policy"]
        assert policy is not None
        return cls(
            policy["policy_version"], FROM_LEDGER, policy["digest"], policy["approval_ref"],
            policy["purpose"], sorted(policy["record_types"]), sorted(policy["fields"]),
            in_force_from=event["occurred_at"],
        )  # fmt: skip

    @classmethod
    def not_announced(cls, policy_version: str, policy: dict[str, Any] | None) -> PolicyPeriod:
        """A version the ledger never announced: the policy file's content only when the file is
        of that very version (today's file may say something else than the one then in force)."""
        if policy is None or _file_version(policy) != policy_version:
            return cls(policy_version, UNKNOWN)
        return cls(
            policy_version, FROM_POLICY_FILE, None,
            str(policy.get("approval_ref", "")) or None, str(policy.get("purpose", "")) or None,
            sorted(str(t) for t in policy.get("record_types", [])),
            sorted(str(f) for f in policy.get("fields", [])),
        )  # fmt: skip

    def release(self, at: dt.datetime) -> None:
        self.released += 1
        self.first_release = min(self.first_release or at, at)
        self.last_release = max(self.last_release or at, at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "source": self.source,
            "digest": self.digest,
            "approval_ref": self.approval_ref,
            "purpose": self.purpose,
            "items": {"record_types": self.record_types, "fields": self.fields},
            "in_force": {"from": _iso(self.in_force_from), "until": _iso(self.superseded_at)},
            "released": self.released,
            "period": {"from": _iso(self.first_release), "to": _iso(self.last_release)},
        }


def _file_version(policy: dict[str, Any]) -> str:
    return f"{policy.get('dataset')}@{policy.get('version')}"


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at else None


@dataclass
class DatasetReport:
    """The processing record Korean law asks for (PIPA pseudonymization: purpose, items, history
    of use, recipients, period), for one dataset, per policy version in force (D23c)."""

    dataset: str
    policies: list[PolicyPeriod] = field(default_factory=list)
    policy_versions: set[str] = field(default_factory=set)
    released: int = 0
    withheld: Counter[str] = field(default_factory=Counter)
    held_pending: int = 0
    released_by_hospital: Counter[str] = field(default_factory=Counter)
    principals: set[str] = field(default_factory=set)
    first_release: dt.datetime | None = None
    last_release: dt.datetime | None = None

    @property
    def purposes(self) -> list[str]:
        return sorted({p.purpose for p in self.policies if p.purpose})

    @property
    def items(self) -> list[str]:
        """Record types released: of every policy under which something was released."""
        return sorted({t for p in self.policies if p.released for t in p.record_types})

    @property
    def fields_released(self) -> list[str]:
        return sorted({f for p in self.policies if p.released for f in p.fields})

    @property
    def recipients(self) -> list[str]:
        approvals = sorted({p.approval_ref for p in self.policies if p.approval_ref})
        return [f"research project approved under {approval}" for approval in approvals]

    @property
    def notes(self) -> list[str]:
        """What the report could not take from the ledger itself."""
        notes = []
        for period in self.policies:
            if period.source == FROM_POLICY_FILE:
                notes.append(
                    f"{period.policy_version}: not announced in the ledger (written before "
                    "D23c); purpose, approval and items from the policy file given to the report"
                )
            elif period.source == UNKNOWN:
                notes.append(
                    f"{period.policy_version}: not announced in the ledger and no policy file of "
                    "this version given: purpose, approval and items unknown"
                )
        return notes

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "purpose": self.purposes,
            "policy_versions": sorted(self.policy_versions),
            "items_released": self.items,
            "fields_released": self.fields_released,
            "recipients": self.recipients,
            "policies": [p.as_dict() for p in self.policies],
            "period": {"from": _iso(self.first_release), "to": _iso(self.last_release)},
            "counts": {
                "released": self.released,
                "released_by_policy_version": _released_by_version(self.policies),
                "withheld": sum(self.withheld.values()),
                "withheld_by_reason": dict(sorted(self.withheld.items())),
                "held_awaiting_link": self.held_pending,
                "released_by_hospital": dict(sorted(self.released_by_hospital.items())),
            },
            "processed_by": sorted(self.principals),
            "notes": self.notes,
        }


def _released_by_version(policies: Iterable[PolicyPeriod]) -> dict[str, int]:
    """Per version, over all its periods in force (zero included: in force, nothing released)."""
    counts: dict[str, int] = {}
    for period in policies:
        counts[period.policy_version] = counts.get(period.policy_version, 0) + period.released
    return dict(sorted(counts.items()))


def dataset_reports(
    events: Iterable[Logged], policies: dict[str, dict[str, Any]] | None = None
) -> dict[str, DatasetReport]:
    """D23c: per dataset, from the pseudonymizer's events in ledger order; each release counts
    under the policy in force when it happened: the dataset's latest ``policy_in_force``
    announcement, when its version is the one the release names (``purpose``). A release under a
    version the ledger never announced (a ledger written before D23c) takes purpose, approval and
    items from ``policies`` (dataset -> release policy JSON) only if that file is of the same
    version, and is flagged so; otherwise they are reported unknown."""
    reports: dict[str, DatasetReport] = {}
    held: dict[str, set[str]] = defaultdict(set)
    current: dict[str, PolicyPeriod] = {}
    unannounced: dict[tuple[str, str], PolicyPeriod] = {}
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
        if action == POLICY_IN_FORCE and event["policy"] is not None:
            period = PolicyPeriod.announced(event)
            previous = current.get(dataset)
            if previous is not None and (previous.policy_version, previous.digest) == (
                period.policy_version,
                period.digest,
            ):
                continue  # the same policy announced again: still the same period
            if previous is not None:
                previous.superseded_at = event["occurred_at"]
            current[dataset] = period
            report.policies.append(period)
        elif action == "pseudonymizer.held":
            held[dataset] |= records
        elif action == "pseudonymizer.released":
            held[dataset] -= records
            report.released += 1
            report.released_by_hospital[event["hospital"] or "?"] += 1
            at = event["occurred_at"]
            report.first_release = min(report.first_release or at, at)
            report.last_release = max(report.last_release or at, at)
            version = event["purpose"] or "?"
            in_force = current.get(dataset)
            if in_force is None or in_force.policy_version != version:
                in_force = unannounced.get((dataset, version))
                if in_force is None:
                    in_force = PolicyPeriod.not_announced(version, (policies or {}).get(dataset))
                    unannounced[(dataset, version)] = in_force
                    report.policies.append(in_force)
            in_force.release(at)
        elif action == "pseudonymizer.withheld":
            held[dataset] -= records
            report.withheld[event["reason_code"] or "?"] += 1
    for dataset, report in reports.items():
        report.held_pending = len(held[dataset])
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
    """D-audit-6: each published message (by source position) must have an ingest outcome, and
    each record ingest made of it an outcome downstream (linked, released, withheld, held, or
    dead-lettered); held records count as held, not missing."""
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


def processing_records(
    events: Sequence[Logged], policies: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """D47: per dataset, the processing record: what was released under which policy (D23c)
    and the approvals behind it, from the access service's events (who applied, who voted and
    decided, when, under which conditions and DUO terms, until when, the state now). A dataset
    approved but not yet released has a record too."""
    releases = dataset_reports(events, policies)
    approvals = approval_records(events)
    records: dict[str, dict[str, Any]] = {}
    for dataset in sorted(set(releases) | set(approvals)):
        record = releases.get(dataset, DatasetReport(dataset)).as_dict()
        record["approvals"] = [a.as_dict() for a in approvals.get(dataset, [])]
        records[dataset] = record
    return records
