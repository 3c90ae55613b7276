"""D46: which signed release-policy versions the pseudonymizer applies, and when a dataset runs.

A board's decision reaches the pseudonymizer as a ``ReleasePolicyVersion`` on ``access.policies``.
``admit`` says whether a version may be applied (or why not); ``should_run`` says, from the
version applied and the service's clock (an argument), whether the dataset releases now; and
``history_range`` says which clinical records a dataset that starts must receive from the
retained stream before the live one. Pure: no Kafka, no files, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from biostream.contracts import ReleasePolicyVersion
from biostream.release_policies import Refusal, TrustedBoardKeys, shape_refusal

from pseudonymizer.domain.policy import PolicyError, ReleasePolicy, parse_policy


@dataclass(frozen=True)
class ApprovedVersion:
    """A version that passed ``admit``: the record and its validated document."""

    record: ReleasePolicyVersion
    policy: ReleasePolicy

    @property
    def dataset(self) -> str:
        return self.record["dataset"]

    @property
    def version(self) -> int:
        return self.record["version"]


def admit(
    record: ReleasePolicyVersion,
    applied_version: int | None,
    trusted: TrustedBoardKeys,
    now_ms: int,
    file_datasets: frozenset[str],
    key_known: Callable[[str], bool],
    message_key: bytes | None = None,
) -> ApprovedVersion | Refusal:
    """D46: a policy version is applied only if all of this holds, else it is refused with the
    first reason (nothing of it is applied):

    * its fields agree with each other and with its document, and it is keyed by its dataset
      (``POLICY_MALFORMED``: compaction keeps the newest record per key, which must be the
      dataset's newest version);
    * a board key this service trusts, in force on the service's clock, signed exactly it
      (``UNSIGNED``, ``UNKNOWN_KEY``, ``RETIRED_KEY``, ``BAD_SIGNATURE``);
    * it is newer than the version applied for its dataset (``STALE_VERSION``: a replayed or
      reordered older approval never undoes a later withdrawal);
    * its dataset is not one a policy file of this process serves (``DATASET_FROM_FILE``);
    * its document passes the same validation as a policy file, and its target topic is the
      dataset's own ``curated.<dataset>``, the topic its principal is granted (``POLICY_INVALID``);
    * an ACTIVE version's pseudonym key is available (``KEY_MISSING``).
    """
    refusal = shape_refusal(record) or trusted.signature_refusal(record, now_ms)
    if refusal is not None:
        return refusal
    if message_key is not None and message_key != record["dataset"].encode():
        return Refusal("POLICY_MALFORMED", "the message is not keyed by its dataset")
    if applied_version is not None and record["version"] <= applied_version:
        return Refusal(
            "STALE_VERSION",
            f"version {record['version']} is not newer than version {applied_version} in force",
        )
    if record["dataset"] in file_datasets:
        return Refusal("DATASET_FROM_FILE", "the dataset is served from a policy file")
    try:
        policy = parse_policy(json.loads(record["policy_json"]), "policy document")
    except PolicyError as error:
        return Refusal("POLICY_INVALID", str(error))
    if policy.topic != f"curated.{policy.dataset}":
        return Refusal("POLICY_INVALID", "target_topic must be the dataset's curated.<dataset>")
    if record["status"] == "ACTIVE" and not key_known(policy.key_id):
        return Refusal("KEY_MISSING", f"no pseudonym key {policy.key_id}")
    return ApprovedVersion(record, policy)


def should_run(record: ReleasePolicyVersion, now_ms: int) -> tuple[bool, str]:
    """D46: whether a dataset releases now under the version applied, and why (the reason a
    stopped dataset's notice gives): ACTIVE from ``valid_from_ms`` until ``valid_until_ms``
    (``EXPIRED`` after it, ``NOT_YET_VALID`` before); WITHDRAWN never (its reason: ``EXPIRED``,
    ``REVOKED``, ``CLOSED``). The clock is the service's, read once per handled message."""
    if record["status"] == "WITHDRAWN":
        return False, record["withdrawn_reason"] or "REVOKED"
    if now_ms >= record["valid_until_ms"]:
        return False, "EXPIRED"
    if now_ms < record["valid_from_ms"]:
        return False, "NOT_YET_VALID"
    return True, "ACTIVE"


def next_change_ms(record: ReleasePolicyVersion, now_ms: int) -> int | None:
    """When ``should_run`` may answer differently for this version (None: never again)."""
    if record["status"] == "WITHDRAWN" or now_ms >= record["valid_until_ms"]:
        return None
    if now_ms < record["valid_from_ms"]:
        return record["valid_from_ms"]
    return record["valid_until_ms"]


def history_range(
    released_through: Mapping[int, int], live_position: Mapping[int, int]
) -> dict[int, tuple[int, int]]:
    """D46: the clinical records a dataset that starts receives from the retained stream, per
    partition ``[first, end)``: from where it last stopped (offset 0 if it never ran) up to the
    first record the live stream has not handled yet. Everything from ``end`` on reaches it
    live, so the junction has neither a gap nor an overlap. Partitions with nothing to replay
    are left out."""
    ranges: dict[int, tuple[int, int]] = {}
    for partition, end in live_position.items():
        first = released_through.get(partition, 0)
        if first < end:
            ranges[partition] = (first, end)
    return ranges
