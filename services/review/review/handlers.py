"""Review desk use cases: stream records update the desk; stewards' views and decisions become
audit events and ReviewDecision records. Returns what to publish; the adapters publish it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    IDENTITY_RECORD,
    LINK_DECISION,
    REVIEW_DECISION,
    REVIEW_TASK,
    ReviewDecision,
    ReviewOutcome,
)
from biostream.envelopes import Envelopes, Rejected, Unreadable
from biostream.logs import get_logger
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge

from review.domain.desk import DECISIONS, Desk

SERVICE = "review"


@dataclass(frozen=True)
class ReviewMetrics:
    backlog: Gauge
    oldest_age: Gauge
    decisions: Counter
    views: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ReviewMetrics:
        return cls(
            # The name deploy/prometheus/rules.yml's backlog alert expects.
            backlog=Gauge(
                "biostream_linkage_review_backlog_tasks",
                "Open review tasks (escalated ones included)",
                registry=registry,
            ),
            oldest_age=Gauge(
                "biostream_review_oldest_task_age_seconds",
                "Age of the oldest open review task",
                registry=registry,
            ),
            decisions=Counter(
                "biostream_review_decisions",
                "Decisions recorded by this desk, by decision",
                ["decision"],
                registry=registry,
            ),
            views=Counter(
                "biostream_review_task_views", "Task pages shown to stewards", registry=registry
            ),
        )


class UnknownTask(LookupError):
    pass


class ReviewHandler:
    def __init__(
        self, codec: AvroCodec, topics: Topics, envelopes: Envelopes, metrics: ReviewMetrics
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.metrics = metrics
        self.desk = Desk()
        self._log = get_logger("review.handlers")
        self._contracts = {
            topics.identity_records: IDENTITY_RECORD,
            topics.review_tasks: REVIEW_TASK,
            topics.review_decisions: REVIEW_DECISION,
            topics.link_decisions: LINK_DECISION,
        }

    @property
    def input_topics(self) -> list[str]:
        return list(self._contracts)

    @property
    def steward_topics(self) -> list[str]:
        """D35: what the steward's command line reads: the tasks and the decisions, which are
        all ``review tasks`` and ``review decide`` need; never the identity records."""
        return [self.topics.review_tasks, self.topics.review_decisions]

    def on_record(self, message: Inbound, now: dt.datetime) -> None:
        """One record of an input topic. Undecodable records are skipped: the desk only reads,
        and the service that wrote them dead-letters its own input (D-review-2)."""
        topic = message.topic
        record = self.envelopes.decode_or_reject(
            message, self._contracts[topic], now, Unreadable.SKIP
        )
        if isinstance(record, Rejected):
            self._log.warning("record skipped", topic=topic, reason_code=record.error.reason_code)
            return
        if topic == self.topics.identity_records:
            self.desk.on_identity(record)
        elif topic == self.topics.review_tasks:
            self.desk.on_task(record)
        elif topic == self.topics.review_decisions:
            self.desk.on_decision(record)
        else:
            self.desk.on_link(record)
        self.refresh(now)

    def refresh(self, now: dt.datetime) -> None:
        self.metrics.backlog.set(len(self.desk.tasks))
        self.metrics.oldest_age.set(self.desk.oldest_age_s(now))

    def viewed(self, task_id: str, steward: str, now: dt.datetime) -> Outbound:
        """D-review-2: audit of a steward seeing a task's identifying details: who, which task,
        when; never the values."""
        self.metrics.views.inc()
        return self.envelopes.audit(
            "review.viewed",
            [task_id],
            [f"steward:{steward}", f"at:{int(now.timestamp() * 1000)}"],
            now,
            hospital=self._hospital(task_id),
        )

    def decide(
        self,
        task_id: str,
        decision: str,
        reason: str | None,
        steward: str,
        now: dt.datetime,
        candidate_person_id: str | None = None,
    ) -> list[Outbound]:
        """The ReviewDecision for linkage and its audit event (without the free-text reason,
        which may quote what the steward saw)."""
        task = self.desk.tasks.get(task_id)
        if task is None:
            raise UnknownTask(task_id)
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        if candidate_person_id is not None and candidate_person_id not in task.candidate_person_ids:
            raise ValueError("candidate_person_id is not one of the task's candidates")
        outcome: ReviewOutcome = (
            "SAME_PERSON"
            if decision == "SAME_PERSON"
            else "DIFFERENT_PEOPLE"
            if decision == "DIFFERENT_PEOPLE"
            else "ESCALATE"
        )
        wire: ReviewDecision = {
            "task_id": task_id,
            "decision": outcome,
            "candidate_person_id": candidate_person_id,
            "reviewer": steward,
            "reason": (reason or "").strip()[:500] or None,
            "decided_at": now,
        }
        self.metrics.decisions.labels(decision).inc()
        return [
            Outbound(
                self.topics.review_decisions,
                self.codec.encode(REVIEW_DECISION, wire),
                key=task_id.encode(),
            ),
            self.envelopes.audit(
                "review.decided",
                [task_id],
                [f"steward:{steward}", f"decision:{decision}"],
                now,
                outcome=decision.lower(),
                hospital=task.hospital,
            ),
        ]

    def unsealed(
        self, dead_letter_id: str, case: str, steward: str, hospital: str | None, now: dt.datetime
    ) -> Outbound:
        """D35: the audit event of a steward unsealing a dead letter's original, written (and
        acknowledged) before the original is shown: which letter, for which case, by whom, when;
        never the original nor anything read from it."""
        return self.envelopes.audit(
            "review.dead_letter_unsealed",
            [dead_letter_id],
            [f"steward:{steward}", f"case:{case}", f"at:{int(now.timestamp() * 1000)}"],
            now,
            hospital=hospital,
            purpose=case,
        )

    def published(self, messages: list[Outbound]) -> None:
        """Applies this desk's own decision once the broker has acknowledged it, so the page a
        steward sees next already shows it; the copy read back from the topic later (which is how
        other replicas and the CLI's decisions arrive) changes nothing."""
        for message in messages:
            if message.topic == self.topics.review_decisions and message.value:
                self.desk.on_decision(self.codec.decode(message.value, REVIEW_DECISION))

    def _hospital(self, task_id: str) -> str | None:
        task = self.desk.find(task_id)
        return task.hospital if task else None
