"""Pseudonymizer use case: clinical records, link decisions and consent events in; curated records
and dataset notices out, for every release policy of the process.

State keys (the service's private changelog, never a curated topic):
``dec:<patient_ref>`` person facts of the newest decision; ``wait:<patient_ref>`` clinical records
waiting for a decision; ``refs:<person_id>`` the patient_refs of a person; ``rel:<dataset>:<ref>``
what a patient_ref has released into a dataset (pseudonym, key version, date offset, curated ids);
``kc:<dataset>:<class>`` / ``kh:<dataset>:<class>`` k-anonymity class members and held records;
``wd:<person_id>`` / ``wdref:<patient_ref>`` consent withdrawals; ``cg:<person_id>`` consent given;
``pol:<dataset>`` the policy version and digest last announced in the ledger (D23c).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from biostream.codec import AvroCodec, DecodeError
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    CLINICAL_RECORD,
    CONSENT_EVENT,
    CURATED_RECORD,
    DATASET_NOTICE,
    LINK_DECISION,
    DatasetNotice,
    NoticeKind,
)
from biostream.envelopes import Envelopes
from biostream.observability import TallyCounter
from biostream.state import StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge

from pseudonymizer.domain import kanon
from pseudonymizer.domain.in_force import InForce, policy_announcement
from pseudonymizer.domain.pseudonyms import date_offset, notice_id, pseudonym
from pseudonymizer.domain.release import (
    Keyed,
    PersonFacts,
    Released,
    build,
    chunk_from_bytes,
    chunk_key,
    chunk_to_bytes,
    class_key,
    decision_key,
    pack,
    quasi_identifiers,
    released_key,
    unpack,
)

SERVICE = "pseudonymizer"
SWEEP_INTERVAL = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class PseudonymizerMetrics:
    released: TallyCounter
    withheld: Counter
    suppressed: Counter
    notices: Counter
    waiting: Gauge
    held_k: Gauge

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
        )


# Curated ids per CORRECTION notice: 5,000 ids of 34 characters are ~180 KB, well under Kafka's
# 1 MB message size; a longer list goes out in several notices (consumers apply each on its own).
NOTICE_MAX_IDS = 5000


class PseudonymizerHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        releases: list[Keyed],
        metrics: PseudonymizerMetrics,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        self.releases = releases
        self.metrics = metrics
        self.in_force = [InForce.of(keyed.policy) for keyed in releases]
        self._next_sweep: dt.datetime | None = None
        self._gauges_set = False

    # --- dispatch --------------------------------------------------------------------------------

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        if not self._gauges_set:
            self._set_gauges(state)
        contracts = {
            self.topics.clinical_records: CLINICAL_RECORD,
            self.topics.link_decisions: LINK_DECISION,
            self.topics.consent_events: CONSENT_EVENT,
        }
        contract = contracts[message.topic]
        announced = self._announce(state, now)
        try:
            record = self.codec.decode(message.value, contract)
        except DecodeError as error:
            return [
                *announced,
                self.envelopes.dead_letter(message, error.reason_code, str(error), now),
                self.envelopes.audit(
                    "pseudonymizer.rejected", [message.source_ref], [], now,
                    outcome="rejected", reason_code=error.reason_code,
                ),
            ]  # fmt: skip
        if contract == CLINICAL_RECORD:
            out = self._on_clinical(record, message.value or b"", state, now)
        elif contract == LINK_DECISION:
            out = self._on_decision(record, state, now)
        else:
            out = self._on_consent(record, message.source_ref, state, now)
        return announced + out + self._sweep(state, now)

    def _announce(self, state: StateStore, now: dt.datetime) -> list[Outbound]:
        """D23c: before anything is released under a policy, the ledger says it is in force (in
        the same transaction as the message's outputs), and again after a change of the policy's
        version or content; the state remembers what was announced, so a restart with the same
        policy announces nothing."""
        out: list[Outbound] = []
        for policy in self.in_force:
            announcement = policy_announcement(policy, state.get(policy.state_key))
            if announcement is None:
                continue
            state.put(policy.state_key, policy.marker)
            out.append(
                self.envelopes.audit(
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
                )
            )  # fmt: skip
        return out

    def decision_known(self, message: Inbound, state: StateStore) -> bool:
        """For the processor's hold-back: a clinical record is worth handling only once its
        person's link decision is here (ingest keys it by its patient_ref); before that this
        handler could only park it in the state. A wrong guess costs time, never correctness."""
        if message.topic != self.topics.clinical_records or message.key is None:
            return True
        return state.get(decision_key(message.key.decode("ascii", "replace"))) is not None

    def _set_gauges(self, state: StateStore) -> None:
        """The gauges from the state restored at start-up (once; then kept up to date)."""
        self._gauges_set = True
        self.metrics.waiting.set(sum(1 for _ in state.keys_with_prefix("wait:")))
        for keyed in self.releases:
            dataset = keyed.policy.dataset
            held = sum(
                len(unpack(state.get(key) or b""))
                for key in state.keys_with_prefix(f"kh:{dataset}:")
            )
            self.metrics.held_k.labels(dataset).set(held)

    # --- clinical records and the join --------------------------------------------------------------

    def _on_clinical(
        self, clinical: dict[str, Any], raw: bytes, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        stored = state.get(decision_key(clinical["patient_ref"]))
        if stored is None:
            wait_key = f"wait:{clinical['patient_ref']}"
            waiting = state.get(wait_key)
            state.put(wait_key, (waiting or b"") + pack([raw]))
            if waiting is None:
                self.metrics.waiting.inc()
            return [
                self.envelopes.audit(
                    "pseudonymizer.held", [clinical["record_id"]], [], now,
                    outcome="held", hospital=clinical["hospital"],
                    reason_code="AWAITING_LINK_DECISION",
                )
            ]  # fmt: skip
        facts = PersonFacts.from_bytes(stored)
        out: list[Outbound] = []
        for keyed in self.releases:
            out += self._release(clinical, raw, facts, keyed, state, now)
        return out

    def _release(
        self,
        clinical: dict[str, Any],
        raw: bytes,
        facts: PersonFacts,
        keyed: Keyed,
        state: StateStore,
        now: dt.datetime,
    ) -> list[Outbound]:
        policy = keyed.policy
        if clinical["resource_type"] not in policy.record_types:
            return [self._withheld(clinical, policy.dataset, "RESOURCE_TYPE_NOT_APPROVED", now)]
        if self._withdrawn(state, facts.person_id, policy.dataset):
            return [self._withheld(clinical, policy.dataset, "CONSENT_WITHDRAWN", now)]
        if policy.consent_required and not self._granted(state, facts.person_id, policy.dataset):
            return [self._withheld(clinical, policy.dataset, "NO_CONSENT", now)]
        quasi = quasi_identifiers(clinical, facts, policy)
        out: list[Outbound] = []
        opened_class: str | None = None
        if policy.k_anonymity.min_k > 1:
            klass = class_key(quasi)
            members_key = f"kc:{policy.dataset}:{klass}"
            admission = kanon.admit(
                state.get(members_key), facts.person_id, policy.k_anonymity.min_k
            )
            if admission.state != state.get(members_key):
                state.put(members_key, admission.state)
            if not admission.releasable:
                hold_key = f"kh:{policy.dataset}:{klass}"
                entry = kanon.hold_entry(now.timestamp(), raw)
                state.put(hold_key, (state.get(hold_key) or b"") + pack([entry]))
                self.metrics.held_k.labels(policy.dataset).inc()
                return [
                    self.envelopes.audit(
                        "pseudonymizer.held", [clinical["record_id"]], [f"dataset:{policy.dataset}"],
                        now, outcome="held", hospital=clinical["hospital"], dataset=policy.dataset,
                        purpose=policy.policy_version, reason_code="BELOW_K",
                    )
                ]  # fmt: skip
            if admission.opened:
                opened_class = klass
        out += self._emit(clinical, facts, keyed, quasi, state, now)
        if opened_class is not None:
            out += self._release_held(keyed, opened_class, state, now)
        return out

    def _emit(
        self,
        clinical: dict[str, Any],
        facts: PersonFacts,
        keyed: Keyed,
        quasi: dict[str, Any],
        state: StateStore,
        now: dt.datetime,
    ) -> list[Outbound]:
        policy = keyed.policy
        curated = build(clinical, facts, keyed, quasi, now)
        offset = date_offset(keyed.key, facts.person_id, policy.generalisation.shift_days)
        out: list[Outbound] = []
        rel_key = released_key(policy.dataset, clinical["patient_ref"])
        stored = state.get(rel_key)
        released = Released.from_bytes(stored) if stored else None
        if released is not None and released.pseudonym != curated["pseudonym"]:
            # The same patient_ref released under another pseudonym before: a key rotation (or a
            # relink whose notice this replaces). Move what the consumer holds first.
            out += self._correct(keyed, rel_key, released, curated["pseudonym"], offset,
                                 "KEY_ROTATED", clinical["record_id"], state, now)  # fmt: skip
        if released is None:
            released = Released(curated["pseudonym"], policy.key_version, offset, [])
        released.pseudonym, released.key_version = curated["pseudonym"], policy.key_version
        released.offset_days = offset
        full = released.add(curated["curated_id"])
        if full is not None:
            state.put(chunk_key(rel_key, released.chunks - 1), chunk_to_bytes(full))
        state.put(rel_key, released.to_bytes())
        self.metrics.released.inc(policy.dataset)
        out += [
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
        return out

    def _release_held(
        self, keyed: Keyed, klass: str, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        hold_key = f"kh:{keyed.policy.dataset}:{klass}"
        held = state.get(hold_key)
        if held is None:
            return []
        state.delete(hold_key)
        out: list[Outbound] = []
        for entry in unpack(held):
            self.metrics.held_k.labels(keyed.policy.dataset).dec()
            _, raw = kanon.read_entry(entry)
            clinical = self.codec.decode(raw, CLINICAL_RECORD)
            stored = state.get(decision_key(clinical["patient_ref"]))
            assert stored is not None  # only records with a decision are ever held for k
            out += self._release(clinical, raw, PersonFacts.from_bytes(stored), keyed, state, now)
        return out

    def _sweep(self, state: StateStore, now: dt.datetime) -> list[Outbound]:
        """Suppresses records that waited longer than the policy's ``max_hold_hours`` for their
        class to reach k. Runs at most every SWEEP_INTERVAL of processing time."""
        if self._next_sweep is not None and now < self._next_sweep:
            return []
        self._next_sweep = now + SWEEP_INTERVAL
        out: list[Outbound] = []
        for keyed in self.releases:
            policy = keyed.policy
            if policy.k_anonymity.min_k <= 1:
                continue
            limit = now.timestamp() - policy.k_anonymity.max_hold_hours * 3600
            for hold_key in list(state.keys_with_prefix(f"kh:{policy.dataset}:")):
                entries = unpack(state.get(hold_key) or b"")
                keep = []
                for entry in entries:
                    held_since, raw = kanon.read_entry(entry)
                    if held_since > limit:
                        keep.append(entry)
                        continue
                    clinical = self.codec.decode(raw, CLINICAL_RECORD)
                    self.metrics.suppressed.labels(policy.dataset).inc()
                    self.metrics.held_k.labels(policy.dataset).dec()
                    out.append(
                        self.envelopes.audit(
                            "pseudonymizer.suppressed", [clinical["record_id"]],
                            [f"dataset:{policy.dataset}"], now, outcome="suppressed",
                            hospital=clinical["hospital"], dataset=policy.dataset,
                            purpose=policy.policy_version, reason_code="K_HOLD_EXPIRED",
                        )
                    )  # fmt: skip
                if len(keep) == len(entries):
                    continue
                if keep:
                    state.put(hold_key, pack(keep))
                else:
                    state.delete(hold_key)
        return out

    def _withheld(
        self, clinical: dict[str, Any], dataset: str, reason: str, now: dt.datetime
    ) -> Outbound:
        self.metrics.withheld.labels(dataset, reason).inc()
        return self.envelopes.audit(
            "pseudonymizer.withheld", [clinical["record_id"]], [f"dataset:{dataset}"], now,
            outcome="withheld", hospital=clinical["hospital"], dataset=dataset,
            reason_code=reason,
        )  # fmt: skip

    # --- link decisions: late releases and corrections ----------------------------------------------

    def _on_decision(
        self, decision: dict[str, Any], state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        ref = decision["patient_ref"]
        stored = state.get(decision_key(ref))
        previous = PersonFacts.from_bytes(stored) if stored is not None else None
        if previous is not None and previous.sequence >= decision["sequence"]:
            return []  # an older or repeated decision: the newer one already holds
        facts = PersonFacts.from_decision(decision)
        state.put(decision_key(ref), facts.to_bytes())
        out: list[Outbound] = []
        if previous is None or previous.person_id != facts.person_id:
            self._index_ref(state, ref, facts.person_id, previous)
            pending = state.get(f"wdref:{ref}")
            if pending is not None:
                state.delete(f"wdref:{ref}")
                out += self._withdraw(
                    state, facts.person_id, json.loads(pending), decision["decision_id"], now
                )
        if previous is not None and previous.person_id != facts.person_id:
            reason = (
                decision["outcome"] if decision["outcome"] in ("MERGED", "SPLIT") else "RELINKED"
            )
            for keyed in self.releases:
                rel_key = released_key(keyed.policy.dataset, ref)
                stored_rel = state.get(rel_key)
                if stored_rel is None:
                    continue
                released = Released.from_bytes(stored_rel)
                new = pseudonym(keyed.key, facts.person_id)
                offset = date_offset(
                    keyed.key, facts.person_id, keyed.policy.generalisation.shift_days
                )
                out += self._correct(
                    keyed, rel_key, released, new, offset, reason, decision["decision_id"],
                    state, now,
                )  # fmt: skip
                released.pseudonym, released.offset_days = new, offset
                released.key_version = keyed.policy.key_version
                state.put(rel_key, released.to_bytes())
        waiting = state.get(f"wait:{ref}")
        if waiting is not None:
            state.delete(f"wait:{ref}")
            self.metrics.waiting.dec()
            for raw in unpack(waiting):
                clinical = self.codec.decode(raw, CLINICAL_RECORD)
                for keyed in self.releases:
                    out += self._release(clinical, raw, facts, keyed, state, now)
        return out

    def _index_ref(
        self, state: StateStore, ref: str, person_id: str, previous: PersonFacts | None
    ) -> None:
        if previous is not None:
            old_key = f"refs:{previous.person_id}"
            old = [r for r in json.loads(state.get(old_key) or b"[]") if r != ref]
            if old:
                state.put(old_key, json.dumps(old).encode())
            else:
                state.delete(old_key)
        new_key = f"refs:{person_id}"
        refs = json.loads(state.get(new_key) or b"[]")
        if ref not in refs:
            state.put(new_key, json.dumps([*refs, ref]).encode())

    def _correct(
        self,
        keyed: Keyed,
        rel_key: str,
        released: Released,
        new_pseudonym: str,
        new_offset: int,
        reason: str,
        cause: str,
        state: StateStore,
        now: dt.datetime,
    ) -> list[Outbound]:
        """CORRECTION notices moving every record the patient_ref released in this dataset: one
        per NOTICE_MAX_IDS ids, so that a patient with a long history never makes a notice
        larger than a Kafka message may be."""
        if released.pseudonym == new_pseudonym and released.offset_days == new_offset:
            return []
        change = new_offset - released.offset_days
        ids: list[str] = []
        for number in range(released.chunks):
            ids += chunk_from_bytes(state.get(chunk_key(rel_key, number)))
        ids += released.curated_ids
        out: list[Outbound] = []
        for part, start in enumerate(range(0, max(len(ids), 1), NOTICE_MAX_IDS)):
            out += self._notice(
                keyed, "CORRECTION", released.pseudonym, new_pseudonym,
                ids[start : start + NOTICE_MAX_IDS],
                change if keyed.policy.generalisation.date_method == "shift" else None,
                reason, cause, now, part,
            )  # fmt: skip
        return out

    def _notice(
        self,
        keyed: Keyed,
        kind: NoticeKind,
        old: str,
        new: str | None,
        curated_ids: list[str],
        date_change: int | None,
        reason: str,
        cause: str,
        now: dt.datetime,
        part: int = 0,
    ) -> list[Outbound]:
        policy = keyed.policy
        # A notice split in parts: the first keeps the id an unsplit notice always had.
        parts = (cause,) if part == 0 else (cause, str(part))
        notice: DatasetNotice = {
            "notice_id": notice_id(keyed.key, kind, *parts, old, new or ""),
            "dataset": policy.dataset,
            "policy_version": policy.policy_version,
            "approval_ref": policy.approval_ref,
            "kind": kind,
            "pseudonym": old,
            "new_pseudonym": new,
            "key_version": policy.key_version,
            "curated_ids": curated_ids,
            "date_offset_change_days": date_change,
            "reason": reason,
            "issued_at": now,
        }
        self.metrics.notices.labels(policy.dataset, kind).inc()
        return [
            Outbound(
                f"{self.topics.prefix}{policy.topic}.notices",
                self.codec.encode(DATASET_NOTICE, notice),
                key=old.encode(),
            ),
            self.envelopes.audit(
                "pseudonymizer.notice", [cause], [notice["notice_id"]], now,
                dataset=policy.dataset, purpose=policy.policy_version, reason_code=reason,
            ),
        ]  # fmt: skip

    # --- consent ------------------------------------------------------------------------------------

    def _on_consent(
        self, event: dict[str, Any], source_ref: str, state: StateStore, now: dt.datetime
    ) -> list[Outbound]:
        person_id: str | None = event["person_id"]
        if person_id is None and event["patient_ref"] is not None:
            stored = state.get(decision_key(event["patient_ref"]))
            person_id = PersonFacts.from_bytes(stored).person_id if stored else None
        datasets: list[str] = list(event["datasets"])
        audit = self.envelopes.audit(
            "pseudonymizer.consent", [event["event_id"]], [source_ref], now,
            reason_code=f"CONSENT_{event['kind']}",
        )  # fmt: skip
        if person_id is None:
            if event["patient_ref"] is None:
                return [audit]
            if event["kind"] == "WITHDRAWN":  # applied when the patient's decision arrives
                state.put(f"wdref:{event['patient_ref']}", json.dumps(datasets).encode())
            else:
                state.delete(f"wdref:{event['patient_ref']}")
            return [audit]
        if event["kind"] == "GRANTED":
            state.put(f"cg:{person_id}", json.dumps(datasets).encode())
            state.delete(f"wd:{person_id}")
            return [audit]
        state.delete(f"cg:{person_id}")
        return [audit, *self._withdraw(state, person_id, datasets, event["event_id"], now)]

    def _withdraw(
        self, state: StateStore, person_id: str, datasets: list[str], cause: str, now: dt.datetime
    ) -> list[Outbound]:
        """No further release for the person; each affected dataset gets a WITHDRAWAL notice."""
        state.put(f"wd:{person_id}", json.dumps(datasets).encode())
        refs: list[str] = json.loads(state.get(f"refs:{person_id}") or b"[]")
        out: list[Outbound] = []
        for keyed in self.releases:
            if datasets and keyed.policy.dataset not in datasets:
                continue
            held_under = set()
            for ref in refs:
                stored = state.get(released_key(keyed.policy.dataset, ref))
                if stored is not None:
                    held_under.add(Released.from_bytes(stored).pseudonym)
            for old in sorted(held_under):
                out += self._notice(
                    keyed, "WITHDRAWAL", old, None, [], None, "CONSENT_WITHDRAWN", cause, now
                )
        return out

    @staticmethod
    def _withdrawn(state: StateStore, person_id: str, dataset: str) -> bool:
        stored = state.get(f"wd:{person_id}")
        if stored is None:
            return False
        datasets = json.loads(stored)
        return not datasets or dataset in datasets

    @staticmethod
    def _granted(state: StateStore, person_id: str, dataset: str) -> bool:
        stored = state.get(f"cg:{person_id}")
        if stored is None:
            return False
        datasets = json.loads(stored)
        return not datasets or dataset in datasets
