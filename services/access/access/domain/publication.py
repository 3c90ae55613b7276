"""D49: what an approval, a renewal, an expiry, a revocation and a close-out say on
``access.policies``: the dataset's release-policy versions, derived from the applications'
events alone (pure: no key, no Kafka, no clock; the handler signs and writes them in the
transaction of the events that caused them).

Versions are numbered per dataset, 1, 2, ... in the order of ``access.events`` (one partition),
so a replay at every start recomputes the same numbers: an approval of a dataset or renewal
application issues the next ACTIVE version, and the end of the application holding the dataset's
newest ACTIVE version (expired, revoked, closed out while in force) issues the next WITHDRAWN one.
The end of an application a renewal has already superseded issues nothing: the renewal holds
the dataset now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from biostream.contracts import ReleasePolicyVersion, WithdrawnReason
from biostream.release_policies import policy_version, withdrawal_of

from access.domain.application import Application, Approved, ClosedOut, Event, Expired, Revoked

# D49: the key version of every board-approved dataset's pseudonym domain. A renewal keeps the
# domain (D45) and this version, so the pseudonymizer derives the same key (D46): the same
# pseudonyms. A new key version is a rotation, a decision of its own.
PSEUDONYM_KEY_VERSION = "k1"

_WITHDRAWN_BY: dict[type, WithdrawnReason] = {
    Expired: "EXPIRED",
    Revoked: "REVOKED",
    ClosedOut: "CLOSED",
}


@dataclass(frozen=True)
class Released:
    """The dataset's newest version on ``access.policies`` (unsigned) and who issued it."""

    record: ReleasePolicyVersion
    application_id: str

    @property
    def version(self) -> int:
        return self.record["version"]

    @property
    def active(self) -> bool:
        return self.record["status"] == "ACTIVE"


Releases = Mapping[str, Released]


def project_principal(dataset: str, prefix: str = "") -> str:
    """D49: the project's Kafka principal is the dataset's: ``User:<prefix>project-<dataset>``
    (the ACL matrix's ``project-{dataset}``, under the deployment's prefix as every principal),
    whoever applied; a renewal keeps it, so the grants stay where they are."""
    return f"User:{prefix}project-{dataset}"


def release_document(policy: Mapping[str, Any], version: int) -> dict[str, Any]:
    """D49: the approved policy (D45) in the document form the pseudonymizer validates: its
    validity moves to the record's ``valid_from_ms``/``valid_until_ms``, the pseudonym key
    version is added, the version is the dataset's."""
    document = {k: v for k, v in policy.items() if k not in ("valid_from", "valid_until")}
    document["key_version"] = PSEUDONYM_KEY_VERSION
    document["version"] = str(version)
    return document


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def publication_for(
    releases: Releases, application: Application, event: Event, prefix: str = ""
) -> ReleasePolicyVersion | None:
    """D49: the policy version ``event`` (already applied: ``application`` is the state after
    it) issues for its dataset, unsigned, or None. ``releases``: each dataset's newest version
    before the event; ``prefix``: the deployment's principal prefix."""
    dataset = application.dataset
    if dataset is None or application.kind == "reidentification":
        return None
    current = releases.get(dataset)
    if isinstance(event, Approved):
        if event.policy is None:
            return None
        version = current.version + 1 if current is not None else 1
        return policy_version(
            release_document(event.policy, version),
            version=version,
            application_id=application.application_id,
            principal=project_principal(dataset, prefix),
            valid_from_ms=_ms(event.at),
            valid_until_ms=_ms(event.valid_until),
            issued_at_ms=_ms(event.at),
        )
    reason = _WITHDRAWN_BY.get(type(event))
    if reason is None or current is None or not current.active:
        return None
    if current.application_id != application.application_id:
        return None  # D49: superseded by a renewal, which holds the dataset now
    return withdrawal_of(current.record, reason, _ms(event.at))


def advance(
    releases: Releases, application: Application, event: Event, prefix: str = ""
) -> tuple[dict[str, Released], ReleasePolicyVersion | None]:
    """D49: the releases after ``event`` and the version it issued (None: it issued none)."""
    record = publication_for(releases, application, event, prefix)
    updated = dict(releases)
    if record is not None:
        updated[record["dataset"]] = Released(record, application.application_id)
    return updated, record
