"""The contract floor: the pipeline's four hops doing only what their Avro contracts and Kafka hops
oblige them to do, and no domain work at all. A third side of the end-to-end benchmark
(``e2e.py``), measured in the same run as the pipeline and the bare relay chain.

The bare relay chain moves bytes; the pipeline decodes, decides, encodes and audits. The floor
sits between them: the same processes, topics, partition counts, transactions (the services'
``TransactionalProcessor``), records and audit batches as the pipeline, with every decision
replaced by a constant. Per feed message it writes what the pipeline writes:

* ``ingest``: one ``IdentityRecord`` and one ``ClinicalRecord`` per event (ADT^A01: one, ORU^R01:
  two; the message type and MSH-10 are found with one regular expression instead of a parse),
  plus one audit event;
* ``linkage``: decodes the identity record, writes one ``LinkDecision`` (always a new person,
  score 0) and one audit event;
* ``pseudonymizer``: decodes decisions (and keeps nothing) and clinical records, writes one
  ``CuratedRecord`` per clinical record (its ``curated_id`` is the real keyed HMAC, so the
  benchmark's matcher finds it) and one audit event each;
* ``audit``: decodes each ``AuditEventBatch``, checks its items' fingerprints and appends one
  ``LedgerEntry`` (a SHA-256 chain kept in memory) per batch.

No state, no changelog, no HL7 parse, no matching, no pseudonyms, no consent or policy checks:
whatever the floor costs, any implementation of these contracts on this stack pays at least that.
Its rate over the relay chain's is the best ratio the pipeline could reach with domain work that
cost nothing; the pipeline's rate over the floor's is how much of that the domain work keeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from biostream.codec import AvroCodec
from biostream.contract import Handler, Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT_BATCH,
    CLINICAL_RECORD,
    CURATED_RECORD,
    IDENTITY_RECORD,
    LEDGER_ENTRY,
    LINK_DECISION,
    ClinicalRecord,
    CuratedRecord,
    IdentityRecord,
    LedgerEntry,
    LinkDecision,
)
from biostream.envelopes import Envelopes, check_audit_batch
from biostream.observability import ProcessorMetrics
from biostream.processor import AuditBatching, ProcessorConfig, TransactionalProcessor
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.state import StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry
from pseudonymizer.domain.pseudonyms import curated_id

FLOOR_HOPS = ("ingest", "linkage", "pseudonymizer", "audit")
_MESSAGE = re.compile(rb"\|(ADT\^A01|ORU\^R01)\|([AO]-\d+)\|")
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Constant record bodies: the floor's records have the pipeline's shape, not its content (a
# synthetic placeholder identity, no personal data).
_IDENTITY: IdentityRecord = {
    "record_id": "", "patient_ref": "", "hospital": "", "message_id": "",
    "source_format": "HL7V2", "received_at": _EPOCH, "family_name": "FLOOR",
    "given_name": "FLOOR", "name_latin": "FLOOR FLOOR", "birth_date": dt.date(1970, 1, 1),
    "sex": "U", "rrn": None, "local_patient_no": "0", "phone": None, "address": None,
    "postal_code": "00000", "province_code": "11", "quality_flags": [], "rrn_sealed": None,
    "rrn_key_id": None, "previous_patient_refs": [],
}  # fmt: skip
_CLINICAL: ClinicalRecord = {
    "record_id": "", "patient_ref": "", "hospital": "", "message_id": "",
    "source_format": "HL7V2", "received_at": _EPOCH, "resource_type": "Observation",
    "event_date": dt.date(2026, 1, 1), "code_system": "http://loinc.org", "code": "2345-7",
    "code_version": None, "value_number": 100.0, "value_unit": "mg/dL", "value_text": None,
    "specimen_refs": [], "quality_flags": [], "previous_patient_refs": [],
}  # fmt: skip
_DECISION: LinkDecision = {
    "decision_id": "", "patient_ref": "", "record_id": "", "hospital": "", "person_id": "",
    "previous_person_id": None, "outcome": "NEW_PERSON", "score": 0.0, "rule": "floor",
    "sequence": 0, "decided_at": _EPOCH, "birth_year": 1970, "sex": "U", "province_code": "11",
    "birth_month": 1, "postal_prefix": "000", "district_code": None, "params_version": None,
}  # fmt: skip
_CURATED: CuratedRecord = {
    "curated_id": "", "dataset": "", "policy_version": "floor@1", "approval_ref": "FLOOR",
    "pseudonym": "ps_floor", "key_version": "k1", "hospital": "", "resource_type": "Observation",
    "event_date": dt.date(2026, 1, 1), "code_system": "http://loinc.org", "code": "2345-7",
    "code_version": None, "value_number": 100.0, "value_unit": "mg/dL", "birth_year": 1970,
    "sex": "U", "province_code": "11", "released_at": _EPOCH, "age_band": "50-54",
    "postal_prefix": "000", "district_code": None, "value_text": None, "specimen_ids": [],
    "event_date_handling": "shift",
}  # fmt: skip


class FloorError(RuntimeError):
    """The floor met input it was not built for: the benchmark stops rather than measure it."""


@dataclass(frozen=True)
class FloorIngest:
    codec: AvroCodec
    topics: Topics
    envelopes: Envelopes
    hospital: str

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        found = _MESSAGE.search(message.value or b"")
        if found is None:
            raise FloorError("not one of the benchmark's HL7 messages")
        message_id = found.group(2).decode()
        base = f"{self.hospital}/{message_id}"
        ref = f"floor-{message_id}"
        key = ref.encode()
        shared = {"patient_ref": ref, "hospital": self.hospital, "message_id": message_id,
                  "received_at": now}  # fmt: skip
        identity: IdentityRecord = {**_IDENTITY, **shared, "record_id": f"{base}/0"}  # type: ignore[typeddict-item]
        out = [
            Outbound(
                self.topics.identity_records, self.codec.encode(IDENTITY_RECORD, identity), key
            )
        ]
        record_ids = [identity["record_id"]]
        for index in range(1, 3 if found.group(1) == b"ORU^R01" else 2):
            clinical: ClinicalRecord = {**_CLINICAL, **shared, "record_id": f"{base}/{index}"}  # type: ignore[typeddict-item]
            out.append(
                Outbound(
                    self.topics.clinical_records, self.codec.encode(CLINICAL_RECORD, clinical), key
                )
            )
            record_ids.append(clinical["record_id"])
        out.append(
            self.envelopes.audit(
                "ingest.accepted", [message.source_ref], record_ids, now, hospital=self.hospital
            )
        )
        return out


@dataclass(frozen=True)
class FloorLinkage:
    codec: AvroCodec
    topics: Topics
    envelopes: Envelopes

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        identity = self.codec.decode(message.value, IDENTITY_RECORD)
        decision: LinkDecision = {
            **_DECISION,
            "decision_id": f"{identity['record_id']}/d",
            "patient_ref": identity["patient_ref"],
            "record_id": identity["record_id"],
            "hospital": identity["hospital"],
            "person_id": f"P-{identity['patient_ref']}",
            "sequence": message.offset,
            "decided_at": now,
        }
        return [
            Outbound(
                self.topics.link_decisions,
                self.codec.encode(LINK_DECISION, decision),
                message.key,
            ),
            self.envelopes.audit(
                "linkage.decided",
                [identity["record_id"]],
                [decision["decision_id"]],
                now,
                hospital=identity["hospital"],
            ),
        ]


@dataclass(frozen=True)
class FloorPseudonymizer:
    codec: AvroCodec
    topics: Topics
    envelopes: Envelopes
    dataset: str
    domain_key: bytes

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        if message.topic == self.topics.link_decisions:
            self.codec.decode(message.value, LINK_DECISION)
            return []
        clinical = self.codec.decode(message.value, CLINICAL_RECORD)
        curated: CuratedRecord = {
            **_CURATED,
            "curated_id": curated_id(self.domain_key, clinical["record_id"]),
            "dataset": self.dataset,
            "hospital": clinical["hospital"],
            "released_at": now,
        }
        return [
            Outbound(self.topics.curated(self.dataset), self.codec.encode(CURATED_RECORD, curated)),
            self.envelopes.audit(
                "pseudonymizer.released",
                [clinical["record_id"]],
                [curated["curated_id"]],
                now,
                dataset=self.dataset,
            ),
        ]


class FloorAudit:
    """One ledger entry per audit batch, chained by SHA-256 in memory (no state, no checkpoints)."""

    def __init__(self, codec: AvroCodec, topics: Topics) -> None:
        self.codec, self.topics = codec, topics
        self.sequence = 0
        self.tip = b"\x00" * 32

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        payload = message.value or b""
        batch = self.codec.decode(payload, AUDIT_EVENT_BATCH)
        check_audit_batch(self.codec, batch)  # type: ignore[arg-type]
        entry_hash = hashlib.sha256(self.tip + payload).digest()
        entry: LedgerEntry = {
            "sequence": self.sequence,
            "appended_at": now,
            "event_id": batch["batch_id"],
            "event_payload": payload,
            "prev_hash": self.tip,
            "entry_hash": entry_hash,
            # The floor does no domain work: no events root (the record's fields are all there).
            "hash_version": 1,
            "event_count": 0,
            "events_root": None,
        }
        self.sequence += 1
        self.tip = entry_hash
        return [Outbound(self.topics.audit_ledger, self.codec.encode(LEDGER_ENTRY, entry))]


def floor_hop(
    hop: str, topics: Topics, hospital: str, dataset: str, domain_key: bytes
) -> tuple[list[str], Handler, AuditBatching | None]:
    """One floor hop: its input topics, its handler, and how its audit events are packed (as the
    service's are: one batch per transaction; the audit hop writes none)."""
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes(hop, f"User:{topics.prefix}svc-{hop}", codec, topics)
    batching = envelopes.audit_batching()
    if hop == "ingest":
        return [topics.feed(hospital)], FloorIngest(codec, topics, envelopes, hospital), batching
    if hop == "linkage":
        return [topics.identity_records], FloorLinkage(codec, topics, envelopes), batching
    if hop == "pseudonymizer":
        handler = FloorPseudonymizer(codec, topics, envelopes, dataset, domain_key)
        return [topics.clinical_records, topics.link_decisions], handler, batching
    if hop == "audit":
        return topics.audit_event_topics, FloorAudit(codec, topics), None
    raise ValueError(f"no floor hop {hop!r}; one of {', '.join(FLOOR_HOPS)}")


def _fail(message: Inbound, error: BaseException, now: dt.datetime) -> list[Outbound]:
    raise FloorError(f"floor hop failed on {message.source_ref}: {type(error).__name__}")


async def run_floor_hop(
    kafka: KafkaSettings,
    hop: str,
    prefix: str,
    hospital: str,
    dataset: str,
    domain_key: bytes,
    ready: Callable[[], None],
) -> None:
    """Runs one hop on the services' processor until SIGTERM; ``ready`` once it consumes."""
    topics = Topics(prefix)
    inputs, handler, batching = floor_hop(hop, topics, hospital, dataset, domain_key)
    processor = TransactionalProcessor(
        ProcessorConfig(
            kafka=kafka, app_id=f"{prefix}floor-{hop}", instance_id="0", input_topics=inputs
        ),
        handler,
        _fail,
        ProcessorMetrics.create(CollectorRegistry(), f"floor_{hop}"),
        audit_batching=batching,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(processor.run(stop))
    while not processor.ready:
        if task.done():
            await task  # raises what stopped it
            return
        await asyncio.sleep(0.05)
    await asyncio.to_thread(ready)
    await task


def main(argv: list[str]) -> None:
    """``python -m biostream_harness.bench.floor HOP PREFIX HOSPITAL DATASET``, started by e2e.py with
    BENCH_KAFKA (settings JSON), BENCH_FLOOR_KEY_FILE and BENCH_READY_FILE in its environment."""
    hop, prefix, hospital, dataset = argv
    kafka = KafkaSettings.model_validate(json.loads(os.environ["BENCH_KAFKA"]))
    key = Path(os.environ["BENCH_FLOOR_KEY_FILE"]).read_bytes().strip()
    ready_file = Path(os.environ["BENCH_READY_FILE"])
    asyncio.run(run_floor_hop(kafka, hop, prefix, hospital, dataset, key, ready_file.touch))


if __name__ == "__main__":
    main(sys.argv[1:])
