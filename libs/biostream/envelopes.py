"""Builders for the two records every service emits: dead letters and audit events."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, TypeVar, overload

from biostream.codec import HEADER_LENGTH, AvroCodec, DecodeError
from biostream.contract import CORRELATIONS_HEADER, FailureHandler, Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT,
    AUDIT_EVENT_BATCH,
    DEAD_LETTER,
    AuditEvent,
    AuditEventBatch,
    DeadLetter,
    PolicyInForce,
)
from biostream.keyfiles import load_key_ring
from biostream.keyring import DEAD_LETTER_KEY
from biostream.processor import AuditBatching
from biostream.sealing import SealingKeys
from biostream.settings import ServiceSettings
from biostream.topics import Topics

T = TypeVar("T")


class Unreadable(Enum):
    """What a service writes about an input it cannot read (``Envelopes.decode_or_reject``)."""

    # A dead letter (the sealed original, D12) and a ``<service>.rejected`` audit event (D7).
    REJECT = "reject"
    # A dead letter only: the audit service, whose ledger must not record itself.
    DEAD_LETTER = "dead-letter"
    # Nothing: a reader that writes no dead letters (the review desk, D-review-2); the service
    # that wrote the record dead-letters its own input.
    SKIP = "skip"


class Rejected(NamedTuple):
    """An input that could not be read: why, and what its service writes about it."""

    error: DecodeError
    outputs: list[Outbound]


@dataclass(frozen=True)
class Envelopes:
    """What a service needs to report failures and actions: its name, principal, codec and topics."""

    service: str
    principal: str
    codec: AvroCodec
    topics: Topics
    # Seal dead letters' original bytes (D12; the version active at the input's time, D33); None
    # keeps them in clear (tests, tools that never dead-letter). Services get theirs from
    # `dead_letter_sealer(settings)`.
    sealer: SealingKeys | None = None

    @property
    def audit_topic(self) -> str:
        """D31: this principal's own audit topic (only it may write there, by ACL)."""
        return self.topics.audit_events_of(self.topics.audit_writer(self.principal))

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
        sealer = self.sealer.for_input(message.timestamp_ms) if self.sealer else None
        sealed = sealer.seal(original, dead_letter_id) if sealer else None
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
            "seal_key_id": sealer.key_id if sealer else None,
        }
        return Outbound(
            self.topics.dead_letters,
            self.codec.encode(DEAD_LETTER, record),
            key=record["dead_letter_id"].encode(),
        )

    @overload
    def decode_or_reject(
        self,
        message: Inbound,
        read: str,
        now: dt.datetime,
        unreadable: Unreadable = Unreadable.REJECT,
    ) -> dict[str, Any] | Rejected: ...

    @overload
    def decode_or_reject(
        self,
        message: Inbound,
        read: Callable[[bytes | None], T],
        now: dt.datetime,
        unreadable: Unreadable = Unreadable.REJECT,
    ) -> T | Rejected: ...

    def decode_or_reject(
        self,
        message: Inbound,
        read: str | Callable[[bytes | None], Any],
        now: dt.datetime,
        unreadable: Unreadable = Unreadable.REJECT,
    ) -> Any:
        """The message's value decoded as the contract ``read`` names (or by ``read``, a
        function raising ``DecodeError``), or a ``Rejected`` holding what the service writes
        instead: by default a dead letter and a ``<service>.rejected`` audit event (D7, D12)."""
        try:
            if isinstance(read, str):
                return self.codec.decode(message.value, read)
            return read(message.value)
        except DecodeError as error:
            return Rejected(error, self.rejection(message, error, now, unreadable))

    def rejection(
        self,
        message: Inbound,
        error: DecodeError,
        now: dt.datetime,
        unreadable: Unreadable = Unreadable.REJECT,
    ) -> list[Outbound]:
        """D7, D12: an unreadable input is kept as a dead letter, never dropped silently, and
        the audit trail records its rejection (but for the audit service's own input)."""
        if unreadable is Unreadable.SKIP:
            return []
        dead = self.dead_letter(message, error.reason_code, str(error), now)
        if unreadable is Unreadable.DEAD_LETTER:
            return [dead]
        return [
            dead,
            self.audit(
                f"{self.service}.rejected", [message.source_ref], [], now,
                outcome="rejected", reason_code=error.reason_code,
            ),
        ]  # fmt: skip

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
        policy: PolicyInForce | None = None,
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
            "policy": policy,
        }
        return Outbound(
            self.audit_topic,
            self.codec.encode(AUDIT_EVENT, event),
            key=event["event_id"].encode(),
        )

    def audit_batching(self) -> AuditBatching:
        """For the processor: this service's audit events, one batch message per transaction."""
        return AuditBatching(self.audit_topic, self.pack_audit)

    def pack_audit(
        self,
        events: list[bytes],
        correlations: Sequence[str | None] = (),
        now: dt.datetime | None = None,
    ) -> list[Outbound]:
        """One transaction's audit events as ``AuditEventBatch`` messages (several only when
        they would not fit one Kafka record): the processor calls this instead of writing one
        message per event, so the audit trail costs a few records per transaction, not per
        input, and the ledger appends one entry per batch."""
        when = now or dt.datetime.now(dt.UTC)
        ids = list(correlations) or [None] * len(events)
        packed: list[Outbound] = []
        chunk: list[bytes] = []
        chunk_ids: dict[str, None] = {}  # ordered set
        size = 0
        for event, correlation in zip(events, ids, strict=True):
            if chunk and (size + len(event) > AUDIT_BATCH_MAX_BYTES):
                packed.append(self._audit_batch(chunk, list(chunk_ids), when))
                chunk, chunk_ids, size = [], {}, 0
            chunk.append(event)
            if correlation:
                chunk_ids[correlation] = None
            size += len(event) + 4
        if chunk:
            packed.append(self._audit_batch(chunk, list(chunk_ids), when))
        return packed

    def _audit_batch(
        self, events: list[bytes], correlations: list[str], now: dt.datetime
    ) -> Outbound:
        digest = hashlib.sha256()
        for event in events:
            digest.update(len(event).to_bytes(4, "big"))
            digest.update(event)
        batch: AuditEventBatch = {
            "batch_id": f"{self.service}-{digest.hexdigest()[:32]}",
            "service": self.service,
            "packed_at": now,
            "events": events,
        }
        # The records' correlation ids ride along (header), so the audit service's log lines
        # about this batch can be found from any of them.
        headers = ((CORRELATIONS_HEADER, ",".join(correlations).encode()),) if correlations else ()
        return Outbound(
            self.audit_topic,
            self.codec.encode(AUDIT_EVENT_BATCH, batch),
            key=batch["batch_id"].encode(),
            headers=headers,
        )


# Audit batches stay well under the producer's record batch (256 KiB) and Kafka's 1 MB message.
AUDIT_BATCH_MAX_BYTES = 200 * 1024


def is_audit_batch(codec: AvroCodec, payload: bytes) -> bool:
    writer = codec.registry.by_fingerprint(payload[2:HEADER_LENGTH])
    return writer is not None and writer.short_name == AUDIT_EVENT_BATCH


def audit_events_in(codec: AvroCodec, payload: bytes) -> list[AuditEvent]:
    """The audit events in one message of the audit topic (or one ledger entry's payload): a
    single ``AuditEvent`` or an ``AuditEventBatch`` of them. Raises ``DecodeError``."""
    if len(payload) >= HEADER_LENGTH and is_audit_batch(codec, payload):
        batch = codec.decode(payload, AUDIT_EVENT_BATCH)
        return [_audit_event(codec, item) for item in batch["events"]]
    return [_audit_event(codec, payload)]


def audit_event_items(codec: AvroCodec, payload: bytes) -> list[bytes]:
    """The encoded audit events in one audit message or ledger entry's payload, as they are
    hashed into the entry's events root (D23a): a batch's items, or the single event itself.
    Raises ``DecodeError`` when the payload is neither."""
    if len(payload) >= HEADER_LENGTH and is_audit_batch(codec, payload):
        items: list[bytes] = codec.decode(payload, AUDIT_EVENT_BATCH)["events"]
        return items
    _audit_event(codec, payload)
    return [payload]


def ledger_events(
    codec: AvroCodec, entries: Iterable[Mapping[str, Any]]
) -> list[tuple[int, AuditEvent]]:
    """Every audit event in ledger entries, with the sequence of the entry that holds it (an
    entry is one event or one service transaction's batch of them)."""
    return [
        (entry["sequence"], event)
        for entry in entries
        for event in audit_events_in(codec, entry["event_payload"])
    ]


def _audit_event(codec: AvroCodec, payload: bytes) -> AuditEvent:
    event = codec.decode(payload, AUDIT_EVENT)
    return event  # type: ignore[return-value]


def check_audit_batch(codec: AvroCodec, batch: AuditEventBatch) -> None:
    """Cheap structural check of a batch's items (each an AuditEvent by its schema fingerprint),
    for the ledger's hot path: decoding every event is left to readers of the ledger."""
    if not batch["events"]:
        raise DecodeError("AUDIT_BATCH_EMPTY", "the batch holds no audit event")
    for item in batch["events"]:
        writer = codec.registry.by_fingerprint(item[2:HEADER_LENGTH])
        if writer is None or writer.short_name != AUDIT_EVENT:
            raise DecodeError("AUDIT_BATCH_ITEM_INVALID", "a batch item is not an AuditEvent")


def audit_event_id(service: str, action: str, inputs: Sequence[str], outputs: Sequence[str]) -> str:
    """Deterministic, so a replayed action yields the same id and duplicates are recognisable."""
    # SHA-256 of every part followed by 0x1F, hashed in one call (the ids must never change).
    text = "\x1f".join((service, action, *inputs, "->", *outputs)) + "\x1f"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def dead_letter_sealer(settings: ServiceSettings) -> SealingKeys | None:
    """The service's dead-letter keys (D12, versioned since D33). Refuses to start without a key
    unless clear-text dead letters were asked for explicitly: personal data must not reach
    operators by omission."""
    if (
        settings.dead_letter_key is None
        and settings.dead_letter_key_file is None
        and settings.dead_letter_keys_dir is None
    ):
        if settings.dead_letter_cleartext:
            return None
        raise ValueError(
            "dead_letter_key: set BIOSTREAM_DEAD_LETTER_KEYS_DIR (or _KEY_FILE, _KEY), or "
            "BIOSTREAM_DEAD_LETTER_CLEARTEXT=true to keep dead letters' original bytes unsealed"
        )
    return SealingKeys(
        load_key_ring(
            DEAD_LETTER_KEY,
            settings.dead_letter_keys_dir,
            settings.dead_letter_key,
            settings.dead_letter_key_file,
        )
    )
