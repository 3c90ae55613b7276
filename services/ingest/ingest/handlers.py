"""Ingest use case: one hospital message in; identity, clinical, dead-letter and audit records out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from biostream.codec import AvroCodec
from biostream.contract import PREVIOUS_REFS_HEADER, Inbound, Outbound
from biostream.contracts import (
    CLINICAL_RECORD,
    CONSENT_EVENT,
    IDENTITY_RECORD,
    PATIENT_MERGE,
    ClinicalRecord,
    IdentityRecord,
    PatientMerge,
    SexCode,
    SourceFormat,
)
from biostream.envelopes import Envelopes
from biostream.keyring import PATIENT_REF_KEY, KeyRing, KeyVersion
from biostream.logs import get_logger
from biostream.observability import TallyCounter
from biostream.sealing import Sealer, SealingKeys
from biostream.state import StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

from ingest.domain.consent import consent_from_feed
from ingest.domain.csv_feed import DEFAULT_MAPPING, CsvMapping, MappingInvalid
from ingest.domain.fhir import resolve_patient_references
from ingest.domain.messages import detect_format, parse_message
from ingest.domain.model import ParsedMessage, PatientIdentity, PatientPart, Rejected
from ingest.domain.own_identifiers import events_without_own_identifiers
from ingest.domain.patient_refs import PatientRefs, patient_ref, patient_refs
from ingest.state import PatientIds, SeenMessages

SERVICE = "ingest"
_WIRE_FORMAT: dict[str, SourceFormat] = {"fhir": "FHIR", "csv": "CSV", "hl7": "HL7V2"}
# Identity fields whose completeness is measured per hospital (label values: these names only).
IDENTITY_FIELDS = (
    "name", "birth_date", "sex", "rrn", "phone", "address", "postal_code", "province_code",
)  # fmt: skip


def identity_completeness(identity: PatientIdentity) -> dict[str, bool]:
    return {
        "name": bool(identity.family_name or identity.given_name),
        "birth_date": identity.birth_date is not None,
        "sex": identity.sex in ("M", "F"),
        "rrn": identity.rrn is not None,
        "phone": identity.phone is not None,
        "address": identity.address is not None,
        "postal_code": identity.postal_code is not None,
        "province_code": identity.province_code is not None,
    }


@dataclass(frozen=True)
class IngestMetrics:
    """Per-hospital data quality. Labels hold hospital codes, formats, message types, reason
    codes and field names: bounded sets, never a value from a message."""

    messages: TallyCounter
    dead_letters: TallyCounter
    message_types: TallyCounter
    identity_fields: TallyCounter
    merges: TallyCounter
    quality_flags: TallyCounter
    skipped_entries: TallyCounter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        return cls(
            messages=TallyCounter(
                "biostream_ingest_feed_messages",
                "Hospital messages by outcome (accepted, rejected, duplicate)",
                ("hospital", "format", "outcome"),
                registry=registry,
            ),
            dead_letters=TallyCounter(
                "biostream_ingest_rejections",
                "Rejected hospital messages by stable reason code",
                ("hospital", "reason"),
                registry=registry,
            ),
            message_types=TallyCounter(
                "biostream_ingest_message_types",
                "Accepted hospital messages by message type (ADT^A01, ORU^R01, Bundle, csv-row ...)",
                ("hospital", "format", "message_type"),
                registry=registry,
            ),
            identity_fields=TallyCounter(
                "biostream_ingest_identity_fields",
                "Identity records by field and whether the field is present (completeness)",
                ("hospital", "field", "present"),
                registry=registry,
            ),
            merges=TallyCounter(
                "biostream_ingest_patient_merges",
                "Patient merges forwarded to linkage (HL7 ADT^A40, FHIR Patient.link)",
                ("hospital",),
                registry=registry,
            ),
            quality_flags=TallyCounter(
                "biostream_ingest_quality_flags",
                "Data-quality flags on accepted records and messages, by flag code (D36)",
                ("hospital", "flag"),
                registry=registry,
            ),
            skipped_entries=TallyCounter(
                "biostream_ingest_skipped_entries",
                "Parts of accepted messages read and not used: context entries, other resource"
                " types, entries whose patient is unknown (D36)",
                ("hospital", "resource_type", "reason"),
                registry=registry,
            ),
        )


__all__ = ["SERVICE", "FeedMessageHandler", "IngestMetrics", "patient_ref"]


def patient_ref_ring(key: bytes | KeyRing) -> KeyRing:
    """D33: the patient-ref key as a ring; a single key (handler tests) is ``k1`` from the start."""
    if isinstance(key, KeyRing):
        return key
    return KeyRing(PATIENT_REF_KEY, [KeyVersion("k1", key)])


class FeedMessageHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        patient_ref_key: bytes | KeyRing,
        metrics: IngestMetrics,
        csv_mapping_for: Callable[[str], CsvMapping] = lambda _hospital: DEFAULT_MAPPING,
        rrn_sealer: SealingKeys | None = None,
        seen_messages: SeenMessages | None = None,
    ) -> None:
        self.seen_messages = seen_messages or SeenMessages()
        self.patient_ids = PatientIds()
        # The service always seals registration numbers (bootstrap requires the key); without a
        # sealer (handler unit tests) they travel in the v1 clear-text field.
        self.rrn_sealer = rrn_sealer
        self.csv_mapping_for = csv_mapping_for
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        # D33: every version of the patient-ref key; each message's refs follow its Kafka time.
        self.patient_ref_keys = patient_ref_ring(patient_ref_key)
        self.metrics = metrics
        self._log = get_logger("ingest.handlers")

    def on_idle(self, state: StateStore, now: dt.datetime) -> list[Outbound]:
        """Forgets expired message ids while the feeds are quiet (D25)."""
        self.seen_messages.sweep(state, now.date())
        return []

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        today = now.date()
        self.seen_messages.sweep(state, today)
        hospital = self.topics.hospital_of_feed(message.topic) or "UNKNOWN"
        raw = message.value or b""
        fmt_label = "unknown"
        try:
            fmt = detect_format(_header(message, "content-type"), raw)
            fmt_label = fmt
            key = message.key.decode("utf-8", "replace") if message.key else None
            mapping = self._csv_mapping(hospital) if fmt == "csv" else DEFAULT_MAPPING
            parsed = parse_message(fmt, raw, key, now.date(), mapping)
        except Rejected as rejected:
            self._log.info(
                "message rejected",
                hospital=hospital,
                reason_code=rejected.reason_code,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
            self._count(self.metrics.messages, hospital, fmt_label, "rejected")
            self._count(self.metrics.dead_letters, hospital, rejected.reason_code)
            return [
                self.envelopes.dead_letter(
                    message, rejected.reason_code, rejected.message, now, hospital
                ),
                self.envelopes.audit(
                    "ingest.rejected",
                    [message.source_ref],
                    [f"dead-letter:{SERVICE}/{message.source_ref}"],
                    now,
                    outcome="rejected",
                    hospital=hospital,
                    reason_code=rejected.reason_code,
                ),
            ]

        if self.seen_messages.seen(state, hospital, parsed.message_id):
            self._count(self.metrics.messages, hospital, fmt, "duplicate")
            return [
                self.envelopes.audit(
                    "ingest.duplicate", [message.source_ref], [], now,
                    outcome="duplicate", hospital=hospital,
                )
            ]  # fmt: skip
        self.seen_messages.remember(state, hospital, parsed.message_id, message.source_ref, today)
        parsed = self._resolve(parsed, state, hospital)
        self._count(self.metrics.messages, hospital, fmt, "accepted")
        self._count(self.metrics.message_types, hospital, fmt, parsed.message_type)
        self._count_quality(parsed, hospital)
        return self._records(message, parsed, hospital, _WIRE_FORMAT[fmt], now)

    def _resolve(self, parsed: ParsedMessage, state: StateStore, hospital: str) -> ParsedMessage:
        """D36: remember the message's FHIR Patient ids, then give the patients it names only by
        such an id their patient numbers where a Patient with that id was read before."""
        for resource_id, number in parsed.resource_ids:
            self.patient_ids.remember(state, hospital, resource_id, number)
        return resolve_patient_references(
            parsed, lambda resource_id: self.patient_ids.number_of(state, hospital, resource_id)
        )

    def _count_quality(self, parsed: ParsedMessage, hospital: str) -> None:
        """Completeness of each identity; D36: every data-quality flag (of the message, each
        identity and each event) and every skipped part, per hospital. Flag codes, resource
        types and reasons are the parsers' fixed sets, never a value from the message."""
        count_flag = self.metrics.quality_flags.inc
        for flag in parsed.flags:
            count_flag(hospital, flag)
        for skipped in parsed.skipped:
            self.metrics.skipped_entries.inc(hospital, skipped.resource_type, skipped.reason)
        for part in parsed.parts():
            if part.identity is not None:
                count_field = self.metrics.identity_fields.inc
                for name, present in identity_completeness(part.identity).items():
                    count_field(hospital, name, "true" if present else "false")
                for flag in part.identity.quality_flags:
                    count_flag(hospital, flag)
            for event in part.events:
                for flag in event.quality_flags:
                    count_flag(hospital, flag)

    def _count(self, counter: TallyCounter, *labels: str) -> None:
        counter.inc(*labels)

    def _csv_mapping(self, hospital: str) -> CsvMapping:
        try:
            return self.csv_mapping_for(hospital)
        except MappingInvalid:
            self._log.warning("csv mapping unusable", hospital=hospital)
            raise Rejected(
                "CSV_MAPPING_INVALID", "the hospital's CSV mapping file is unusable; see ingest log"
            ) from None

    def _records(
        self,
        message: Inbound,
        parsed: ParsedMessage,
        hospital: str,
        source_format: SourceFormat,
        now: dt.datetime,
    ) -> list[Outbound]:
        """D36: the records of every patient of the message; the first patient's ids are
        ``<hospital>/<message>/<n>`` (as before D36), the k-th other patient's
        ``<hospital>/<message>/p<k>/<n>``; one audit event for the whole message."""
        base_id = f"{hospital}/{parsed.message_id}"
        out: list[Outbound] = []
        record_ids: list[str] = []
        for number, part in enumerate(parsed.parts()):
            part_id = base_id if number == 0 else f"{base_id}/p{number}"
            self._part_records(
                message, parsed, part, part_id, hospital, source_format, now, out, record_ids
            )
        out.append(
            self.envelopes.audit(
                "ingest.accepted", [message.source_ref], record_ids, now, hospital=hospital
            )
        )
        return out

    def _part_records(
        self,
        message: Inbound,
        parsed: ParsedMessage,
        part: PatientPart,
        base_id: str,
        hospital: str,
        source_format: SourceFormat,
        now: dt.datetime,
        out: list[Outbound],
        record_ids: list[str],
    ) -> None:
        identity = part.identity
        # D33: the version in force at the feed message's Kafka time, for all its records.
        in_use = self.patient_ref_keys.in_use_at(message.timestamp_ms)

        def refs_of(number: str) -> PatientRefs:
            return patient_refs(in_use, hospital, number)

        refs = refs_of(part.patient_no)
        ref, previous = refs.current, refs.previous
        key = ref.encode()
        # D33: the older refs as a header too, for the pseudonymizer's hold-back (no decode).
        hint = ((PREVIOUS_REFS_HEADER, ",".join(previous).encode()),) if previous else ()
        if identity is not None:
            sealer = self.rrn_sealer.for_input(message.timestamp_ms) if self.rrn_sealer else None
            out.append(
                self._identity(
                    identity, refs, base_id, parsed, hospital, source_format, now, sealer
                )
            )
            record_ids.append(f"{base_id}/0")
        for index, (surviving_no, retired_no) in enumerate(part.merges):
            surviving, retired = refs_of(surviving_no), refs_of(retired_no)
            merge: PatientMerge = {
                "merge_id": f"{base_id}/m{index}",
                "hospital": hospital,
                "message_id": parsed.message_id,
                "received_at": now,
                "surviving_patient_ref": surviving.current,
                "retired_patient_ref": retired.current,
                "previous_surviving_patient_refs": surviving.previous,
                "previous_retired_patient_refs": retired.previous,
            }
            out.append(
                Outbound(
                    self.topics.patient_merges,
                    self.codec.encode(PATIENT_MERGE, merge),
                    key=merge["retired_patient_ref"].encode(),
                )
            )
            record_ids.append(merge["merge_id"])
            self._count(self.metrics.merges, hospital)
        for index, event in enumerate(
            events_without_own_identifiers(identity, part.events), start=1
        ):
            clinical: ClinicalRecord = {
                "record_id": f"{base_id}/{index}",
                "patient_ref": ref,
                "hospital": hospital,
                "message_id": parsed.message_id,
                "source_format": source_format,
                "received_at": now,
                "resource_type": event.resource_type,
                "event_date": event.event_date,
                "code_system": event.code_system,
                "code": event.code,
                "code_version": event.code_version,
                "value_number": event.value_number,
                "value_unit": event.value_unit,
                "value_text": event.value_text,
                "specimen_refs": list(event.specimen_refs),
                "quality_flags": list(event.quality_flags),
                "previous_patient_refs": previous,
            }
            out.append(
                Outbound(
                    self.topics.clinical_records,
                    self.codec.encode(CLINICAL_RECORD, clinical),
                    key=key,
                    headers=hint,
                )
            )
            record_ids.append(clinical["record_id"])
        for index, change in enumerate(part.consents):
            consent = consent_from_feed(f"{base_id}/c{index}", refs, hospital, change, now)
            out.append(
                Outbound(
                    self.topics.consent_events,
                    self.codec.encode(CONSENT_EVENT, consent),
                    key=key,
                )
            )
            record_ids.append(consent["event_id"])

    def _identity(
        self,
        identity: PatientIdentity,
        refs: PatientRefs,
        base_id: str,
        parsed: ParsedMessage,
        hospital: str,
        source_format: SourceFormat,
        now: dt.datetime,
        rrn_sealer: Sealer | None,
    ) -> Outbound:
        """The identity record; D13: its registration number sealed at field level
        (``rrn_sealed``, AES-256-GCM, the record id as associated data), the clear ``rrn`` null;
        D33: under the RRN key version active at the feed message's time; the patient's refs
        under older patient-ref key versions in ``previous_patient_refs``."""
        identity_record: IdentityRecord = {
            "record_id": f"{base_id}/0",
            "patient_ref": refs.current,
            "hospital": hospital,
            "message_id": parsed.message_id,
            "source_format": source_format,
            "received_at": now,
            "family_name": identity.family_name,
            "given_name": identity.given_name,
            "name_latin": identity.name_latin,
            "birth_date": identity.birth_date,
            "sex": _sex(identity.sex),
            "rrn": identity.rrn if rrn_sealer is None else None,
            "local_patient_no": identity.local_patient_no,
            "phone": identity.phone,
            "address": identity.address,
            "postal_code": identity.postal_code,
            "province_code": identity.province_code,
            "quality_flags": list(identity.quality_flags),
            "rrn_sealed": (
                rrn_sealer.seal(identity.rrn.encode(), f"{base_id}/0")
                if rrn_sealer is not None and identity.rrn is not None
                else None
            ),
            "rrn_key_id": rrn_sealer.key_id if rrn_sealer is not None else None,
            "previous_patient_refs": refs.previous,
        }
        return Outbound(
            self.topics.identity_records,
            self.codec.encode(IDENTITY_RECORD, identity_record),
            key=refs.current.encode(),
        )


def _sex(code: str) -> SexCode:
    return "M" if code == "M" else "F" if code == "F" else "U"


def _header(message: Inbound, name: str) -> str | None:
    for key, value in message.headers:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
