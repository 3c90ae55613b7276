"""Topic names and their settings: one place, so services, tests, demo and deploy agree.

Every name takes an optional prefix so that tests can give each run its own topics on one broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FEED_PREFIX = "feed."
HOSPITAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    contract: str | None = None  # Avro contract of the value; None for raw hospital bytes


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def feed(self, hospital: str) -> str:
        if not HOSPITAL_CODE.match(hospital):
            raise ValueError("hospital code must be 1-32 of A-Z, 0-9, '_' or '-'")
        return f"{self.prefix}{FEED_PREFIX}{hospital}"

    @property
    def feed_pattern(self) -> str:
        return "^" + re.escape(self.prefix + FEED_PREFIX) + r"[A-Z0-9][A-Z0-9_-]*$"

    def hospital_of_feed(self, topic: str) -> str | None:
        head = self.prefix + FEED_PREFIX
        return topic[len(head) :] if topic.startswith(head) else None

    @property
    def identity_records(self) -> str:
        return f"{self.prefix}identity.records"

    @property
    def patient_merges(self) -> str:
        return f"{self.prefix}identity.patient-merges"

    @property
    def clinical_records(self) -> str:
        return f"{self.prefix}clinical.records"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}ops.dead-letters"

    @property
    def link_decisions(self) -> str:
        return f"{self.prefix}linkage.decisions"

    @property
    def review_tasks(self) -> str:
        return f"{self.prefix}linkage.review-tasks"

    @property
    def review_decisions(self) -> str:
        return f"{self.prefix}linkage.review-decisions"

    def curated(self, dataset: str) -> str:
        return f"{self.prefix}curated.{dataset}"

    def notices(self, dataset: str) -> str:
        """Corrections and withdrawals for what a dataset's consumers already hold."""
        return f"{self.prefix}curated.{dataset}.notices"

    @property
    def consent_events(self) -> str:
        return f"{self.prefix}consent.events"

    @property
    def audit_events(self) -> str:
        return f"{self.prefix}audit.events"

    @property
    def audit_ledger(self) -> str:
        return f"{self.prefix}audit.ledger"

    @property
    def audit_checkpoints(self) -> str:
        """Signed checkpoints of the ledger (audit service only)."""
        return f"{self.prefix}audit.checkpoints"

    def state(self, app_id: str) -> str:
        """Changelog of a service's state store (compacted)."""
        return f"{self.prefix}{app_id}.state-changelog"

    def pipeline_specs(self, hospitals: list[str], datasets: list[str]) -> list[TopicSpec]:
        specs = [TopicSpec(self.feed(h), 1) for h in hospitals]
        specs += [
            TopicSpec(self.identity_records, 3, contract="IdentityRecord"),
            TopicSpec(self.patient_merges, 1, contract="PatientMerge"),
            TopicSpec(self.clinical_records, 3, contract="ClinicalRecord"),
            TopicSpec(self.dead_letters, 1, contract="DeadLetter"),
            TopicSpec(self.link_decisions, 3, contract="LinkDecision"),
            TopicSpec(self.review_tasks, 1, contract="ReviewTask"),
            TopicSpec(self.consent_events, 1, contract="ConsentEvent"),
            TopicSpec(self.review_decisions, 1, contract="ReviewDecision"),
            TopicSpec(self.audit_events, 1, contract="AuditEvent"),
            TopicSpec(self.audit_ledger, 1, contract="LedgerEntry"),
            TopicSpec(self.audit_checkpoints, 1, contract="LedgerCheckpoint"),
        ]
        specs += [TopicSpec(self.curated(d), 3, contract="CuratedRecord") for d in datasets]
        specs += [TopicSpec(self.notices(d), 1, contract="DatasetNotice") for d in datasets]
        specs += [
            TopicSpec(self.state(app), 1, compacted=True)
            for app in ("ingest", "linkage", "pseudonymizer", "audit")
        ]
        return specs
