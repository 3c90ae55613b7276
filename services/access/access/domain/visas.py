"""GA4GH Passport visas for the members of an approved application (D47).

A member of an approved dataset application (its applicant or a team member) may ask for a
``ControlledAccessGrants`` visa: a signed JWT saying that the board (the Visa Assertion Source)
granted this account access to this dataset, until the approval's end date. Who gets one and
until when is decided here, purely (``now`` is an argument); signing is the adapters' part.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from access.domain.application import Application, VisaIssued

VISA_TYPE = "ControlledAccessGrants"
# GA4GH Passport v1.2: who made the assertion; "dac" is a data access committee.
ASSERTED_BY = "dac"


class VisaProblem(NamedTuple):
    code: str
    reason: str


def visa_problem(
    application: Application, account: str, board_url: str | None, now: dt.datetime
) -> VisaProblem | None:
    """D47: why ``account`` may not have a visa for ``application`` at ``now``, or None.

    A visa is issued only for a dataset or renewal application whose approval is in force
    (approved, its end date not reached: an expired, revoked or closed one gets none, even before
    the expiry sweep has written its event), only to its applicant or a team member (board
    members decide, they do not receive data), and only when the board has a URL to name as the
    visa's source. A re-identification approval releases no data, so it grants no dataset."""
    if application.kind == "reidentification":
        return VisaProblem("NO_DATASET_GRANT", "a re-identification approval grants no dataset")
    if application.status != "approved" or application.approval is None:
        return VisaProblem(
            "NOT_APPROVED", f"a visa needs an approval in force; the application is "
            f"{application.status}",
        )  # fmt: skip
    if now >= application.approval.valid_until:
        return VisaProblem(
            "APPROVAL_ENDED",
            f"the approval ended on {application.approval.valid_until.date().isoformat()}",
        )
    members = {application.form.applicant} | {m.account for m in application.form.team}
    if account not in members:
        return VisaProblem(
            "NOT_MEMBER", "visas are issued to the applicant and the team members only"
        )
    if not board_url:
        return VisaProblem("NO_BOARD_URL", "the board file names no url (the visa's source)")
    return None


def dataset_url(board_url: str, dataset: str) -> str:
    """The dataset's identifier in a visa (``value``): under the board's URL."""
    return f"{board_url.rstrip('/')}/datasets/{dataset}"


def visa_claims(
    application: Application, issued: VisaIssued, issuer: str, board_url: str
) -> dict[str, Any]:
    """D47: the JWT claims of the visa ``issued`` records: GA4GH Passport v1.2's
    ``ga4gh_visa_v1`` (type, asserted = when the board approved, value = the dataset, source =
    the board, by = dac), ``sub`` the account, ``iat`` the issue, ``exp`` the approval's end."""
    approval = application.approval
    assert approval is not None and application.dataset is not None  # visa_problem said so
    return {
        "iss": issuer,
        "sub": issued.subject,
        "iat": int(issued.at.timestamp()),
        "exp": int(issued.expires_at.timestamp()),
        "jti": issued.jti,
        "ga4gh_visa_v1": {
            "type": VISA_TYPE,
            "asserted": int(approval.at.timestamp()),
            "value": dataset_url(board_url, application.dataset),
            "source": board_url,
            "by": ASSERTED_BY,
        },
    }
