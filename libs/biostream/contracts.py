"""Typed views of the Avro contracts in ``schemas/avro``.

The wire records are plain dicts (what fastavro reads and writes, at no conversion cost); these
TypedDicts let mypy check every place that builds or reads one. A unit test keeps their keys equal
to the schemas' fields, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, TypedDict

SourceFormat = Literal["FHIR", "CSV", "HL7V2"]
SexCode = Literal["M", "F", "U"]
LinkOutcome = Literal["NEW_PERSON", "MATCH", "POSSIBLE_MATCH", "MERGED", "SPLIT", "REVIEWED"]

IDENTITY_RECORD = "IdentityRecord"
CLINICAL_RECORD = "ClinicalRecord"
DEAD_LETTER = "DeadLetter"
LINK_DECISION = "LinkDecision"
REVIEW_TASK = "ReviewTask"
CURATED_RECORD = "CuratedRecord"
AUDIT_EVENT = "AuditEvent"
AUDIT_EVENT_BATCH = "AuditEventBatch"
LEDGER_ENTRY = "LedgerEntry"
PATIENT_MERGE = "PatientMerge"
DATASET_NOTICE = "DatasetNotice"
CONSENT_EVENT = "ConsentEvent"

NoticeKind = Literal["CORRECTION", "WITHDRAWAL", "DATASET_WITHDRAWN"]
ConsentKind = Literal["WITHDRAWN", "GRANTED"]
LEDGER_CHECKPOINT = "LedgerCheckpoint"
REVIEW_DECISION = "ReviewDecision"
LINKAGE_PARAMS_VERSION = "LinkageParamsVersion"
ACCESS_EVENT = "AccessEvent"
ParamsState = Literal["PROPOSED", "SHADOWED", "ACTIVE", "RETIRED"]
RELEASE_POLICY_VERSION = "ReleasePolicyVersion"
ReleaseStatus = Literal["ACTIVE", "WITHDRAWN"]
WithdrawnReason = Literal["EXPIRED", "REVOKED", "CLOSED"]
RISK_REQUEST = "RiskRequest"
RISK_REPORT = "RiskReport"


class IdentityRecord(TypedDict):
    record_id: str
    patient_ref: str
    hospital: str
    message_id: str
    source_format: SourceFormat
    received_at: dt.datetime
    family_name: str | None
    given_name: str | None
    name_latin: str | None
    birth_date: dt.date | None
    sex: SexCode
    rrn: str | None
    local_patient_no: str | None
    phone: str | None
    address: str | None
    postal_code: str | None
    province_code: str | None
    quality_flags: list[str]
    rrn_sealed: bytes | None
    rrn_key_id: str | None
    # D33: the same hospital patient's refs under older patient-ref key versions, newest first.
    previous_patient_refs: list[str]


class ClinicalRecord(TypedDict):
    record_id: str
    patient_ref: str
    hospital: str
    message_id: str
    source_format: SourceFormat
    received_at: dt.datetime
    resource_type: str
    event_date: dt.date | None
    code_system: str | None
    code: str | None
    code_version: str | None
    value_number: float | None
    value_unit: str | None
    value_text: str | None
    specimen_refs: list[str]
    quality_flags: list[str]
    previous_patient_refs: list[str]  # D33, as on IdentityRecord


class DeadLetter(TypedDict):
    dead_letter_id: str
    service: str
    reason_code: str
    message: str
    hospital: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    source_key: bytes | None
    original: bytes
    failed_at: dt.datetime
    sealed_original: bytes | None
    seal_key_id: str | None


class LinkDecision(TypedDict):
    decision_id: str
    patient_ref: str
    record_id: str
    hospital: str
    person_id: str
    previous_person_id: str | None
    outcome: LinkOutcome
    score: float
    rule: str
    sequence: int
    decided_at: dt.datetime
    birth_year: int | None
    sex: SexCode
    province_code: str | None
    birth_month: int | None
    postal_prefix: str | None
    district_code: str | None
    params_version: int | None  # D41: the parameter version in force; None: file/defaults


class FieldComparison(TypedDict):
    field: str
    level: str
    weight: float


class ReviewTask(TypedDict):
    task_id: str
    created_at: dt.datetime
    record_id: str
    patient_ref: str
    hospital: str
    provisional_person_id: str
    candidate_person_ids: list[str]
    score: float
    reason: str
    comparisons: list[FieldComparison]


class CuratedRecord(TypedDict):
    curated_id: str
    dataset: str
    policy_version: str
    approval_ref: str
    pseudonym: str
    key_version: str
    hospital: str
    resource_type: str
    event_date: dt.date | None
    code_system: str | None
    code: str | None
    code_version: str | None
    value_number: float | None
    value_unit: str | None
    birth_year: int | None
    sex: SexCode
    province_code: str | None
    released_at: dt.datetime
    age_band: str | None
    postal_prefix: str | None
    district_code: str | None
    value_text: str | None
    specimen_ids: list[str]
    event_date_handling: str | None


class PolicyInForce(TypedDict):
    """The release policy a ``pseudonymizer.policy_in_force`` event announces (D23c)."""

    policy_version: str
    digest: str
    approval_ref: str
    purpose: str
    record_types: list[str]
    fields: list[str]


class AuditEvent(TypedDict):
    event_id: str
    occurred_at: dt.datetime
    service: str
    principal: str
    action: str
    purpose: str | None
    hospital: str | None
    dataset: str | None
    inputs: list[str]
    outputs: list[str]
    outcome: str
    reason_code: str | None
    policy: PolicyInForce | None


class LedgerEntry(TypedDict):
    sequence: int
    appended_at: dt.datetime
    event_id: str
    event_payload: bytes
    prev_hash: bytes
    entry_hash: bytes
    # D23a: 2 for entries whose hash covers the events' Merkle root; 1 before (no root, count 0).
    hash_version: int
    event_count: int
    events_root: bytes | None


class KeyHandover(TypedDict):
    new_key_id: str
    new_key_version: str
    new_public_key: bytes
    activated_at: dt.datetime
    signature: bytes
    new_key_signature: bytes


class LedgerCheckpoint(TypedDict):
    size: int
    root_hash: bytes
    tip_hash: bytes
    checkpoint_at: dt.datetime
    key_id: str
    signature: bytes
    # D34: only on a hand-over checkpoint (the signing key changes after it); else None.
    handover: KeyHandover | None


class PatientMerge(TypedDict):
    merge_id: str
    hospital: str
    message_id: str
    received_at: dt.datetime
    surviving_patient_ref: str
    retired_patient_ref: str
    previous_surviving_patient_refs: list[str]  # D33, newest first
    previous_retired_patient_refs: list[str]


class DatasetNotice(TypedDict):
    notice_id: str
    dataset: str
    policy_version: str
    approval_ref: str
    kind: NoticeKind
    pseudonym: str
    new_pseudonym: str | None
    key_version: str
    curated_ids: list[str]
    date_offset_change_days: int | None
    reason: str
    issued_at: dt.datetime


class ConsentEvent(TypedDict):
    event_id: str
    kind: ConsentKind
    patient_ref: str | None
    person_id: str | None
    datasets: list[str]
    recorded_at: dt.datetime
    source: str
    previous_patient_refs: list[str]  # D33: with patient_ref; empty for a person_id event


class AuditEventBatch(TypedDict):
    batch_id: str
    service: str
    packed_at: dt.datetime
    events: list[bytes]


ReviewOutcome = Literal["SAME_PERSON", "DIFFERENT_PEOPLE", "ESCALATE"]


class ReviewDecision(TypedDict):
    task_id: str
    decision: ReviewOutcome
    candidate_person_id: str | None
    reviewer: str
    reason: str | None
    decided_at: dt.datetime


class OffsetRange(TypedDict):
    partition: int
    first: int
    last: int


class TrainingSample(TypedDict):
    topic: str
    records: int
    skipped: int
    offsets: list[OffsetRange]
    first_record_at: dt.datetime | None
    last_record_at: dt.datetime | None
    sample_sha256: str


class ShadowReport(TypedDict):
    baseline_version: int | None
    records: int
    patients: int
    offsets: list[OffsetRange]
    persons_before: int
    persons_after: int
    patients_regrouped: int
    pairs_linked: int
    pairs_unlinked: int
    outcomes_changed: int
    outcomes_before: dict[str, int]
    outcomes_after: dict[str, int]
    transitions: dict[str, int]
    seconds: float
    shadowed_by: str
    shadowed_at: dt.datetime


class LinkageParamsVersion(TypedDict):
    """D41: one version of linkage's parameters on the compacted ``linkage.params`` topic."""

    version: int
    state: ParamsState
    params_json_zlib: bytes
    params_sha256: str
    trained_on: TrainingSample
    proposed_by: str
    proposed_at: dt.datetime
    shadow: ShadowReport | None
    activated_by: str | None
    activated_at: dt.datetime | None
    retired_at: dt.datetime | None


class AccessEvent(TypedDict):
    """D45: one event of a data-access application on ``access.events``."""

    event_id: str
    application_id: str
    sequence: int
    event_type: str
    actor: str
    occurred_at: dt.datetime
    body_json: str


class ReleasePolicyVersion(TypedDict):
    """D46: one signed version of a dataset's release policy on the compacted
    ``access.policies`` topic (keyed by dataset)."""

    dataset: str
    version: int
    status: ReleaseStatus
    withdrawn_reason: WithdrawnReason | None
    policy_json: bytes
    application_id: str
    approval_ref: str
    valid_from_ms: int
    valid_until_ms: int
    principal: str
    issued_at_ms: int
    board_key_id: str
    signature: bytes | None


class RiskRequest(TypedDict):
    """D48: a disclosure-risk report asked for on ``access.risk-requests``."""

    request_id: str
    application_id: str
    requested_by: str
    requested_at: dt.datetime
    draft_policy_json: str
    variants_json: str


class RiskReport(TypedDict):
    """D48: the pseudonymizer's counts-only answer on ``access.risk-reports``."""

    request_id: str
    application_id: str
    computed_at: dt.datetime
    outcome: str
    error_reason: str | None
    records_read: int
    figures_json: str | None


TYPED_VIEWS: dict[str, type] = {
    IDENTITY_RECORD: IdentityRecord,
    CLINICAL_RECORD: ClinicalRecord,
    DEAD_LETTER: DeadLetter,
    LINK_DECISION: LinkDecision,
    REVIEW_TASK: ReviewTask,
    CURATED_RECORD: CuratedRecord,
    AUDIT_EVENT: AuditEvent,
    AUDIT_EVENT_BATCH: AuditEventBatch,
    LEDGER_ENTRY: LedgerEntry,
    PATIENT_MERGE: PatientMerge,
    DATASET_NOTICE: DatasetNotice,
    CONSENT_EVENT: ConsentEvent,
    LEDGER_CHECKPOINT: LedgerCheckpoint,
    REVIEW_DECISION: ReviewDecision,
    LINKAGE_PARAMS_VERSION: LinkageParamsVersion,
    ACCESS_EVENT: AccessEvent,
    RELEASE_POLICY_VERSION: ReleasePolicyVersion,
    RISK_REQUEST: RiskRequest,
    RISK_REPORT: RiskReport,
}
