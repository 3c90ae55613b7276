"""Linkage use cases: identity records, hospital merges and review decisions in; decisions out.

The master person index (``domain.index.PersonIndex``) lives in memory; what it must not lose (refs,
persons, aliases, open review tasks, the creation counter) is written to the processor's
``StateStore`` after every message, so the changelog commits in the same transaction as the
decisions. The blocking index is derived and rebuilt from that state on the first message after a
start (and after a failed message, whose state changes the processor rolled back).
"""

from __future__ import annotations

import datetime as dt
import gc
import time
import zlib
from dataclasses import dataclass
from typing import Any

from biostream.codec import AvroCodec, DecodeError
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    IDENTITY_RECORD,
    LINK_DECISION,
    LINKAGE_PARAMS_VERSION,
    PATIENT_MERGE,
    REVIEW_DECISION,
    REVIEW_TASK,
    LinkDecision,
    LinkOutcome,
    ReviewTask,
)
from biostream.envelopes import Envelopes, Rejected
from biostream.keyring import PERSON_KEY, KeyRing, KeyVersion
from biostream.logs import get_logger
from biostream.observability import TallyCounter
from biostream.sealing import SealError, SealingKeys, SealKeyNotHeld
from biostream.state import StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Gauge

from linkage import state as linkage_state
from linkage.domain.district import district_of
from linkage.domain.index import (
    Change,
    LinkResult,
    PersonIndex,
    RefEntry,
    comparisons,
)
from linkage.domain.params_versions import params_digest
from linkage.domain.profile import Identity, Profile, make_profile, rrn_hash_keys
from linkage.domain.rotation import ROTATION_REASON, ROTATION_RULE
from linkage.domain.weights import Params

SERVICE = "linkage"

# The index is millions of long-lived objects; the cyclic GC's full collections would walk all of
# them (pauses of 0.5 s at 30k persons, growing with the index). Frozen objects are skipped, so the
# index is frozen after a rebuild and again every FREEZE_EVERY messages.
FREEZE_EVERY = 20_000


@dataclass(frozen=True)
class LinkageMetrics:
    outcomes: TallyCounter
    districts: TallyCounter
    persons: Gauge
    restore_seconds: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LinkageMetrics:
        return cls(
            outcomes=TallyCounter(  # one per record: a dict update, not a locked child lookup
                "biostream_linkage_decisions",
                "Link decisions by outcome and rule",
                ("outcome", "rule"),
                registry,
            ),
            districts=TallyCounter(
                "biostream_linkage_districts",
                "Identity records by how their address gave a 시군구 code (D24a)",
                ("outcome",),
                registry,
            ),
            persons=Gauge(
                "biostream_linkage_persons", "Persons in the master person index", registry=registry
            ),
            restore_seconds=Gauge(
                "biostream_linkage_index_rebuild_seconds",
                "Time to rebuild the in-memory index from the restored state",
                registry=registry,
            ),
        )


def freeze_long_lived() -> None:
    """Move everything alive now out of the cyclic GC's sight (see FREEZE_EVERY)."""
    gc.collect()
    gc.freeze()


class LinkageHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        person_key: bytes | KeyRing,
        params: Params,
        metrics: LinkageMetrics,
        rrn_sealer: SealingKeys | None = None,
    ) -> None:
        self.rrn_sealer = rrn_sealer
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        # D33: every person-key version held; one key alone is version k1.
        self.person_keys = (
            person_key
            if isinstance(person_key, KeyRing)
            else KeyRing(PERSON_KEY, [KeyVersion("k1", person_key)])
        )
        # D41: ``params`` (a parameter file or the defaults) applies until a version is activated
        # on linkage.params; the version applied is kept in the state (``linkage.state``).
        self.fallback_params = params
        self.params = params
        self.params_version: int | None = None
        self._params_sha: str | None = None
        self.metrics = metrics
        self.index: PersonIndex | None = None
        self._state: StateStore | None = None
        self._since_freeze = 0
        self._log = get_logger("linkage.handlers")

    # ------------------------------------------------------------------------------ dispatch

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        # A new store object means the processor restored the state afresh (a new writer).
        fresh = self.index is None or state is not self._state
        index = self.rebuild(state) if fresh or self.index is None else self.index
        index.id_key = self.person_keys.active_at(message.timestamp_ms).material
        try:
            if message.topic == self.topics.patient_merges:
                out = self._patient_merge(index, message, state, now)
            elif message.topic == self.topics.review_decisions:
                out = self._review_decision(index, message, state, now)
            elif message.topic == self.topics.linkage_params:
                out = self._params_version(index, message, state, now)
            else:
                out = self._identity(index, message, state, now)
            linkage_state.save_changes(index, state)
        except Exception:
            # The processor rolls the message's state changes back; the in-memory index may be
            # ahead of them, so it is rebuilt from the state before the next message.
            self.index = None
            raise
        self.metrics.persons.set(len(index.persons))
        self._since_freeze += 1
        if self._since_freeze >= FREEZE_EVERY:
            freeze_long_lived()
            self._since_freeze = 0
        return out

    def rebuild(self, state: StateStore) -> PersonIndex:
        """D-linkage-4: the in-memory index rebuilt from the durable state
        (``linkage.state.load_index``), timed in the rebuild gauge, then kept and frozen out of the
        cyclic GC's sight; on the first message after a start or after a failed message, and by
        the linkage benchmark's restore figures."""
        started = time.monotonic()
        self._restore_params(state)
        index = linkage_state.load_index(state, self.params, self.person_keys.newest.material)
        elapsed = time.monotonic() - started
        self.metrics.restore_seconds.set(elapsed)
        self._log.info(
            "index rebuilt", persons=len(index.persons), refs=len(index.refs),
            elapsed_s=round(elapsed, 3),
        )  # fmt: skip
        self.index = index
        self._state = state
        freeze_long_lived()
        return index

    # ---------------------------------------------------------------------------- parameters

    def _restore_params(self, state: StateStore) -> None:
        """D41: the parameters of the version the state says was applied, else the fallback."""
        stored = linkage_state.params_version(state)
        if stored is None:
            self.params, self.params_version, self._params_sha = self.fallback_params, None, None
            return
        version, sha256, chunks = stored
        if sha256 != self._params_sha:  # parsed once, not at every rebuild
            text = zlib.decompress(linkage_state.params_of_version(state, chunks)).decode()
            self.params = Params.from_json(text)
            self._params_sha = sha256
        self.params_version = version

    def _params_version(
        self, index: PersonIndex, message: Inbound, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        """D41: a parameter version that became ACTIVE is applied from this message on, without
        a restart: recorded in the state (in this batch's transaction), then set on the index.
        Other states (proposed, shadowed, retired) change nothing here."""
        record = self.envelopes.decode_or_reject(message, LINKAGE_PARAMS_VERSION, now)
        if isinstance(record, Rejected):
            return record.outputs
        version = record["version"]
        if record["state"] != "ACTIVE" or version == self.params_version:
            return []
        try:
            text = zlib.decompress(record["params_json_zlib"]).decode()
            if params_digest(text) != record["params_sha256"]:
                raise DecodeError("PARAMS_DIGEST_MISMATCH", "parameters differ from their digest")
            params = Params.from_json(text)
        except DecodeError as error:
            return self.envelopes.rejection(message, error, now)
        except (zlib.error, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            invalid = DecodeError(
                "PARAMS_INVALID", f"unreadable parameters ({type(error).__name__})"
            )
            return self.envelopes.rejection(message, invalid, now)
        previous = self.params_version
        linkage_state.save_params_version(
            state, version, record["params_json_zlib"], record["params_sha256"]
        )
        self.params, self.params_version = params, version
        self._params_sha = record["params_sha256"]
        index.params = params
        self._log.info(
            "parameter version applied", version=version, previous=previous,
            sha256=record["params_sha256"][:16],
        )  # fmt: skip
        return [
            self.envelopes.audit(
                "linkage.params-applied", [f"{self.topics.linkage_params}/{version}"], [], now,
                outcome="applied",
            )
        ]  # fmt: skip

    # ------------------------------------------------------------------------------ identity

    def _identity(
        self, index: PersonIndex, message: Inbound, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        record = self.envelopes.decode_or_reject(message, IDENTITY_RECORD, now)
        if isinstance(record, Rejected):
            return record.outputs
        try:
            linked = link_input(record, message.timestamp_ms, self.person_keys, self.rrn_sealer)
        except SealError as error:
            # D33: kept as a dead letter (replayable once the key is there), never dropped.
            code = "RRN_KEY_NOT_HELD" if isinstance(error, SealKeyNotHeld) else "RRN_SEAL_INVALID"
            return self.envelopes.rejection(message, DecodeError(code, str(error)), now)
        self.metrics.districts.inc(linked.district_outcome)
        result = index.link(linked.ref, linked.profile, linked.meta, linked.previous)
        out = self._decisions(index, result.changes, now)
        if not result.changes:
            self.metrics.outcomes.inc("UNCHANGED", result.rule)
            out.append(
                self.envelopes.audit(
                    "linkage.confirmed", [record["record_id"]], [], now,
                    hospital=record["hospital"], outcome="unchanged",
                )
            )  # fmt: skip
            return out
        decision_ids = [f"{c.ref}/{c.sequence}" for c in result.changes]
        rotated = ROTATION_REASON if result.rule == ROTATION_RULE else None
        out.append(
            self.envelopes.audit(
                "linkage.linked", [record["record_id"]], decision_ids, now,
                hospital=record["hospital"], outcome=result.outcome.lower(), reason_code=rotated,
            )
        )  # fmt: skip
        if result.candidates:
            # A possible match, or a match that refused to merge a person the record also
            # matched (D43: that merge is a steward's to make).
            out.extend(self._open_review(index, record["patient_ref"], result, state, now))
        return out

    def _open_review(
        self, index: PersonIndex, ref: str, result: LinkResult, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        entry = index.refs[ref]
        task_id = f"review/{ref}/{entry.sequence}"
        candidates = [[c.person, index.persons[c.person].refs[0]] for c in result.candidates]
        linkage_state.open_review_task(state, task_id, ref, candidates)
        task: ReviewTask = {
            "task_id": task_id,
            "created_at": now,
            "record_id": entry.meta[0],
            "patient_ref": ref,
            "hospital": entry.meta[1],
            "provisional_person_id": result.person,
            "candidate_person_ids": [c.person for c in result.candidates],
            "score": result.score,
            "reason": result.reason,
            # Level codes and weights against the best candidate, for the review desk's
            # field-by-field view (the desk shows the values from identity.records).
            "comparisons": [
                {"field": name, "level": level, "weight": round(weight, 3)}
                for name, level, weight in (
                    comparisons(index.params, entry.profile, result.candidates[0].levels)
                    if result.candidates
                    else []
                )
            ],
        }
        return [
            Outbound(
                self.topics.review_tasks, self.codec.encode(REVIEW_TASK, task), key=task_id.encode()
            ),
            self.envelopes.audit(
                "linkage.review-opened", [entry.meta[0]], [task_id], now, hospital=entry.meta[1]
            ),
        ]

    # ------------------------------------------------------------------------- corrections

    def _patient_merge(
        self, index: PersonIndex, message: Inbound, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        merge = self.envelopes.decode_or_reject(message, PATIENT_MERGE, now)
        if isinstance(merge, Rejected):
            return merge.outputs
        changes = index.merge_refs(
            merge["surviving_patient_ref"], merge["retired_patient_ref"], "hospital-merge",
            merge["previous_surviving_patient_refs"], merge["previous_retired_patient_refs"],
        )  # fmt: skip
        out = self._decisions(index, changes, now)
        out.append(
            self.envelopes.audit(
                "linkage.merged", [merge["merge_id"]], [f"{c.ref}/{c.sequence}" for c in changes],
                now, hospital=merge["hospital"], outcome="merged" if changes else "unchanged",
            )
        )  # fmt: skip
        return out

    def _review_decision(
        self, index: PersonIndex, message: Inbound, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        decision = self.envelopes.decode_or_reject(message, REVIEW_DECISION, now)
        if isinstance(decision, Rejected):
            return decision.outputs
        task_id = decision["task_id"]
        stored = linkage_state.review_task(state, task_id)
        if stored is None:
            return [
                self.envelopes.audit(
                    "linkage.reviewed", [task_id], [], now,
                    outcome="rejected", reason_code="REVIEW_TASK_UNKNOWN_OR_CLOSED",
                )
            ]  # fmt: skip
        ref, candidates = stored
        verdict = decision["decision"]
        changes: list[Change] = []
        if verdict == "SAME_PERSON":
            chosen = decision["candidate_person_id"]
            match = next((c for c in candidates if c[0] == chosen), None) if chosen else None
            candidate_ref = (match or candidates[0])[1]
            changes = index.merge_refs(candidate_ref, ref, "review")
        elif verdict == "DIFFERENT_PEOPLE":
            candidate_refs = {c[1] for c in candidates}
            together = any(
                r in index.refs and index.refs[r].person == index.refs[ref].person
                for r in candidate_refs
            )
            changes = index.split_ref(ref, "review") if together else index.confirm(ref, "review")
        if verdict != "ESCALATE":
            linkage_state.close_review_task(state, task_id)
        out = self._decisions(index, changes, now)
        out.append(
            self.envelopes.audit(
                "linkage.reviewed", [task_id], [f"{c.ref}/{c.sequence}" for c in changes], now,
                outcome=verdict.lower(),
            )
        )  # fmt: skip
        return out

    # ------------------------------------------------------------------------------ output

    def _decisions(self, index: PersonIndex, changes: tuple[Change, ...] | list[Change],
                   now: dt.datetime) -> list[Outbound]:  # fmt: skip
        out: list[Outbound] = []
        for change in changes:
            entry = index.refs[change.ref]
            record_id, hospital, province = entry.meta[:3]
            wire: LinkDecision = {
                "decision_id": f"{change.ref}/{change.sequence}",
                "patient_ref": change.ref,
                "record_id": record_id,
                "hospital": hospital,
                "person_id": change.person,
                "previous_person_id": change.previous,
                "outcome": _outcome(change.outcome),
                "score": change.score,
                "rule": change.rule,
                "sequence": change.sequence,
                "decided_at": now,
                "birth_year": entry.profile.birth_year,
                "sex": entry.profile.sex or "U",  # type: ignore[typeddict-item]
                "province_code": province or None,
                # Coarse quasi-identifiers for the pseudonymizer's generalisation; never the
                # full postal code or the address (D-pseudonymizer-2).
                "birth_month": int(entry.profile.birth[4:6]) if entry.profile.birth else None,
                "postal_prefix": _postal_prefix(entry.profile.postal),
                "district_code": _district(entry),
                "params_version": self.params_version,  # D41
            }
            self.metrics.outcomes.inc(change.outcome, change.rule)
            out.append(
                Outbound(
                    self.topics.link_decisions,
                    self.codec.encode(LINK_DECISION, wire),
                    key=change.ref.encode(),
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class LinkInput:
    """An identity record as the person index takes it: what the handler links, and what
    ``linkage train --from-topic`` and ``linkage shadow`` train on and replay (D41)."""

    ref: str
    profile: Profile
    meta: list[str]  # record id, hospital, province code or "", district code or ""
    previous: tuple[str, ...]  # D33: the patient's refs under older patient-ref key versions
    district_outcome: str


def link_input(
    record: dict[str, Any], timestamp_ms: int, person_keys: KeyRing, rrn_sealer: SealingKeys | None
) -> LinkInput:
    """An identity record (the wire dict) into the profile the index links (D-linkage-1), its
    registration number opened (``SealError`` when it does not) and hashed under the person-key
    versions in use at the record's Kafka timestamp (D33)."""
    birth = record["birth_date"]
    identity = Identity(
        record_id=record["record_id"],
        family_name=record["family_name"],
        given_name=record["given_name"],
        name_latin=record["name_latin"],
        birth_date=birth.isoformat() if birth is not None else None,
        sex=record["sex"],
        rrn=registration_number(record, rrn_sealer),
        phone=record["phone"],
        postal_code=record["postal_code"],
        address=record["address"],
    )
    profile = make_profile(identity, rrn_hash_keys(person_keys, timestamp_ms))
    district = district_of(record["address"], record["province_code"])
    meta = [
        record["record_id"], record["hospital"], record["province_code"] or "",
        district.code or "",
    ]  # fmt: skip
    # D33: empty from writers before patient-ref key rotation.
    previous = tuple(record["previous_patient_refs"])
    return LinkInput(record["patient_ref"], profile, meta, previous, district.outcome)


def registration_number(record: dict[str, Any], rrn_sealer: SealingKeys | None) -> str | None:
    """The registration number: sealed by ingest (v2) under the key its ``rrn_key_id`` names
    (D33: any version held), or in clear from a v1 producer."""
    sealed = record.get("rrn_sealed")
    if isinstance(sealed, bytes):
        if rrn_sealer is None:
            raise ValueError("a sealed registration number arrived but no RRN key is configured")
        key_id = record.get("rrn_key_id")
        return rrn_sealer.unseal(
            sealed, str(record["record_id"]), key_id if isinstance(key_id, str) else None
        ).decode()
    clear = record.get("rrn")
    return clear if isinstance(clear, str) else None


def _outcome(value: str) -> LinkOutcome:
    outcomes: dict[str, LinkOutcome] = {
        "NEW_PERSON": "NEW_PERSON", "MATCH": "MATCH", "POSSIBLE_MATCH": "POSSIBLE_MATCH",
        "MERGED": "MERGED", "SPLIT": "SPLIT", "REVIEWED": "REVIEWED",
    }  # fmt: skip
    return outcomes[value]


def _district(entry: RefEntry) -> str | None:
    """The 시군구 code kept with the ref (D24a); for an entry stored before D24 (three-item meta),
    read from the normalised address the profile kept (it lacks the leading 시도 name, which the
    province code stands in for)."""
    if len(entry.meta) > 3:
        return entry.meta[3] or None
    province = entry.meta[2] or None
    return district_of(entry.profile.address, province).code


def _postal_prefix(postal_code: str | None) -> str | None:
    """First three digits of a 5-digit postal code; None for a missing or legacy NNN-NNN code."""
    if postal_code is None or len(postal_code) != 5 or not postal_code.isdigit():
        return None
    return postal_code[:3]
