"""Whether a re-identification request carries an approval on record (D35). Pure: the day is an
argument.

The reference a steward types is only a claim; what allows re-identification is the data-access
board's decision, which the dataset's release policy records (``reidentification``: reference,
purpose, validity). A request is answered only under an approval listed there for that dataset
and valid on the day; the release approval (``approval_ref``) never allows it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from biostream.contracts import ReleasePolicyVersion
from biostream.release_policies import TrustedBoardKeys, shape_refusal

from pseudonymizer.domain.policy import (
    APPROVAL_REF_PATTERN,
    PolicyError,
    ReidentificationApproval,
    ReleasePolicy,
    parse_policy,
)


@dataclass(frozen=True)
class ApprovalRefused(Exception):
    """Why a request is refused: a reason code for the audit trail and a message for the
    steward (it names the reference typed, the dataset and the policy, nothing else)."""

    reason_code: str
    message: str

    def __str__(self) -> str:
        return self.message


def well_formed(approval: str) -> str:
    """D35: the shape of an approval reference (as the policy's): 3 to 64 letters, digits and
    ``._/-``, trimmed at the ends; anything else is an unusable request, refused before any
    lookup (and never written to the trail: it could be anything pasted by mistake)."""
    ref = approval.strip()
    if not ref:
        raise ValueError("an approval reference is required")
    if not re.match(APPROVAL_REF_PATTERN, ref):
        raise ValueError(
            "an approval reference is 3 to 64 letters, digits and '._/-', starting with a "
            "letter or digit"
        )
    return ref


def approval_on_record(policy: ReleasePolicy, ref: str, today: dt.date) -> ReidentificationApproval:
    """D35: the re-identification approval of ``policy`` named ``ref`` that is valid on ``today``,
    or ``ApprovalRefused``: not listed for this dataset (the release approval included), not yet
    valid, or expired."""
    where = f"for dataset {policy.dataset} (policy {policy.policy_version})"
    if ref == policy.approval_ref:
        raise ApprovalRefused(
            "REIDENTIFICATION_RELEASE_APPROVAL",
            f"approval {ref} is the release approval {where}; re-identification needs an "
            "approval of its own, listed under the policy's `reidentification`",
        )
    listed = [a for a in policy.reidentification if a.ref == ref]
    if not listed:
        raise ApprovalRefused(
            "REIDENTIFICATION_APPROVAL_UNKNOWN",
            f"approval {ref} is not on record {where}: no `reidentification` entry names it",
        )
    [approval] = listed
    if today < approval.granted:
        raise ApprovalRefused(
            "REIDENTIFICATION_APPROVAL_NOT_YET_VALID",
            f"approval {ref} {where} is valid from {approval.granted.isoformat()}",
        )
    if today > approval.expires:
        raise ApprovalRefused(
            "REIDENTIFICATION_APPROVAL_EXPIRED",
            f"approval {ref} {where} expired on {approval.expires.isoformat()}",
        )
    return approval


def signed_basis(
    dataset: str, record: ReleasePolicyVersion | None, trusted: TrustedBoardKeys, now_ms: int
) -> ReleasePolicy:
    """D49: for a dataset the board approved at runtime, the policy a re-identification is
    checked against is the dataset's newest version on ``access.policies``, verified as the
    service verifies it (shape, a board key in force, the signature), ACTIVE and valid now; its
    ``reidentification`` list names the approved re-identification applications by id (the
    access service adds and removes them). Anything else: ``ApprovalRefused``."""
    if record is None:
        raise ApprovalRefused(
            "REIDENTIFICATION_NO_POLICY",
            f"dataset {dataset} has no policy file and no version on access.policies",
        )
    refusal = shape_refusal(record) or trusted.signature_refusal(record, now_ms)
    if refusal is not None:
        raise ApprovalRefused(
            "REIDENTIFICATION_POLICY_UNVERIFIED",
            f"the newest version of dataset {dataset} on access.policies is not accepted "
            f"({refusal.code}): {refusal.message}",
        )
    where = f"dataset {dataset} (version {record['version']})"
    if record["status"] != "ACTIVE":
        raise ApprovalRefused(
            "REIDENTIFICATION_DATASET_WITHDRAWN",
            f"{where} is withdrawn ({record['withdrawn_reason']}): no re-identification",
        )
    if not record["valid_from_ms"] <= now_ms < record["valid_until_ms"]:
        raise ApprovalRefused("REIDENTIFICATION_DATASET_WITHDRAWN", f"{where} is not in force now")
    try:
        return parse_policy(json.loads(record["policy_json"]), f"access.policies {where}")
    except PolicyError as error:
        raise ApprovalRefused("REIDENTIFICATION_POLICY_UNVERIFIED", str(error)) from None
