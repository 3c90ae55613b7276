"""Builders for the two records every service emits: dead letters and audit events."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT, DEAD_LETTER, AuditEvent, DeadLetter
from biostream.processor import FailureHandler, Inbound, Outbound
from biostream.topics import Topics


@dataclass(frozen=True)
class Envelopes:
    """What a service needs to report failures and actions: its name, principal, codec and topics."""

    service: str
    principal: str
    codec: AvroCodec
    topics: Topics

    def dead_letter(
        self,
        message: Inbound,
        reason_code: str,
        text: str,
        now: dt.datetime,
        hospital: str | None = None,
    ) -> Outbound:
        record: DeadLetter = {
            "dead_letter_id": f"{self.service}/{message.source_ref}",
            "service": self.service,
            "reason_code": reason_code,
            "message": text,
            "hospital": hospital,
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "source_key": message.key,
            "original": message.value or b"",
            "failed_at": now,
        }
        return Outbound(
            self.topics.dead_letters,
            self.codec.encode(DEAD_LETTER, record),
            key=record["dead_letter_id"].encode(),
        )

    def failure_handler(
        self, reason_code: str, hospital_of: Callable[[str], str | None] = lambda _topic: None
    ) -> FailureHandler:
        """Dead-letters a message whose handler raised, and records that in the audit trail."""

        def on_failure(message: Inbound, error: BaseException, now: dt.datetime) -> list[Outbound]:
            hospital = hospital_of(message.topic)
            text = f"unexpected {type(error).__name__} while processing; see the service log"
            return [
                self.dead_letter(message, reason_code, text, now, hospital),
                self.audit(
                    f"{self.service}.failed",
                    [message.source_ref],
                    [f"dead-letter:{self.service}/{message.source_ref}"],
                    now,
                    outcome="failed",
                    hospital=hospital,
                    reason_code=reason_code,
                ),
            ]

        return on_failure

    def audit(
        self,
        action: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        now: dt.datetime,
        *,
        outcome: str = "ok",
        hospital: str | None = None,
        dataset: str | None = None,
        purpose: str | None = None,
        reason_code: str | None = None,
    ) -> Outbound:
        event: AuditEvent = {
            "event_id": audit_event_id(self.service, action, inputs, outputs),
            "occurred_at": now,
            "service": self.service,
            "principal": self.principal,
            "action": action,
            "purpose": purpose,
            "hospital": hospital,
            "dataset": dataset,
            "inputs": list(inputs),
            "outputs": list(outputs),
            "outcome": outcome,
            "reason_code": reason_code,
        }
        return Outbound(
            self.topics.audit_events,
            self.codec.encode(AUDIT_EVENT, event),
            key=event["event_id"].encode(),
        )


def audit_event_id(service: str, action: str, inputs: Sequence[str], outputs: Sequence[str]) -> str:
    """Deterministic, so a replayed action yields the same id and duplicates are recognisable."""
    digest = hashlib.sha256()
    for part in (service, action, *inputs, "->", *outputs):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()[:32]
