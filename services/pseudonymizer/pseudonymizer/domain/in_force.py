"""Which release policy is in force for a dataset, said in the audit ledger itself (D23c).

A processing record must name the policy a record was released under: the purpose, the approval,
the items. Policy files change; the ledger does not. So the pseudonymizer announces, in the same
transaction as its first output under it, every policy it starts serving, and again whenever the
policy's version or content changes. ``audit report`` reads these announcements instead of
today's policy files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pseudonymizer.domain.policy import ReleasePolicy

Change = Literal["POLICY_LOADED", "POLICY_CHANGED"]


def canonical_json(policy: ReleasePolicy) -> bytes:
    """Every setting of the policy (defaults included), keys sorted, sets as sorted lists, no
    whitespace: the same policy gives the same bytes whatever the file's layout or key order."""
    return json.dumps(
        _sorted_sets(policy.model_dump(mode="python")),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _sorted_sets(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_sets(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, (list, tuple)):
        return [_sorted_sets(item) for item in value]
    if isinstance(value, dt.date):  # re-identification approvals' days (D35)
        return value.isoformat()
    return value


def policy_digest(policy: ReleasePolicy) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(policy)).hexdigest()


@dataclass(frozen=True)
class InForce:
    """What the ledger is to say about a policy: built once per policy at start-up."""

    dataset: str
    policy_version: str
    digest: str
    approval_ref: str
    purpose: str
    record_types: tuple[str, ...]
    fields: tuple[str, ...]

    @classmethod
    def of(cls, policy: ReleasePolicy) -> InForce:
        return cls(
            dataset=policy.dataset,
            policy_version=policy.policy_version,
            digest=policy_digest(policy),
            approval_ref=policy.approval_ref,
            purpose=policy.purpose,
            record_types=tuple(sorted(policy.record_types)),
            fields=tuple(sorted(policy.fields)),
        )

    @cached_property
    def marker(self) -> bytes:
        """Kept in the state once announced: the version and the digest."""
        return f"{self.policy_version} {self.digest}".encode()

    @property
    def reference(self) -> str:
        """The announcement's input: names the policy version and the content it announces."""
        return f"policy:{self.policy_version}/{self.digest}"


@dataclass(frozen=True)
class Announcement:
    """A ``pseudonymizer.policy_in_force`` event to write; the handler then keeps the marker
    (state key ``pol:<dataset>``)."""

    policy: InForce
    change: Change


def policy_announcement(policy: InForce, announced: bytes | None) -> Announcement | None:
    """D23c: a policy is announced when the ledger does not yet say it is in force.

    ``announced`` is the marker (version and digest) of the policy last announced for the
    dataset, from the service's state. ``None`` when this version with this content was announced
    already; otherwise what to announce: ``POLICY_LOADED`` for a dataset never announced,
    ``POLICY_CHANGED`` when the version or the content differs (a digest of the canonical JSON:
    an edit without a version bump counts too).
    """
    if announced == policy.marker:
        return None
    return Announcement(policy, "POLICY_LOADED" if announced is None else "POLICY_CHANGED")
