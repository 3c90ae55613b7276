"""Builders for the two records every service emits: dead letters and audit events."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT, DEAD_LETTER, AuditEvent, DeadLetter
from biostream.processor import FailureHandler, Inbound, Outbound
from biostream.sealing import Sealer
from biostream.settings import ServiceSettings, read_secret
from biostream.topics import Topics


@dataclass(frozen=True)
class Envelopes:
    """What a service needs to report failures and actions: its name, principal, codec and topics."""

    service: str
    principal: str
    codec: AvroCodec
    topics: Topics
    # Seals dead letters' original bytes; None keeps them in clear (tests, tools that never
    # dead-letter). Services get theirs from `dead_letter_sealer(settings)`.
    sealer: Sealer | None = None

    def dead_letter(
        self,
        message: Inbound,
        reason_code: str,
        text: str,
        now: dt.datetime,
        hospital: str | None = None,
    ) -> Outbound:
        dead_letter_id = f"{self.service}/{message.source_ref}"
        original = message.value or b""
        sealed = self.sealer.seal(original, dead_letter_id) if self.sealer else None
        record: DeadLetter = {
            "dead_letter_id": dead_letter_id,
            "service": self.service,
            "reason_code": reason_code,
            "message": text,
            "hospital": hospital,
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "source_key": message.key,
            "original": b"" if sealed is not None else original,
            "failed_at": now,
            "sealed_original": sealed,
            "seal_key_id": self.sealer.key_id if self.sealer else None,
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


def dead_letter_sealer(settings: ServiceSettings) -> Sealer | None:
    """The service's dead-letter sealer. Refuses to start without a key unless clear-text dead
    letters were asked for explicitly: personal data must not reach operators by omission."""
    if settings.dead_letter_key is None and settings.dead_letter_key_file is None:
        if settings.dead_letter_cleartext:
            return None
        raise ValueError(
            "dead_letter_key: set BIOSTREAM_DEAD_LETTER_KEY_FILE (or _KEY), or "
            "BIOSTREAM_DEAD_LETTER_CLEARTEXT=true to keep dead letters' original bytes unsealed"
        )
    return Sealer(
        read_secret(settings.dead_letter_key, settings.dead_letter_key_file, "dead_letter_key")
    )
