"""D46: the datasets the board approved on ``access.policies``, started and stopped on the stream.

A signed policy version is admitted or refused (``domain/approvals.admit``); the version applied
is kept in the state (``apol:``) with whether its dataset runs (``arun:``), in the same
transaction as what it causes, so a restart or a standby restores the same datasets at the same
point. Whether a dataset runs is decided again on every message and idle tick from the version
and the service's clock (``domain/approvals.should_run``): a withdrawal or an expiry stops it at
the next one. A dataset that starts receives its history first (``bf:``; the engine feeds the
retained clinical records to ``replay``) and the live stream from the junction on.

The release list shared with ``DatasetReleases`` is changed in place here, and only here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from biostream.codec import AvroCodec, DecodeError
from biostream.contract import Inbound, Outbound
from biostream.contracts import CLINICAL_RECORD, RELEASE_POLICY_VERSION, ReleasePolicyVersion
from biostream.release_policies import Refusal, TrustedBoardKeys

from pseudonymizer.domain.approvals import (
    ApprovedVersion,
    admit,
    history_range,
    next_change_ms,
    should_run,
)
from pseudonymizer.domain.in_force import InForce
from pseudonymizer.domain.policy import ReleasePolicy, parse_policy
from pseudonymizer.domain.release import Keyed
from pseudonymizer.outputs import Outputs
from pseudonymizer.releasing import DatasetReleases
from pseudonymizer.state import Backfill, PseudonymizerState, Run


class KeySource:
    """What the approvals need of the key store: whether a key exists, and the key."""

    def __init__(self, has: Callable[[str], bool], key: Callable[[str], bytes]) -> None:
        self.has = has
        self.key = key


class DatasetApprovals:
    def __init__(
        self,
        codec: AvroCodec,
        trusted: TrustedBoardKeys,
        keys: KeySource,
        file_releases: list[Keyed],
        releases: list[Keyed],
        releasing: DatasetReleases,
        out: Outputs,
    ) -> None:
        self.codec = codec
        self.trusted = trusted
        self.keys = keys
        self.file_releases = list(file_releases)
        self.file_datasets = frozenset(k.policy.dataset for k in file_releases)
        self.releases = releases  # shared with DatasetReleases, changed in place
        self.releasing = releasing
        self.out = out
        self.applied: dict[str, ApprovedVersion] = {}
        self.backfills: dict[str, Backfill] = {}
        self.in_force: list[InForce] = [InForce.of(k.policy) for k in releases]
        self._due_ms: int | None = None

    # --- restore -------------------------------------------------------------------------------

    def restore(self, state: PseudonymizerState) -> None:
        """The datasets as the state left them: the versions applied, those running, the
        replays under way. Read once per store (start-up, or a new store after a takeover)."""
        self.applied = {}
        running: list[Keyed] = []
        for dataset in state.applied_datasets():
            raw = state.applied_policy(dataset)
            record: ReleasePolicyVersion = self.codec.decode(raw, RELEASE_POLICY_VERSION)  # type: ignore[assignment]
            approved = admitted_on_record(record)
            self.applied[dataset] = approved
            if state.run(dataset).running:
                running.append(Keyed(approved.policy, self.keys.key(approved.policy.key_id)))
        self._set_releases([*self.file_releases, *running])
        self.backfills = state.backfills()
        self._due_ms = 0  # decide every dataset again at the first message

    # --- policy versions -----------------------------------------------------------------------

    def on_policy(
        self, message: Inbound, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        """A version from ``access.policies``: applied (and its dataset started or stopped at
        once), or refused whole: a dead letter with its bytes and a ``policy_refused`` event."""
        try:
            record: ReleasePolicyVersion = self.codec.decode(message.value, RELEASE_POLICY_VERSION)  # type: ignore[assignment]
        except DecodeError as error:
            return self.out.policy_refused(message, None, error.reason_code, str(error), now)
        now_ms = _ms(now)
        dataset = record["dataset"]
        current = self.applied.get(dataset)
        if current is not None and current.record == record:
            return []  # the version applied, delivered again (a publisher's retry): nothing new
        decision = admit(
            record,
            current.version if current else None,
            self.trusted,
            now_ms,
            self.file_datasets,
            self.keys.has,
            message.key,
        )
        if isinstance(decision, Refusal):
            return self.out.policy_refused(message, dataset, decision.code, decision.message, now)
        state.put_applied_policy(dataset, message.value or b"")
        self.applied[dataset] = decision
        return [self.out.policy_applied(message, record, now), *self.reconcile(state, now)]

    def tick(self, state: PseudonymizerState, now: dt.datetime) -> list[Outbound]:
        """Cheap unless a version's validity starts or ends by now: then every dataset is
        decided again (expiry is enforced on the service's clock, D46)."""
        if self._due_ms is None or _ms(now) < self._due_ms:
            return []
        return self.reconcile(state, now)

    def reconcile(self, state: PseudonymizerState, now: dt.datetime) -> list[Outbound]:
        now_ms = _ms(now)
        out: list[Outbound] = []
        due: list[int] = []
        running = {k.policy.dataset: k for k in self.releases}
        for dataset, approved in sorted(self.applied.items()):
            run, reason = should_run(approved.record, now_ms)
            change = next_change_ms(approved.record, now_ms)
            if change is not None:
                due.append(change)
            keyed = running.get(dataset)
            if run and keyed is None:
                out += self._start(approved, state, now)
            elif not run and keyed is not None:
                out += self._stop(keyed.policy, approved.version, reason, state, now)
            elif run and keyed is not None and keyed.policy != approved.policy:
                # A renewal or change: the same dataset goes on under the new document (the
                # ledger announces it, D23c); its domain and key version name its key.
                renewed = Keyed(approved.policy, self.keys.key(approved.policy.key_id))
                self._set_releases([renewed if k is keyed else k for k in self.releases])
        self._due_ms = min(due) if due else None
        return out

    def _start(
        self, approved: ApprovedVersion, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        policy = approved.policy
        keyed = Keyed(policy, self.keys.key(policy.key_id))
        self._set_releases([*self.releases, keyed])
        run = state.run(policy.dataset)
        ranges = history_range(run.through, state.live_positions())
        if ranges:
            backfill = Backfill(
                next={p: first for p, (first, _) in ranges.items()},
                end={p: end for p, (_, end) in ranges.items()},
                parked=frozenset(state.parked_refs()),
                started_ms=_ms(now),
            )
            self.backfills[policy.dataset] = backfill
            state.put_backfill(policy.dataset, backfill)
        state.put_run(policy.dataset, Run(True, run.through))
        return [self.out.dataset_started(policy, len(ranges), now)]

    def _stop(
        self,
        policy: ReleasePolicy,
        version: int,
        reason: str,
        state: PseudonymizerState,
        now: dt.datetime,
    ) -> list[Outbound]:
        self._set_releases([k for k in self.releases if k.policy.dataset != policy.dataset])
        if self.backfills.pop(policy.dataset, None) is not None:
            state.drop_backfill(policy.dataset)
        state.put_run(policy.dataset, Run(False, state.live_positions()))
        return self.out.dataset_stopped(policy, version, reason, now)

    def _set_releases(self, releases: list[Keyed]) -> None:
        self.releases[:] = releases
        self.in_force = [InForce.of(k.policy) for k in releases]

    def grants(self) -> dict[str, tuple[str, bool]]:
        """D46: per dataset approved on the policy topic, its project principal and whether it
        runs (its principal may read) now."""
        running = {k.policy.dataset for k in self.releases}
        return {
            dataset: (approved.record["principal"], dataset in running)
            for dataset, approved in self.applied.items()
        }

    # --- history replay ------------------------------------------------------------------------

    def replay_wanted(self) -> dict[int, tuple[int, int]]:
        """Per clinical partition, the first offset some dataset still needs and the end of
        every replay: what the engine reads next (empty: nothing to replay)."""
        wanted: dict[int, tuple[int, int]] = {}
        for backfill in self.backfills.values():
            for partition, end in backfill.end.items():
                first = backfill.next.get(partition, 0)
                if first >= end:
                    continue
                have = wanted.get(partition)
                wanted[partition] = (
                    (first, end) if have is None else (min(have[0], first), max(have[1], end))
                )
        return wanted

    def replay(
        self, message: Inbound, state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        """A retained clinical record, into each dataset whose history it belongs to. Records
        whose patient was parked when the dataset started are left to the live stream (they
        go to every running dataset when their decision comes); a record the live stream
        dead-lettered is skipped (its dead letter exists)."""
        targets = [
            (dataset, backfill)
            for dataset, backfill in self.backfills.items()
            if backfill.covers(message.partition, message.offset)
        ]
        if not targets:
            return []
        try:
            clinical: dict[str, Any] = self.codec.decode(message.value, CLINICAL_RECORD)
        except DecodeError:
            return []
        raw = message.value or b""
        deciding = state.deciding_ref(clinical["patient_ref"], clinical["previous_patient_refs"])
        facts = state.facts(deciding) if deciding is not None else None
        out: list[Outbound] = []
        running = {k.policy.dataset: k for k in self.releases}
        for dataset, backfill in targets:
            keyed = running.get(dataset)
            if keyed is None or facts is None or clinical["patient_ref"] in backfill.parked:
                continue
            released = self.releasing.release_into(clinical, raw, facts, keyed, state, now)
            backfill.released += sum(1 for o in released if o.topic.endswith(keyed.policy.topic))
            out += released
        return out

    def replayed_to(
        self, positions: dict[int, int], state: PseudonymizerState, now: dt.datetime
    ) -> list[Outbound]:
        """The engine read the retained records up to ``positions``: each replay moves on (in
        the same transaction as what it released), and one that reached its end is done."""
        out: list[Outbound] = []
        running = {k.policy.dataset: k for k in self.releases}
        for dataset, backfill in list(self.backfills.items()):
            for partition, position in positions.items():
                end = backfill.end.get(partition)
                if end is not None:
                    backfill.next[partition] = min(
                        end, max(backfill.next.get(partition, 0), position)
                    )
            if backfill.done:
                del self.backfills[dataset]
                state.drop_backfill(dataset)
                keyed = running.get(dataset)
                if keyed is not None:
                    out.append(self.out.history_released(keyed.policy, backfill.released, now))
            else:
                state.put_backfill(dataset, backfill)
        return out


def admitted_on_record(record: ReleasePolicyVersion) -> ApprovedVersion:
    """A version this service admitted before (from its own state): parsed again, not checked
    again, so a key retired since does not undo what was applied under it."""
    return ApprovedVersion(record, parse_policy(json.loads(record["policy_json"]), "state"))


def _ms(now: dt.datetime) -> int:
    return int(now.timestamp() * 1000)
