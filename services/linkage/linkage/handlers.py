"""Linkage use case: an identity record in, a link decision (or nothing new) out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from biostream.codec import AvroCodec, DecodeError
from biostream.contracts import IDENTITY_RECORD, LINK_DECISION, LinkDecision, LinkOutcome
from biostream.envelopes import Envelopes
from biostream.processor import Inbound, Outbound, StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter

from linkage.domain.rules import Assignment, IdentityView, decide

SERVICE = "linkage"


@dataclass(frozen=True)
class LinkageMetrics:
    outcomes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LinkageMetrics:
        return cls(
            outcomes=Counter(
                "biostream_linkage_decisions",
                "Link decisions by outcome and rule",
                ["outcome", "rule"],
                registry=registry,
            )
        )


class IdentityRecordHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        person_key: bytes,
        metrics: LinkageMetrics,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.person_key = person_key
        self.metrics = metrics

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        try:
            record = self.codec.decode(message.value, IDENTITY_RECORD)
        except DecodeError as error:
            return [
                self.envelopes.dead_letter(message, error.reason_code, str(error), now),
                self.envelopes.audit(
                    "linkage.rejected", [message.source_ref], [], now,
                    outcome="rejected", reason_code=error.reason_code,
                ),
            ]  # fmt: skip
        identity = IdentityView(
            record_id=record["record_id"],
            patient_ref=record["patient_ref"],
            family_name=record["family_name"],
            given_name=record["given_name"],
            birth_date=record["birth_date"],
            sex=record["sex"],
            rrn=record["rrn"],
        )
        ref_key = f"ref:{identity.patient_ref}"
        stored = state.get(ref_key)
        current = Assignment.from_bytes(stored) if stored is not None else None
        decision = decide(
            self.person_key,
            identity,
            current,
            lambda person_id: state.get(f"person:{person_id}") is not None,
        )
        if decision is None:
            self.metrics.outcomes.labels("UNCHANGED", "-").inc()
            return [
                self.envelopes.audit(
                    "linkage.confirmed", [identity.record_id], [], now,
                    hospital=record["hospital"], outcome="unchanged",
                )
            ]  # fmt: skip
        state.put(ref_key, Assignment(decision.person_id, decision.sequence).to_bytes())
        state.put(f"person:{decision.person_id}", b"1")
        birth = record["birth_date"]
        wire: LinkDecision = {
            "decision_id": f"{identity.patient_ref}/{decision.sequence}",
            "patient_ref": identity.patient_ref,
            "record_id": identity.record_id,
            "hospital": record["hospital"],
            "person_id": decision.person_id,
            "previous_person_id": decision.previous_person_id,
            "outcome": _outcome(decision.outcome),
            "score": 0.0,
            "rule": decision.rule,
            "sequence": decision.sequence,
            "decided_at": now,
            "birth_year": birth.year if birth is not None else None,
            "sex": record["sex"],
            "province_code": record["province_code"],
            # Coarse quasi-identifiers for the pseudonymizer's generalisation; never the full
            # postal code or the address.
            "birth_month": birth.month if birth is not None else None,
            "postal_prefix": _postal_prefix(record["postal_code"]),
            "district_code": None,
        }
        self.metrics.outcomes.labels(decision.outcome, decision.rule).inc()
        return [
            Outbound(
                self.topics.link_decisions,
                self.codec.encode(LINK_DECISION, wire),
                key=identity.patient_ref.encode(),
            ),
            self.envelopes.audit(
                "linkage.linked", [identity.record_id], [wire["decision_id"]], now,
                hospital=record["hospital"], outcome=decision.outcome.lower(),
            ),
        ]  # fmt: skip


def _outcome(value: str) -> LinkOutcome:
    outcomes: dict[str, LinkOutcome] = {
        "NEW_PERSON": "NEW_PERSON", "MATCH": "MATCH", "POSSIBLE_MATCH": "POSSIBLE_MATCH",
        "MERGED": "MERGED", "SPLIT": "SPLIT", "REVIEWED": "REVIEWED",
    }  # fmt: skip
    return outcomes[value]


def _postal_prefix(postal_code: str | None) -> str | None:
    """First three digits of a 5-digit postal code; None for a missing or legacy NNN-NNN code."""
    if postal_code is None or len(postal_code) != 5 or not postal_code.isdigit():
        return None
    return postal_code[:3]
