"""Pseudonymizer use case: clinical records and link decisions in; curated records out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from biostream.codec import AvroCodec, DecodeError
from biostream.contracts import CLINICAL_RECORD, CURATED_RECORD, LINK_DECISION
from biostream.envelopes import Envelopes
from biostream.processor import Inbound, Outbound, StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge

from pseudonymizer.domain.join import PersonFacts, pack, release, unpack
from pseudonymizer.domain.policy import ReleasePolicy

SERVICE = "pseudonymizer"


@dataclass(frozen=True)
class PseudonymizerMetrics:
    released: Counter
    withheld: Counter
    waiting: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PseudonymizerMetrics:
        return cls(
            released=Counter(
                "biostream_pseudonymizer_released_records",
                "Curated records released",
                ["dataset"],
                registry=registry,
            ),
            withheld=Counter(
                "biostream_pseudonymizer_withheld_records",
                "Clinical records the policy does not release",
                ["dataset", "reason"],
                registry=registry,
            ),
            waiting=Gauge(
                "biostream_pseudonymizer_waiting_patients",
                "Hospital patients whose clinical records wait for a link decision",
                registry=registry,
            ),
        )


class JoinHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        policy: ReleasePolicy,
        domain_key: bytes,
        metrics: PseudonymizerMetrics,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.policy = policy
        self.domain_key = domain_key
        self.metrics = metrics
        self._curated_topic = topics.curated(policy.dataset)

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        contract = (
            CLINICAL_RECORD if message.topic == self.topics.clinical_records else LINK_DECISION
        )
        try:
            record = self.codec.decode(message.value, contract)
        except DecodeError as error:
            return [
                self.envelopes.dead_letter(message, error.reason_code, str(error), now),
                self.envelopes.audit(
                    "pseudonymizer.rejected", [message.source_ref], [], now,
                    outcome="rejected", reason_code=error.reason_code,
                ),
            ]  # fmt: skip
        if contract == CLINICAL_RECORD:
            return self._on_clinical(record, message.value or b"", state, now)
        return self._on_decision(record, state, now)

    def _on_clinical(
        self, clinical: dict[str, Any], raw: bytes, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        stored = state.get(f"dec:{clinical['patient_ref']}")
        if stored is None:
            wait_key = f"wait:{clinical['patient_ref']}"
            waiting = state.get(wait_key)
            state.put(wait_key, (waiting or b"") + pack([raw]))
            if waiting is None:
                self.metrics.waiting.inc()
            return [
                self.envelopes.audit(
                    "pseudonymizer.held", [clinical["record_id"]], [], now,
                    outcome="held", hospital=clinical["hospital"], dataset=self.policy.dataset,
                    reason_code="AWAITING_LINK_DECISION",
                )
            ]  # fmt: skip
        return self._release(clinical, PersonFacts.from_bytes(stored), now)

    def _on_decision(
        self, decision: dict[str, Any], state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        ref = decision["patient_ref"]
        stored = state.get(f"dec:{ref}")
        if stored is not None and PersonFacts.from_bytes(stored).sequence >= decision["sequence"]:
            return []  # an older or repeated decision: the newer one already holds
        facts = PersonFacts(
            person_id=decision["person_id"],
            sequence=decision["sequence"],
            birth_year=decision["birth_year"],
            sex=decision["sex"],
            province_code=decision["province_code"],
        )
        state.put(f"dec:{ref}", facts.to_bytes())
        waiting = state.get(f"wait:{ref}")
        if waiting is None:
            return []
        state.delete(f"wait:{ref}")
        self.metrics.waiting.dec()
        out: list[Outbound] = []
        for raw in unpack(waiting):
            out.extend(self._release(self.codec.decode(raw, CLINICAL_RECORD), facts, now))
        return out

    def _release(
        self, clinical: dict[str, Any], facts: PersonFacts, now: dt.datetime
    ) -> list[Outbound]:
        curated = release(clinical, facts, self.policy, self.domain_key, now)
        if curated is None:
            self.metrics.withheld.labels(self.policy.dataset, "RESOURCE_TYPE_NOT_APPROVED").inc()
            return [
                self.envelopes.audit(
                    "pseudonymizer.withheld", [clinical["record_id"]], [], now,
                    outcome="withheld", hospital=clinical["hospital"], dataset=self.policy.dataset,
                    purpose=self.policy.policy_version, reason_code="RESOURCE_TYPE_NOT_APPROVED",
                )
            ]  # fmt: skip
        self.metrics.released.labels(self.policy.dataset).inc()
        return [
            Outbound(
                self._curated_topic,
                self.codec.encode(CURATED_RECORD, curated),
                key=curated["pseudonym"].encode(),
            ),
            self.envelopes.audit(
                "pseudonymizer.released", [clinical["record_id"]], [curated["curated_id"]], now,
                hospital=clinical["hospital"], dataset=self.policy.dataset,
                purpose=self.policy.policy_version,
            ),
        ]  # fmt: skip
