"""Topic names and their settings: one place, so services, tests, demo and deploy agree.

Every name takes an optional prefix so that tests can give each run its own topics on one broker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FEED_PREFIX = "feed."
HOSPITAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")

DAY_MS = 86_400_000
KEEP = -1  # Kafka's "no limit" for retention.ms and retention.bytes


@dataclass(frozen=True)
class Retention:
    """How long Kafka keeps a topic's records: every topic the project creates declares one (D21).

    ``compact`` topics are never deleted by time or size (Kafka applies ``retention.*`` only when
    the policy includes ``delete``); they still declare ``-1`` so that the intent survives a policy
    change, and so that ``describe_configs`` shows the same three keys on every topic.
    """

    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int
    retention_bytes: int = KEEP

    def __post_init__(self) -> None:
        if self.retention_ms != KEEP and self.retention_ms < 1:
            raise ValueError("retention_ms is -1 (forever) or a positive number of milliseconds")
        if self.retention_bytes != KEEP and self.retention_bytes < 1:
            raise ValueError("retention_bytes is -1 (no limit) or a positive number of bytes")

    @property
    def forever(self) -> bool:
        return self.retention_ms == KEEP and self.retention_bytes == KEEP

    def configs(self) -> dict[str, str]:
        """The topic configuration keys this retention sets, as Kafka spells them."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "retention.bytes": str(self.retention_bytes),
        }


FOREVER = Retention("delete", KEEP)
COMPACTED = Retention("compact", KEEP)


def for_days(days: int) -> Retention:
    """Deleted by time after ``days`` (no size limit)."""
    if days < 1:
        raise ValueError("a retention in days must be at least 1")
    return Retention("delete", days * DAY_MS)


@dataclass(frozen=True)
class RetentionWindows:
    """The retention periods an operator chooses (D21); every other topic is kept forever.

    * ``input_days``: the hospital feeds and ``audit.events``, inputs whose content the pipeline
      keeps forever further on (identity and clinical records; the ledger holds every event
      whole). ``audit reconcile`` covers the feed messages of this window.
    * ``dead_letter_days``: ``ops.dead-letters``, the reason and the sealed original of every
      message a service could not handle, for a steward to fix and a hospital to resend.
    """

    input_days: int = 365
    dead_letter_days: int = 365

    def __post_init__(self) -> None:
        if self.input_days < 1 or self.dead_letter_days < 1:
            raise ValueError("retention windows are at least one day")


DEFAULT_WINDOWS = RetentionWindows()


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention: Retention
    contract: str | None = None  # Avro contract of the value; None for raw hospital bytes

    @property
    def compacted(self) -> bool:
        return self.retention.cleanup_policy == "compact"


# D31: the principals that write audit events, each to its own topic
# (``audit.events.<role>``) that only it may write by ACL (deploy/acl-matrix.yaml), so the audit
# service knows who wrote an event from where it was read, not from what the event claims.
AUDIT_WRITERS = (
    "svc-ingest",
    "svc-linkage",
    "svc-pseudonymizer",
    "svc-review",
    "svc-access",
    "auditor",
    "steward",
    "consent",
)


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

    @property
    def linkage_params(self) -> str:
        """D41: linkage's parameter versions (compacted, keyed by version number)."""
        return f"{self.prefix}linkage.params"

    @property
    def access_events(self) -> str:
        """D45: the data-access applications' events (kept forever, keyed by application id)."""
        return f"{self.prefix}access.events"

    @property
    def risk_requests(self) -> str:
        """D48: disclosure-risk report requests (access -> pseudonymizer), keyed by application."""
        return f"{self.prefix}access.risk-requests"

    @property
    def risk_reports(self) -> str:
        """D48: disclosure-risk reports (pseudonymizer -> access), keyed by application."""
        return f"{self.prefix}access.risk-reports"

    @property
    def access_policies(self) -> str:
        """D46: the board's signed release-policy versions (compacted, keyed by dataset)."""
        return f"{self.prefix}access.policies"

    def curated(self, dataset: str) -> str:
        return f"{self.prefix}curated.{dataset}"

    def notices(self, dataset: str) -> str:
        """Corrections and withdrawals for what a dataset's consumers already hold."""
        return f"{self.prefix}curated.{dataset}.notices"

    @property
    def consent_events(self) -> str:
        return f"{self.prefix}consent.events"

    def audit_events_of(self, writer: str) -> str:
        """D31: the audit topic only ``writer`` (a role of the ACL matrix) may write to."""
        return f"{self.prefix}audit.events.{writer}"

    @property
    def audit_event_topics(self) -> list[str]:
        """Every principal's audit topic: what the audit service reads (D31)."""
        return [self.audit_events_of(writer) for writer in AUDIT_WRITERS]

    def audit_writer(self, principal: str) -> str:
        """The role of an authenticated principal (``User:<prefix><role>``), as in the ACL
        matrix: the part of its audit topic's name after ``audit.events.``."""
        return principal.removeprefix("User:").removeprefix(self.prefix)

    def authenticated_principal(self, audit_topic: str) -> str | None:
        """D31: the principal Kafka authenticated for every message of ``audit_topic`` (only it
        may write there, by ACL), or None for a topic that is no principal's audit topic."""
        head = f"{self.prefix}audit.events."
        writer = audit_topic.removeprefix(head)
        if not audit_topic.startswith(head) or writer not in AUDIT_WRITERS:
            return None
        return f"User:{self.prefix}{writer}"

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

    def pipeline_specs(
        self,
        hospitals: list[str],
        datasets: list[str],
        windows: RetentionWindows = DEFAULT_WINDOWS,
    ) -> list[TopicSpec]:
        """Every topic of the pipeline with its partitions, contract and retention (D21); the
        ledger has one partition, so one total order, one chain and one tree (D-audit-2).

        Kept forever: what a replay, a newly approved dataset, a late consumer or an audit reads
        from the beginning (the ledger and its checkpoints, identity and clinical records, link
        decisions, merges, consent, review tasks and decisions, access applications (D45),
        curated data and notices). None of them is compacted: their keys (patient_ref, task_id,
        application id, pseudonym) are shared by many
        records that all count, so compaction would delete history. Compacted: the services'
        state changelogs, whose key is the state key and whose latest value is the state, and
        linkage's parameter versions (D41), whose key is the version and whose latest value is
        where it stands, and the release-policy versions (D46), keyed by dataset likewise.
        Time-bounded (:class:`RetentionWindows`): the feeds, the audit topics and the dead letters.
        """
        inputs = for_days(windows.input_days)
        specs = [TopicSpec(self.feed(h), 1, inputs) for h in hospitals]
        specs += [
            TopicSpec(self.identity_records, 3, FOREVER, contract="IdentityRecord"),
            TopicSpec(self.patient_merges, 1, FOREVER, contract="PatientMerge"),
            TopicSpec(self.clinical_records, 3, FOREVER, contract="ClinicalRecord"),
            TopicSpec(
                self.dead_letters, 1, for_days(windows.dead_letter_days), contract="DeadLetter"
            ),
            TopicSpec(self.link_decisions, 3, FOREVER, contract="LinkDecision"),
            TopicSpec(self.review_tasks, 1, FOREVER, contract="ReviewTask"),
            TopicSpec(self.consent_events, 1, FOREVER, contract="ConsentEvent"),
            TopicSpec(self.review_decisions, 1, FOREVER, contract="ReviewDecision"),
            # D41: one key per parameter version, whose newest record is its state; one
            # partition, so one order of activations.
            TopicSpec(self.linkage_params, 1, COMPACTED, contract="LinkageParamsVersion"),
            # D45: the access service's only store: every application's events, forever; one
            # partition, so one order of every decision of the board.
            TopicSpec(self.access_events, 1, FOREVER, contract="AccessEvent"),
            # D46: one key per dataset, whose newest record is where its approval stands; one
            # partition, so one order of approvals and withdrawals.
            TopicSpec(self.access_policies, 1, COMPACTED, contract="ReleasePolicyVersion"),
            # D48: the board's risk requests and the pseudonymizer's counts-only reports, kept
            # forever like the applications they belong to (a report is what the board saw).
            TopicSpec(self.risk_requests, 1, FOREVER, contract="RiskRequest"),
            TopicSpec(self.risk_reports, 1, FOREVER, contract="RiskReport"),
            *(TopicSpec(t, 1, inputs, contract="AuditEvent") for t in self.audit_event_topics),
            TopicSpec(self.audit_ledger, 1, FOREVER, contract="LedgerEntry"),
            TopicSpec(self.audit_checkpoints, 1, FOREVER, contract="LedgerCheckpoint"),
        ]
        specs += [
            TopicSpec(self.curated(d), 3, FOREVER, contract="CuratedRecord") for d in datasets
        ]
        specs += [
            TopicSpec(self.notices(d), 1, FOREVER, contract="DatasetNotice") for d in datasets
        ]
        specs += [
            TopicSpec(self.state(app), 1, COMPACTED)
            for app in ("ingest", "linkage", "pseudonymizer", "audit")
        ]
        return specs


def _kept_ms(value: str | int) -> float:
    """A retention setting as a comparable amount: -1 (no limit) is infinite."""
    number = int(value)
    return float("inf") if number == KEEP else float(number)


def retention_update(
    declared: Retention, current: Mapping[str, str], *, shorten: bool = False
) -> dict[str, str]:
    """D21: the configs that bring an existing topic to its declared retention.

    Topics created before retention was declared carry Kafka's default (7 days, or whatever the
    broker says): their ``retention.ms``/``retention.bytes`` are raised to the declared values.
    A topic that already keeps *longer* than declared (an operator's choice, or a window made
    shorter since) is left alone unless ``shorten``: shortening deletes records at the broker's
    next retention check and is never done implicitly. The cleanup policy is set as declared
    (compaction is declared only where the latest value per key is all that matters, and
    ``delete`` with no limit keeps everything). Keys absent from ``current`` count as Kafka's
    defaults: ``delete``, 7 days, no size limit.
    """
    wanted = declared.configs()
    now = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"}
    now |= {k: v for k, v in current.items() if k in wanted}
    changes: dict[str, str] = {}
    if set(now["cleanup.policy"].replace(" ", "").split(",")) != {declared.cleanup_policy}:
        changes["cleanup.policy"] = wanted["cleanup.policy"]
    for key in ("retention.ms", "retention.bytes"):
        have, want = _kept_ms(now[key]), _kept_ms(wanted[key])
        if want > have or (shorten and want < have):
            changes[key] = wanted[key]
    return changes
