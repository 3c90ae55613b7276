"""Whether a re-identification request carries an approval on record (D35). Pure: the day is an
argument.

The reference a steward types is only a claim; what allows re-identification is the data-access
board's decision, which the dataset's release policy records (``reidentification``: reference,
purpose, validity). A request is answered only under an approval listed there for that dataset
and valid on the day; the release approval (``approval_ref``) never allows it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pseudonymizer.domain.policy import (
    APPROVAL_REF_PATTERN,
    ReidentificationApproval,
    ReleasePolicy,
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
