"""What the pseudonymizer writes: curated records, dataset notices, audit events and metrics.

The handler decides nothing here: each method turns one outcome into its messages, counts it, and
names the audit event the ledger keeps for it (record ids and dataset only, never a value).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    CURATED_RECORD,
    DATASET_NOTICE,
    CuratedRecord,
    DatasetNotice,
    ReleasePolicyVersion,
)
from biostream.envelopes import Envelopes
from biostream.observability import TallyCounter
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge

from pseudonymizer.domain.in_force import Announcement
from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.state import PseudonymizerState


@dataclass(frozen=True)
class PseudonymizerMetrics:
    released: TallyCounter
    withheld: Counter
    suppressed: Counter
    notices: Counter
    waiting: Gauge
    held_k: Gauge
    policy_versions: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PseudonymizerMetrics:
        return cls(
            released=TallyCounter(  # one per record: a dict update, not a locked child lookup
                "biostream_pseudonymizer_released_records",
                "Curated records released",
                ("dataset",),
                registry,
            ),
            withheld=Counter(
                "biostream_pseudonymizer_withheld_records",
                "Clinical records a dataset does not receive (policy, consent)",
                ["dataset", "reason"],
                registry=registry,
            ),
            suppressed=Counter(
                "biostream_pseudonymizer_suppressed_records",
                "Records suppressed because their k-anonymity class stayed below k too long",
                ["dataset"],
                registry=registry,
            ),
            notices=Counter(
                "biostream_pseudonymizer_notices",
                "Dataset notices issued (corrections, withdrawals)",
                ["dataset", "kind"],
                registry=registry,
            ),
            waiting=Gauge(
                "biostream_pseudonymizer_waiting_patients",
                "Hospital patients whose clinical records wait for a link decision",
                registry=registry,
            ),
            held_k=Gauge(
                "biostream_pseudonymizer_k_held_records",
                "Records held because their quasi-identifier class has fewer than k persons",
                ["dataset"],
                registry=registry,
            ),
            policy_versions=Counter(
                "biostream_pseudonymizer_policy_versions",
                "Signed release-policy versions read (D46): APPLIED, or the refusal code",
                ["outcome"],
                registry=registry,
            ),
        )


class Outputs:
    def __init__(
        self, codec: AvroCodec, topics: Topics, envelopes: Envelopes, metrics: PseudonymizerMetrics
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.metrics = metrics

    def awaiting_decision(self, clinical: dict[str, Any], now: dt.datetime) -> Outbound:
        return self.envelopes.audit(
            "pseudonymizer.held", [clinical["record_id"]], [], now,
            outcome="held", hospital=clinical["hospital"], reason_code="AWAITING_LINK_DECISION",
        )  # fmt: skip

    def held_below_k(
        self, clinical: dict[str, Any], policy: ReleasePolicy, now: dt.datetime
    ) -> Outbound:
        self.metrics.held_k.labels(policy.dataset).inc()
        return self.envelopes.audit(
            "pseudonymizer.held", [clinical["record_id"]], [f"dataset:{policy.dataset}"],
            now, outcome="held", hospital=clinical["hospital"], dataset=policy.dataset,
            purpose=policy.policy_version, reason_code="BELOW_K",
        )  # fmt: skip

    def suppressed(
        self, clinical: dict[str, Any], policy: ReleasePolicy, now: dt.datetime
    ) -> Outbound:
        self.metrics.suppressed.labels(policy.dataset).inc()
        self.metrics.held_k.labels(policy.dataset).dec()
        return self.envelopes.audit(
            "pseudonymizer.suppressed", [clinical["record_id"]],
            [f"dataset:{policy.dataset}"], now, outcome="suppressed",
            hospital=clinical["hospital"], dataset=policy.dataset,
            purpose=policy.policy_version, reason_code="K_HOLD_EXPIRED",
        )  # fmt: skip

    def withheld(
        self, clinical: dict[str, Any], dataset: str, reason: str, now: dt.datetime
    ) -> Outbound:
        self.metrics.withheld.labels(dataset, reason).inc()
        return self.envelopes.audit(
            "pseudonymizer.withheld", [clinical["record_id"]], [f"dataset:{dataset}"], now,
            outcome="withheld", hospital=clinical["hospital"], dataset=dataset,
            reason_code=reason,
        )  # fmt: skip

    def released(
        self,
        clinical: dict[str, Any],
        curated: CuratedRecord,
        policy: ReleasePolicy,
        now: dt.datetime,
    ) -> list[Outbound]:
        self.metrics.released.inc(policy.dataset)
        return [
            Outbound(
                self.topics.prefix + policy.topic,
                self.codec.encode(CURATED_RECORD, curated),
                key=curated["pseudonym"].encode(),
            ),
            self.envelopes.audit(
                "pseudonymizer.released", [clinical["record_id"]], [curated["curated_id"]], now,
                hospital=clinical["hospital"], dataset=policy.dataset,
                purpose=policy.policy_version,
            ),
        ]  # fmt: skip

    def restored(self, state: PseudonymizerState, datasets: list[str]) -> None:
        """The gauges from the state restored at start-up (once; then kept up to date)."""
        self.metrics.waiting.set(state.waiting_patients())
        for dataset in datasets:
            self.metrics.held_k.labels(dataset).set(state.held_count(dataset))

    def notices(
        self, found: list[DatasetNotice], cause: str, policy: ReleasePolicy, now: dt.datetime
    ) -> list[Outbound]:
        return [out for notice in found for out in self.notice(notice, cause, policy, now)]

    def notice(
        self, notice: DatasetNotice, cause: str, policy: ReleasePolicy, now: dt.datetime
    ) -> list[Outbound]:
        self.metrics.notices.labels(policy.dataset, notice["kind"]).inc()
        return [
            Outbound(
                f"{self.topics.prefix}{policy.topic}.notices",
                self.codec.encode(DATASET_NOTICE, notice),
                key=notice["pseudonym"].encode(),
            ),
            self.envelopes.audit(
                "pseudonymizer.notice", [cause], [notice["notice_id"]], now,
                dataset=policy.dataset, purpose=policy.policy_version,
                reason_code=notice["reason"],
            ),
        ]  # fmt: skip

    def consent(self, event: dict[str, Any], source_ref: str, now: dt.datetime) -> Outbound:
        return self.envelopes.audit(
            "pseudonymizer.consent", [event["event_id"]], [source_ref], now,
            reason_code=f"CONSENT_{event['kind']}",
        )  # fmt: skip

    def policy_in_force(self, announcement: Announcement, now: dt.datetime) -> Outbound:
        """D23c: the ledger says which policy is in force, with what it approves."""
        policy = announcement.policy
        return self.envelopes.audit(
            "pseudonymizer.policy_in_force", [policy.reference], [], now,
            dataset=policy.dataset, purpose=policy.policy_version,
            reason_code=announcement.change,
            policy={
                "policy_version": policy.policy_version,
                "digest": policy.digest,
                "approval_ref": policy.approval_ref,
                "purpose": policy.purpose,
                "record_types": list(policy.record_types),
                "fields": list(policy.fields),
            },
        )  # fmt: skip

    # --- signed policies and the datasets they start and stop (D46) ----------------------------

    def policy_refused(
        self, message: Inbound, dataset: str | None, code: str, text: str, now: dt.datetime
    ) -> list[Outbound]:
        """A refused policy version: a dead letter with its original bytes, and the audit trail
        says so; nothing of it is applied."""
        self.metrics.policy_versions.labels(code).inc()
        return [
            self.envelopes.dead_letter(message, code, f"release policy refused: {text}", now),
            self.envelopes.audit(
                "pseudonymizer.policy_refused", [message.source_ref],
                [f"dead-letter:{self.envelopes.service}/{message.source_ref}"], now,
                outcome="rejected", dataset=dataset, reason_code=code,
            ),
        ]  # fmt: skip

    def policy_applied(
        self, message: Inbound, record: ReleasePolicyVersion, now: dt.datetime
    ) -> Outbound:
        self.metrics.policy_versions.labels("APPLIED").inc()
        return self.envelopes.audit(
            "pseudonymizer.policy_applied", [message.source_ref],
            [f"policy:{record['dataset']}@{record['version']}"], now,
            dataset=record["dataset"], purpose=record["approval_ref"],
            reason_code=record["status"],
        )  # fmt: skip

    def dataset_started(self, policy: ReleasePolicy, history: int, now: dt.datetime) -> Outbound:
        return self.envelopes.audit(
            "pseudonymizer.dataset_started", [f"policy:{policy.policy_version}"],
            [f"dataset:{policy.dataset}"], now, dataset=policy.dataset,
            purpose=policy.policy_version,
            reason_code="HISTORY_REPLAY" if history else "LIVE_ONLY",
        )  # fmt: skip

    def dataset_stopped(
        self, policy: ReleasePolicy, version: int, reason: str, now: dt.datetime
    ) -> list[Outbound]:
        """The dataset's consumers learn why nothing more comes (a DATASET_WITHDRAWN notice),
        and the ledger records it."""
        notice: DatasetNotice = {
            "notice_id": f"{policy.dataset}/withdrawn/{version}/{reason}",
            "dataset": policy.dataset,
            "policy_version": policy.policy_version,
            "approval_ref": policy.approval_ref,
            "kind": "DATASET_WITHDRAWN",
            "pseudonym": "",
            "new_pseudonym": None,
            "key_version": policy.key_version,
            "curated_ids": [],
            "date_offset_change_days": None,
            "reason": reason,
            "issued_at": now,
        }
        self.metrics.notices.labels(policy.dataset, "DATASET_WITHDRAWN").inc()
        return [
            Outbound(
                f"{self.topics.prefix}{policy.topic}.notices",
                self.codec.encode(DATASET_NOTICE, notice),
                key=policy.dataset.encode(),
            ),
            self.envelopes.audit(
                "pseudonymizer.dataset_stopped", [f"policy:{policy.dataset}@{version}"],
                [notice["notice_id"]], now, dataset=policy.dataset,
                purpose=policy.policy_version, reason_code=reason,
            ),
        ]  # fmt: skip

    def history_released(self, policy: ReleasePolicy, records: int, now: dt.datetime) -> Outbound:
        return self.envelopes.audit(
            "pseudonymizer.history_released", [f"policy:{policy.policy_version}"],
            [f"dataset:{policy.dataset}", f"records:{records}"], now,
            dataset=policy.dataset, purpose=policy.policy_version,
            reason_code="HISTORY_COMPLETE",
        )  # fmt: skip
