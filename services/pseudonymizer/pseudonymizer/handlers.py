"""Pseudonymizer use case: clinical records, link decisions and consent events in; curated records
and dataset notices out, for every release policy of the process.

The handler reads the state (``state.py`` owns every key), asks the domain what to do
(``domain/release.decide_release``, ``domain/kanon``, ``domain/consent``, ``domain/notices``) and
writes what it answers (``outputs.py``: records, notices, audit events, metrics). Releasing into
the datasets, with the k-anonymity hold and corrections, is ``releasing.DatasetReleases``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound, previous_refs_hint
from biostream.contracts import CLINICAL_RECORD, CONSENT_EVENT, LINK_DECISION
from biostream.envelopes import Envelopes, Rejected
from biostream.release_policies import TrustedBoardKeys
from biostream.state import StateStore
from biostream.topics import Topics

from pseudonymizer.approvals import DatasetApprovals, KeySource
from pseudonymizer.domain import notices
from pseudonymizer.domain.consent import consent_action, covers
from pseudonymizer.domain.in_force import policy_announcement
from pseudonymizer.domain.release import Keyed, PersonFacts
from pseudonymizer.outputs import Outputs, PseudonymizerMetrics
from pseudonymizer.releasing import DatasetReleases
from pseudonymizer.state import WAITING_ON_OLDER, WITHDRAWAL_ON_OLDER, PseudonymizerState

SERVICE = "pseudonymizer"
__all__ = ["SERVICE", "PseudonymizerHandler", "PseudonymizerMetrics"]


def _no_key(key_id: str) -> bytes:
    raise KeyError(key_id)


class PseudonymizerHandler:
    def __init__(
        self,
        codec: AvroCodec,
        topics: Topics,
        envelopes: Envelopes,
        releases: list[Keyed],
        metrics: PseudonymizerMetrics,
        trusted: TrustedBoardKeys | None = None,
        keys: KeySource | None = None,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.envelopes = envelopes
        # Every dataset released now: the policy files', then those approved on the policy
        # topic (D46); one list, changed in place only by ``DatasetApprovals``.
        self.releases = list(releases)
        self.metrics = metrics
        self.out = Outputs(codec, topics, envelopes, metrics)
        self.releasing = DatasetReleases(codec, self.releases, self.out)
        self.approvals = DatasetApprovals(
            codec,
            trusted or TrustedBoardKeys([]),
            keys or KeySource(lambda _key_id: False, _no_key),
            releases,
            self.releases,
            self.releasing,
            self.out,
        )
        self._contracts = {
            topics.clinical_records: CLINICAL_RECORD,
            topics.link_decisions: LINK_DECISION,
            topics.consent_events: CONSENT_EVENT,
        }
        self._state: PseudonymizerState | None = None

    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        return self._dispatch(message, self._state_of(state), now)

    def _dispatch(
        self, message: Inbound, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        if message.topic == self.topics.access_policies:
            changed = self.approvals.tick(state, now)
            changed += self.approvals.on_policy(message, state, now)
            return changed + self._announce(state, now)
        contract = self._contracts[message.topic]
        if contract == CLINICAL_RECORD:
            # D46: where the live stream stands, so that a dataset starting now knows where
            # its history ends (records are handed over in offset order per partition).
            state.note_live(message.partition, message.offset)
        announced = self.approvals.tick(state, now) + self._announce(state, now)
        record = self.envelopes.decode_or_reject(message, contract, now)
        if isinstance(record, Rejected):
            return [*announced, *record.outputs]
        if contract == CLINICAL_RECORD:
            out = self._on_clinical(record, message.value or b"", state, now)
        elif contract == LINK_DECISION:
            out = self._on_decision(record, state, now)
        else:
            out = self._on_consent(record, message.source_ref, state, now)
        return announced + out + self.releasing.sweep(state, now)

    def on_idle(self, store: StateStore, now: dt.datetime) -> list[Outbound]:
        """D46: with no input, an expiry or a start time that came is still enforced. Policies
        are announced here only when this started a dataset: otherwise with the first message,
        as before (D23c)."""
        state = self._state_of(store)
        changed = self.approvals.tick(state, now)
        return changed + self._announce(state, now) if changed else []

    def committed(self, store: StateStore) -> dict[str, tuple[str, bool]]:
        """D46: per dataset approved on the policy topic, its project's principal and whether
        it may read now, as the committed state says (the engine calls this after a commit)."""
        self._state_of(store)
        return self.approvals.grants()

    # --- D46: a started dataset's history, fed by the engine from the retained records ---------

    def replay_wanted(self, store: StateStore) -> dict[int, tuple[int, int]]:
        self._state_of(store)
        return self.approvals.replay_wanted()

    def replay(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        return self.approvals.replay(message, self._state_of(state), now)

    def replayed_to(
        self, store: StateStore, positions: dict[int, int], now: dt.datetime
    ) -> list[Outbound]:
        return self.approvals.replayed_to(positions, self._state_of(store), now)

    def decision_known(self, message: Inbound, state: StateStore) -> bool:
        """For the processor's hold-back: a clinical record is worth handling only once its
        person's link decision is here (ingest keys it by its patient_ref); before that this
        handler could only park it in the state. A wrong guess costs time, never correctness."""
        if message.topic != self.topics.clinical_records or message.key is None:
            return True
        # D33: a patient known under an older ref is placed by that ref's decision; ingest
        # repeats the older refs in a header, so this needs no decode (~17 us a record).
        ref = message.key.decode("ascii", "replace")
        return self._state_of(state).deciding_ref(ref, previous_refs_hint(message)) is not None

    def _state_of(self, store: StateStore) -> PseudonymizerState:
        """The typed view of the store; on the first call, the gauges from the restored state."""
        if self._state is not None and self._state.store is store:
            return self._state
        first = self._state is None
        self._state = PseudonymizerState(store)
        self.approvals.restore(self._state)
        if first:
            self.out.restored(self._state, [keyed.policy.dataset for keyed in self.releases])
        return self._state

    def _announce(self, state: PseudonymizerState, now: dt.datetime) -> list[Outbound]:
        """D23c: before anything is released under a policy, the ledger says it is in force (in
        the same transaction as the message's outputs), and again after a change of the policy's
        version or content; the state remembers what was announced, so a restart with the same
        policy announces nothing."""
        out: list[Outbound] = []
        for policy in self.approvals.in_force:
            announcement = policy_announcement(policy, state.announced(policy.dataset))
            if announcement is not None:
                state.mark_announced(policy.dataset, policy.marker)
                out.append(self.out.policy_in_force(announcement, now))
        return out

    # --- clinical records and the join --------------------------------------------------------------

    def _on_clinical(
        self, clinical: dict[str, Any], raw: bytes, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        ref, older = clinical["patient_ref"], clinical["previous_patient_refs"]
        # D33: the record's own decision, else its patient's under an older patient-ref key.
        deciding = state.deciding_ref(ref, older)
        facts = state.facts(deciding) if deciding is not None else None
        if facts is None:
            if state.park(ref, raw):
                self.metrics.waiting.inc()
            state.wait_on_older(WAITING_ON_OLDER, ref, older)
            return [self.out.awaiting_decision(clinical, now)]
        return self.releasing.release(clinical, raw, facts, state, now)

    # --- link decisions: late releases and corrections ----------------------------------------------

    def _on_decision(
        self, decision: dict[str, Any], state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        ref, cause = decision["patient_ref"], decision["decision_id"]
        previous = state.facts(ref)
        if previous is not None and previous.sequence >= decision["sequence"]:
            return []  # an older or repeated decision: the newer one already holds
        facts = PersonFacts.from_decision(decision)
        state.put_facts(ref, facts)
        out: list[Outbound] = []
        if previous is None or previous.person_id != facts.person_id:
            state.move_ref(ref, facts.person_id, previous.person_id if previous else None)
            pending = state.take_pending_withdrawal(ref)
            if pending is not None:
                out += self._withdraw(state, facts.person_id, pending, cause, now)
        if previous is None:
            # D33: withdrawals by a newer ref of this patient that waited for this decision.
            for newer in state.take_waiting_on(WITHDRAWAL_ON_OLDER, ref):
                pending = state.take_pending_withdrawal(newer)
                if pending is not None:
                    out += self._withdraw(state, facts.person_id, pending, cause, now)
        if previous is not None and previous.person_id != facts.person_id:
            reason = notices.relink_reason(decision["outcome"])
            out += self.releasing.relink(ref, facts, reason, cause, state, now)
        out += self._release_waiting(ref, state, now)
        # D33: records of a newer ref of this patient (sent after a rotation of the patient-ref
        # key, before linkage decided either ref) waited for this decision too.
        for newer in state.take_waiting_on(WAITING_ON_OLDER, ref):
            out += self._release_waiting(newer, state, now)
        return out

    def _release_waiting(
        self, ref: str, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        """The records parked under ``ref``, each released under the decision that now places
        it (its own ref's or, D33, an older ref's), or parked again if none does yet."""
        waiting = state.take_waiting(ref)
        if waiting is None:
            return []
        self.metrics.waiting.dec()
        out: list[Outbound] = []
        for raw in waiting:
            clinical = self.codec.decode(raw, CLINICAL_RECORD)
            out += self._on_clinical(clinical, raw, state, now)
        return out

    # --- consent ------------------------------------------------------------------------------------

    def _on_consent(
        self, event: dict[str, Any], source_ref: str, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        ref: str | None = event["patient_ref"]
        person_id: str | None = event["person_id"]
        older: list[str] = event["previous_patient_refs"] if ref is not None else []
        if person_id is None and ref is not None:
            # D33: the patient by its ref, else by its refs under older patient-ref keys.
            deciding = state.deciding_ref(ref, older)
            facts = state.facts(deciding) if deciding is not None else None
            person_id = facts.person_id if facts else None
        datasets: list[str] = list(event["datasets"])
        audit = self.out.consent(event, source_ref, now)
        action = consent_action(event["kind"], person_id is not None, ref is not None)
        if action == "PEND_WITHDRAWAL" and ref is not None:
            state.pend_withdrawal(ref, datasets)
            state.wait_on_older(WITHDRAWAL_ON_OLDER, ref, older)
        elif action == "CLEAR_PENDING" and ref is not None:
            state.clear_pending_withdrawal(ref)
        elif action == "GRANT" and person_id is not None:
            state.grant(person_id, datasets)
        elif action == "WITHDRAW" and person_id is not None:
            state.revoke_grant(person_id)
            return [audit, *self._withdraw(state, person_id, datasets, event["event_id"], now)]
        return [audit]

    def _withdraw(
        self,
        state: PseudonymizerState,
        person_id: str,
        datasets: list[str],
        cause: str,
        now: dt.datetime,
    ) -> list[Outbound]:
        """D-pseudonymizer-5: no further release for the person; each affected dataset gets a
        WITHDRAWAL notice per pseudonym the person's records carry there."""
        state.withdraw(person_id, datasets)
        refs = state.refs(person_id)
        out: list[Outbound] = []
        for keyed in self.releases:
            if not covers(datasets, keyed.policy.dataset):
                continue
            held_under = state.pseudonyms(keyed.policy.dataset, refs)
            found = [notices.withdrawal(keyed, old, cause, now) for old in held_under]
            out += self.out.notices(found, cause, keyed.policy, now)
        return out
