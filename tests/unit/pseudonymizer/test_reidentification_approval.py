"""D35: re-identification is answered only under an approval the dataset's release policy lists
and that is valid on the day; the release approval never allows it; references have a shape."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pseudonymizer.domain.in_force import policy_digest
from pseudonymizer.domain.policy import PolicyError, ReleasePolicy, load_policy
from pseudonymizer.domain.reidentification import ApprovalRefused, approval_on_record, well_formed

REPO = Path(__file__).resolve().parents[3]
DAY = dt.date(2026, 12, 4)


def demo(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    document.update(changes)
    return document


def approval(ref: str, granted: str, expires: str) -> dict[str, str]:
    return {"ref": ref, "purpose": "return of a finding", "granted": granted, "expires": expires}


POLICY = ReleasePolicy.model_validate(
    demo(reidentification=[approval("DRB-R-2026-07", "2026-12-01", "2026-12-31")])
)


def test_a_listed_approval_valid_on_the_day_is_accepted() -> None:
    for day in (dt.date(2026, 12, 1), DAY, dt.date(2026, 12, 31)):
        assert approval_on_record(POLICY, "DRB-R-2026-07", day).ref == "DRB-R-2026-07"


@pytest.mark.parametrize(
    ("ref", "day", "code"),
    [
        ("DRB-R-2026-08", DAY, "REIDENTIFICATION_APPROVAL_UNKNOWN"),
        ("drb-r-2026-07", DAY, "REIDENTIFICATION_APPROVAL_UNKNOWN"),
        ("DRB-DEMO-2026-001", DAY, "REIDENTIFICATION_RELEASE_APPROVAL"),
        ("DRB-R-2026-07", dt.date(2026, 11, 30), "REIDENTIFICATION_APPROVAL_NOT_YET_VALID"),
        ("DRB-R-2026-07", dt.date(2027, 1, 1), "REIDENTIFICATION_APPROVAL_EXPIRED"),
    ],
)
def test_anything_else_is_refused_with_a_reason(ref: str, day: dt.date, code: str) -> None:
    with pytest.raises(ApprovalRefused) as refused:
        approval_on_record(POLICY, ref, day)
    assert refused.value.reason_code == code
    assert "cohort-demo@2" in str(refused.value)


def test_a_policy_without_approvals_allows_no_reidentification() -> None:
    policy = ReleasePolicy.model_validate(demo())
    assert policy.reidentification == ()
    with pytest.raises(ApprovalRefused, match="not on record"):
        approval_on_record(policy, "DRB-R-2026-07", DAY)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([approval("DRB-DEMO-2026-001", "2026-01-01", "2026-12-31")], "not a re-identification"),
        ([approval("DRB-R-1", "2026-01-01", "2026-12-31")] * 2, "listed twice"),
        ([approval("DRB-R-1", "2026-12-31", "2026-01-01")], "expires before granted"),
        ([approval("DRB R 1", "2026-01-01", "2026-12-31")], "reidentification.0.ref"),
        ([{"ref": "DRB-R-1", "purpose": "x", "granted": "2026-01-01"}], "expires"),
    ],
)
def test_a_policy_with_unusable_approvals_is_refused(
    tmp_path: Path, entries: list[dict[str, str]], problem: str
) -> None:
    path = tmp_path / "cohort-demo.json"
    path.write_text(json.dumps(demo(reidentification=entries)))
    with pytest.raises(PolicyError, match=problem):
        load_policy(path)


def test_the_approvals_are_part_of_the_policy_digest() -> None:
    other = ReleasePolicy.model_validate(
        demo(reidentification=[approval("DRB-R-2026-07", "2026-12-01", "2027-01-31")])
    )
    assert policy_digest(other) != policy_digest(POLICY)
    assert policy_digest(POLICY).startswith("sha256:")


@pytest.mark.parametrize("text", ["", "  ", "two words", "x", "a" * 65, "DRB;R"])
def test_a_reference_has_a_shape(text: str) -> None:
    with pytest.raises(ValueError, match="approval reference"):
        well_formed(text)
    assert well_formed(" DRB-R-2026-07 ") == "DRB-R-2026-07"


# D49: a dataset approved at runtime is checked against its newest board-signed version.


def _signed(**fields: Any) -> Any:
    from biostream.release_policies import policy_version, sign
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    document = demo(
        dataset="cohort-late", pseudonym_domain="cohort-late", target_topic=None,
        approval_ref="APP-1", reidentification=[approval("APP-R", "2026-12-01", "2026-12-31")],
    )  # fmt: skip
    document.pop("target_topic")
    record = policy_version(
        document, version=2, application_id="APP-1", principal="User:project-cohort-late",
        valid_from_ms=0, valid_until_ms=NOW_MS + 86_400_000, issued_at_ms=NOW_MS,
    )  # fmt: skip
    record.update(fields)
    return sign(record, key), key


NOW_MS = int(dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC).timestamp() * 1000)


def _trusted(key: Any) -> Any:
    from biostream.release_policies import BoardKey, TrustedBoardKeys

    return TrustedBoardKeys([BoardKey("k1", key.public_key())])


def test_a_signed_version_in_force_lists_the_approved_reidentification_application() -> None:
    from pseudonymizer.domain.reidentification import signed_basis

    record, key = _signed()
    policy = signed_basis("cohort-late", record, _trusted(key), NOW_MS)
    assert approval_on_record(policy, "APP-R", DAY).ref == "APP-R"
    with pytest.raises(ApprovalRefused) as refused:
        approval_on_record(policy, "a free string", DAY)
    assert refused.value.reason_code == "REIDENTIFICATION_APPROVAL_UNKNOWN"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("missing", "REIDENTIFICATION_NO_POLICY"),
        ("unknown key", "REIDENTIFICATION_POLICY_UNVERIFIED"),
        ("tampered", "REIDENTIFICATION_POLICY_UNVERIFIED"),
        ("withdrawn", "REIDENTIFICATION_DATASET_WITHDRAWN"),
        ("expired", "REIDENTIFICATION_DATASET_WITHDRAWN"),
    ],
)
def test_anything_but_a_verified_version_in_force_is_refused(case: str, code: str) -> None:
    from biostream.release_policies import sign, withdrawal_of
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from pseudonymizer.domain.reidentification import signed_basis

    record, key = _signed()
    trusted, now = _trusted(key), NOW_MS
    if case == "missing":
        record = None
    elif case == "unknown key":
        trusted = _trusted(Ed25519PrivateKey.generate())
    elif case == "tampered":
        record = {**record, "principal": "User:someone-else"}
    elif case == "withdrawn":
        record = sign(withdrawal_of(record, "REVOKED", NOW_MS), key)
    else:
        now = NOW_MS + 2 * 86_400_000
    with pytest.raises(ApprovalRefused) as refused:
        signed_basis("cohort-late", record, trusted, now)
    assert refused.value.reason_code == code
