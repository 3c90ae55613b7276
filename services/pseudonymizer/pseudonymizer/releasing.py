"""Releasing clinical records into every dataset of the process, and keeping what the datasets
already hold right: the k-anonymity hold and its expiry, corrections after a relink or a rotated
key. Reads and writes the state, asks the domain, writes through ``Outputs``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import Outbound
from biostream.contracts import CLINICAL_RECORD

from pseudonymizer.domain import kanon, notices
from pseudonymizer.domain.consent import Consent
from pseudonymizer.domain.release import (
    HoldBelowK,
    Keyed,
    PersonFacts,
    Release,
    Released,
    Withhold,
    build,
    decide_release,
    placement,
)
from pseudonymizer.outputs import Outputs
from pseudonymizer.state import PseudonymizerState

SWEEP_INTERVAL = dt.timedelta(seconds=30)


class DatasetReleases:
    def __init__(self, codec: AvroCodec, releases: list[Keyed], out: Outputs) -> None:
        self.codec = codec
        self.releases = releases
        self.out = out
        self._next_sweep: dt.datetime | None = None

    def release(
        self,
        clinical: dict[str, Any],
        raw: bytes,
        facts: PersonFacts,
        state: PseudonymizerState,
        now: dt.datetime,
    ) -> list[Outbound]:
        """A clinical record whose person is known, into every dataset (or why not)."""
        consent = state.consent(facts.person_id)  # read once: no release changes it
        out: list[Outbound] = []
        for keyed in self.releases:
            out += self._release(clinical, raw, facts, consent, keyed, state, now)
        return out

    def release_into(
        self,
        clinical: dict[str, Any],
        raw: bytes,
        facts: PersonFacts,
        keyed: Keyed,
        state: PseudonymizerState,
        now: dt.datetime,
    ) -> list[Outbound]:
        """D46: a clinical record whose person is known, into one dataset only (its history)."""
        consent = state.consent(facts.person_id)
        return self._release(clinical, raw, facts, consent, keyed, state, now)

    def _release(
        self,
        clinical: dict[str, Any],
        raw: bytes,
        facts: PersonFacts,
        consent: Consent,
        keyed: Keyed,
        state: PseudonymizerState,
        now: dt.datetime,
    ) -> list[Outbound]:
        dataset = keyed.policy.dataset
        decision = decide_release(
            clinical, facts, keyed.policy, consent,
            lambda klass: state.k_class(dataset, klass),
        )  # fmt: skip
        if isinstance(decision, Withhold):
            return [self.out.withheld(clinical, dataset, decision.reason, now)]
        if decision.k_class is not None and decision.klass is not None:
            state.put_k_class(dataset, decision.klass, decision.k_class)
        if isinstance(decision, HoldBelowK):
            state.hold(dataset, decision.klass, kanon.HeldRecord(now.timestamp(), raw))
            return [self.out.held_below_k(clinical, keyed.policy, now)]
        out = self._emit(clinical, facts, keyed, decision, state, now)
        if decision.opens_class and decision.klass is not None:
            for held in state.take_held(dataset, decision.klass):
                self.out.metrics.held_k.labels(dataset).dec()
                held_clinical = self.codec.decode(held.raw, CLINICAL_RECORD)
                held_facts = state.facts(placed_ref(held_clinical, state))
                assert held_facts is not None  # only records with a decision are held for k
                held_consent = state.consent(held_facts.person_id)
                out += self._release(
                    held_clinical, held.raw, held_facts, held_consent, keyed, state, now
                )
        return out

    def _emit(
        self,
        clinical: dict[str, Any],
        facts: PersonFacts,
        keyed: Keyed,
        decision: Release,
        state: PseudonymizerState,
        now: dt.datetime,
    ) -> list[Outbound]:
        # D33: what a record released is kept under the ref whose decision placed it, so the
        # corrections that ref's later decisions cause move it too.
        policy, ref = keyed.policy, placed_ref(clinical, state)
        curated = build(clinical, facts, keyed, decision.quasi, now)
        offset = placement(keyed, facts.person_id)[1]
        out: list[Outbound] = []
        released = state.released(policy.dataset, ref)
        if released is not None and notices.key_rotated(released, curated["pseudonym"]):
            out += self._correct(keyed, ref, released, (curated["pseudonym"], offset),
                                 "KEY_ROTATED", clinical["record_id"], state, now)  # fmt: skip
        if released is None:
            released = Released(curated["pseudonym"], policy.key_version, offset, [])
        released.pseudonym, released.key_version = curated["pseudonym"], policy.key_version
        released.offset_days = offset
        state.add_released(policy.dataset, ref, released, curated["curated_id"])
        return out + self.out.released(clinical, curated, policy, now)

    def relink(
        self,
        ref: str,
        facts: PersonFacts,
        reason: str,
        cause: str,
        state: PseudonymizerState,
        now: dt.datetime,
    ) -> list[Outbound]:
        """D-pseudonymizer-4: the patient_ref now belongs to another person: every dataset that
        holds its records moves them to the new person's pseudonym and date offset."""
        out: list[Outbound] = []
        for keyed in self.releases:
            released = state.released(keyed.policy.dataset, ref)
            if released is None:
                continue
            moved_to = placement(keyed, facts.person_id)
            out += self._correct(keyed, ref, released, moved_to, reason, cause, state, now)
            released.pseudonym, released.offset_days = moved_to
            released.key_version = keyed.policy.key_version
            state.put_released(keyed.policy.dataset, ref, released)
        return out

    def _correct(
        self, keyed: Keyed, ref: str, released: Released, moved_to: tuple[str, int],
        reason: str, cause: str, state: PseudonymizerState, now: dt.datetime,
    ) -> list[Outbound]:  # fmt: skip
        ids = state.released_ids(keyed.policy.dataset, ref, released)
        found = notices.corrections(keyed, released, *moved_to, ids, reason, cause, now)
        return self.out.notices(found, cause, keyed.policy, now)

    def sweep(self, state: PseudonymizerState, now: dt.datetime) -> list[Outbound]:
        """D-pseudonymizer-6: suppresses records held below k longer than the policy allows.
        Runs at most every SWEEP_INTERVAL of processing time."""
        if self._next_sweep is not None and now < self._next_sweep:
            return []
        self._next_sweep = now + SWEEP_INTERVAL
        out: list[Outbound] = []
        for keyed in self.releases:
            policy = keyed.policy
            if policy.k_anonymity.min_k <= 1:
                continue
            for klass, held in state.held_classes(policy.dataset):
                kept, expired = kanon.split_expired(
                    held, now.timestamp(), policy.k_anonymity.max_hold_hours
                )
                if not expired:
                    continue
                state.keep_held(policy.dataset, klass, kept)
                for record in expired:
                    clinical = self.codec.decode(record.raw, CLINICAL_RECORD)
                    out.append(self.out.suppressed(clinical, policy, now))
        return out


def placed_ref(clinical: dict[str, Any], state: PseudonymizerState) -> str:
    """The ref whose link decision places a record being released: its own, or (D33) the
    older ref of its patient that has one."""
    ref: str = clinical["patient_ref"]
    return state.deciding_ref(ref, clinical["previous_patient_refs"]) or ref
