"""D49: what an approval, a renewal, an expiry, a revocation and a close-out say on
``access.policies``: the dataset's release-policy versions, derived from the applications'
events alone (pure: no key, no Kafka, no clock; the handler signs and writes them in the
transaction of the events that caused them).

Versions are numbered per dataset, 1, 2, ... in the order of ``access.events`` (one partition),
so a replay at every start recomputes the same numbers: an approval of a dataset or renewal
application issues the next ACTIVE version, and the end of the application holding the dataset's
newest ACTIVE version (expired, revoked, closed out while in force) issues the next WITHDRAWN one.
The end of an application a renewal has already superseded issues nothing: the renewal holds
the dataset now. An approved re-identification application issues the next ACTIVE version with
itself listed as a re-identification approval; its end issues one without it.
"""

from __future__ import annotations

import datetime as dt
import json
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
    if dataset is None:
        return None
    current = releases.get(dataset)
    if application.kind == "reidentification":
        return _reidentification_version(current, application, event)
    if isinstance(event, Approved):
        if event.policy is None:
            return None
        version = current.version + 1 if current is not None else 1
        document = release_document(event.policy, version)
        if current is not None and current.active:
            # D49: re-identification approvals in force stay listed under the renewal.
            listed = json.loads(current.record["policy_json"]).get("reidentification")
            if listed:
                document["reidentification"] = listed
        return policy_version(
            document,
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


def _reidentification_version(
    current: Released | None, application: Application, event: Event
) -> ReleasePolicyVersion | None:
    """D49: an approved re-identification application is listed, by its application id, under
    the ``reidentification`` approvals (D35) of the dataset's next version; its end (expiry,
    revocation, close-out) removes it. What ``pseudonymizer reidentify`` checks is then the
    board-signed version on the topic, not a string typed by the steward. Nothing is issued
    when the dataset is not in force: a withdrawn dataset allows no re-identification."""
    if current is None or not current.active:
        return None
    document = json.loads(current.record["policy_json"])
    listed = [
        e for e in document.get("reidentification", []) if e["ref"] != application.application_id
    ]
    if isinstance(event, Approved):
        listed.append(
            {
                "ref": application.application_id,
                "purpose": application.form.purpose,
                "granted": event.at.date().isoformat(),
                "expires": event.valid_until.date().isoformat(),
            }
        )
    elif type(event) not in _WITHDRAWN_BY or len(listed) == len(
        document.get("reidentification", [])
    ):
        return None
    document["reidentification"] = listed
    version = current.version + 1
    document["version"] = str(version)
    return policy_version(
        document,
        version=version,
        application_id=current.record["application_id"],
        principal=current.record["principal"],
        valid_from_ms=current.record["valid_from_ms"],
        valid_until_ms=current.record["valid_until_ms"],
        issued_at_ms=_ms(event.at),
    )


def advance(
    releases: Releases, application: Application, event: Event, prefix: str = ""
) -> tuple[dict[str, Released], ReleasePolicyVersion | None]:
    """D49: the releases after ``event`` and the version it issued (None: it issued none)."""
    record = publication_for(releases, application, event, prefix)
    updated = dict(releases)
    if record is not None:
        # the holder is the dataset's release application (a re-identification holds nothing)
        updated[record["dataset"]] = Released(record, record["application_id"])
    return updated, record
