"""D49: an approval, a renewal and the end of an approval become signed policy versions on
access.policies, in the transaction of their events, numbered per dataset, once: a replay
recomputes them and publishes nothing; the document is one the pseudonymizer validates."""

from __future__ import annotations

import datetime as dt
import json
from functools import partial

from access import testing
from access.domain.application import Event
from access.domain.commands import (
    CloseOut,
    Command,
    Create,
    Decide,
    Expire,
    Review,
    Revoke,
    Submit,
    Vote,
)
from access.domain.forms import Conditions
from access.domain.publication import project_principal
from access.handlers import SERVICE, AccessHandler, AccessMetrics, Decided
from biostream.codec import default_codec
from biostream.contract import Inbound
from biostream.contracts import (
    AUDIT_EVENT,
    CURATED_RECORD,
    RELEASE_POLICY_VERSION,
    ReleasePolicyVersion,
)
from biostream.envelopes import Envelopes
from biostream.release_policies import BoardKey, TrustedBoardKeys, sign
from biostream.topics import Topics
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry
from pseudonymizer.domain.policy import parse_policy

CODEC = default_codec()
TOPICS = Topics("t-")
NOW = testing.NOW
BOARD_KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedBoardKeys([BoardKey("k1", BOARD_KEY.public_key())])


def handler(signing: bool = True) -> AccessHandler:
    envelopes = Envelopes(SERVICE, "User:t-svc-access", CODEC, TOPICS)
    return AccessHandler(
        testing.rules(), CODEC, TOPICS, envelopes, AccessMetrics.create(CollectorRegistry()),
        partial(sign, private_key=BOARD_KEY) if signing else None,
    )  # fmt: skip


def run(h: AccessHandler, app: str, command: Command, at: dt.datetime = NOW) -> Decided:
    decided = h.decide(app, command, at)
    assert decided.refusal is None, decided.refusal
    h.applied(decided.events)
    return decided


def approve(
    h: AccessHandler,
    app: str,
    kind: str = "dataset",
    continues: str | None = None,
    min_k: int = 10,
) -> Decided:
    basis = h.applications[continues] if continues else None
    form = testing.form(kind)  # type: ignore[arg-type]
    assert form.requested is not None
    form = form.model_copy(
        update={
            "requested": form.requested.model_copy(update={"min_k": 1, "consent_required": False})
        }
    )
    run(h, app, Create(app, testing.APPLICANT, kind, form, basis))  # type: ignore[arg-type]
    run(h, app, Submit(testing.APPLICANT))
    for reviewer in ("rev-a", "rev-b"):
        run(h, app, Review(reviewer, testing.CHECKLIST_YES))
        run(h, app, Vote(reviewer, "approve"))
    conditions = Conditions(min_k=min_k) if min_k > 1 else Conditions()
    return run(h, app, Decide("chair", "approve", conditions))


def policies(decided: Decided) -> list[ReleasePolicyVersion]:
    return [
        CODEC.decode(m.value, RELEASE_POLICY_VERSION)
        for m in decided.messages
        if m.topic == "t-access.policies"
    ]


def test_an_approval_publishes_one_signed_version_the_pseudonymizer_accepts() -> None:
    h = handler()
    decided = approve(h, "APP-1")
    [record] = policies(decided)
    assert TRUSTED.signature_refusal(record, 0) is None
    assert (record["dataset"], record["version"], record["status"]) == (
        "diabetes-cohort", 1, "ACTIVE",
    )  # fmt: skip
    assert record["application_id"] == record["approval_ref"] == "APP-1"
    assert record["principal"] == project_principal("diabetes-cohort", "t-")
    assert project_principal("diabetes-cohort") == "User:project-diabetes-cohort"
    approval = h.applications["APP-1"].approval
    assert approval is not None
    assert record["valid_until_ms"] == int(approval.valid_until.timestamp() * 1000)
    document = parse_policy(json.loads(record["policy_json"]), "the published version")
    assert document.k_anonymity.min_k == 10 and document.key_version == "k1"
    # the same transaction holds the event, its audit and the publication's audit
    topics = [m.topic for m in decided.messages]
    assert topics.count("t-access.events") == 1 and topics.count("t-access.policies") == 1
    audits = [CODEC.decode(m.value, AUDIT_EVENT) for m in decided.messages if "audit" in m.topic]
    assert [a["action"] for a in audits] == ["access.approved", "access.policy_published"]
    assert [m.key for m in decided.messages if m.topic == "t-access.policies"] == [
        b"diabetes-cohort"
    ]


def test_nothing_before_the_approval_publishes_and_without_a_key_nothing_does() -> None:
    h = handler(signing=False)
    assert policies(approve(h, "APP-1")) == []
    assert h.releases["diabetes-cohort"].version == 1  # still counted: the numbers stay right


def test_revocation_expiry_and_close_out_withdraw_the_version_in_force() -> None:
    for command, reason in (
        (Revoke("chair", "protocol breach"), "REVOKED"),
        (Expire(), "EXPIRED"),
        (CloseOut(testing.APPLICANT, testing.SHA), "CLOSED"),
    ):
        h = handler()
        approve(h, "APP-1")
        at = NOW + dt.timedelta(days=400)
        [withdrawal] = policies(run(h, "APP-1", command, at))
        assert TRUSTED.signature_refusal(withdrawal, 0) is None
        assert (withdrawal["version"], withdrawal["status"], withdrawal["withdrawn_reason"]) == (
            2, "WITHDRAWN", reason,
        )  # fmt: skip
        assert withdrawal["issued_at_ms"] == int(at.timestamp() * 1000)


def test_a_close_out_after_revocation_publishes_nothing_more() -> None:
    h = handler()
    approve(h, "APP-1")
    run(h, "APP-1", Revoke("chair", "protocol breach"))
    assert policies(run(h, "APP-1", CloseOut(testing.APPLICANT, testing.SHA))) == []


def test_a_renewal_is_the_next_version_with_the_same_pseudonyms_and_holds_the_dataset() -> None:
    h = handler()
    [first] = policies(approve(h, "APP-1"))
    [renewed] = policies(approve(h, "APP-2", "renewal", continues="APP-1"))
    assert (renewed["version"], renewed["application_id"], renewed["status"]) == (
        2, "APP-2", "ACTIVE",
    )  # fmt: skip
    old, new = json.loads(first["policy_json"]), json.loads(renewed["policy_json"])
    assert (old["pseudonym_domain"], old["key_version"]) == (
        new["pseudonym_domain"], new["key_version"],
    )  # fmt: skip
    assert renewed["principal"] == first["principal"]
    # the continued application expires at its own end: the renewal keeps the dataset
    later = NOW + dt.timedelta(days=370)
    assert policies(run(h, "APP-1", Expire(), later)) == []
    [revoked] = policies(run(h, "APP-2", Revoke("chair", "breach"), later))
    assert (revoked["version"], revoked["application_id"]) == (3, "APP-2")


def test_a_replay_recomputes_the_versions_and_publishes_nothing() -> None:
    h = handler()
    written: list[Event] = []
    apply = h.applied
    h.applied = lambda events: (written.extend(events), apply(events))[1]  # type: ignore[method-assign]
    approve(h, "APP-1")
    run(h, "APP-1", Revoke("chair", "breach"))
    replayed = handler()
    for offset, event in enumerate(written):
        message = h.event_message(event)
        replayed.on_record(Inbound(message.topic, 0, offset, message.key, message.value, (), 0))
    assert replayed.releases == h.releases
    assert replayed.releases["diabetes-cohort"].version == 2
    assert replayed.releases["diabetes-cohort"].record["status"] == "WITHDRAWN"


def test_a_record_released_before_and_after_a_renewal_has_the_same_pseudonym() -> None:
    """The access service's own versions, applied by the pseudonymizer's handler (D46): the
    renewal keeps the pseudonym domain and key version, so the derived key and the pseudonym."""
    from biostream.state import StateStore
    from biostream.testing import drive
    from pseudonymizer.adapters.keys import KeyStore
    from pseudonymizer.approvals import KeySource
    from pseudonymizer.handlers import PseudonymizerHandler, PseudonymizerMetrics

    from tests.unit.pseudonymizer import test_approvals as enforcement

    h = handler()
    [first] = policies(approve(h, "APP-1", min_k=1))
    [renewed] = policies(approve(h, "APP-2", "renewal", continues="APP-1", min_k=1))
    keys = KeyStore({}, enforcement.ROOT)
    topics = enforcement.TOPICS
    pseudonymizer = PseudonymizerHandler(
        CODEC, topics, Envelopes("pseudonymizer", "User:svc-pseudonymizer", CODEC, topics), [],
        PseudonymizerMetrics.create(CollectorRegistry()), TRUSTED, KeySource(keys.has, keys.key),
    )  # fmt: skip
    at = NOW + dt.timedelta(hours=1)
    store = StateStore()
    curated = topics.curated("diabetes-cohort")
    before = drive(
        pseudonymizer,
        [enforcement.decision("P1"), on_policy_topic(first, 0), enforcement.clinical("r0", 0)],
        at,
        store,
    ).outputs
    after = drive(
        pseudonymizer, [on_policy_topic(renewed, 1), enforcement.clinical("r1", 1)], at, store
    ).outputs
    released = [
        CODEC.decode(o.value, CURATED_RECORD) for o in [*before, *after] if o.topic == curated
    ]
    assert len(released) == 2
    assert len({r["pseudonym"] for r in released}) == 1
    assert {r["approval_ref"] for r in released} == {"APP-1", "APP-2"}


def on_policy_topic(record: ReleasePolicyVersion, offset: int) -> Inbound:
    from tests.unit.pseudonymizer.test_approvals import on_policy_topic as delivered

    return delivered(record, offset)


def test_an_approved_reidentification_is_listed_in_the_next_signed_version_until_it_ends() -> None:
    """D49 with D35: ``pseudonymizer reidentify`` accepts the application id while the signed
    version lists it, and refuses it once revoked; the release approval never counts."""
    import pytest
    from pseudonymizer.domain.reidentification import ApprovalRefused, approval_on_record

    h = handler()
    approve(h, "APP-1")
    basis = h.approval_of("diabetes-cohort")
    run(h, "APP-R", Create("APP-R", testing.APPLICANT, "reidentification",
                           testing.form("reidentification"), basis))  # fmt: skip
    run(h, "APP-R", Submit(testing.APPLICANT))
    for reviewer in ("rev-a", "rev-b"):
        run(h, "APP-R", Review(reviewer, testing.CHECKLIST_YES))
        run(h, "APP-R", Vote(reviewer, "approve"))
    [listed] = policies(run(h, "APP-R", Decide("chair", "approve")))
    assert TRUSTED.signature_refusal(listed, 0) is None
    assert (listed["version"], listed["status"], listed["application_id"]) == (2, "ACTIVE", "APP-1")
    policy = parse_policy(json.loads(listed["policy_json"]), "v2")
    today = NOW.date()
    assert approval_on_record(policy, "APP-R", today).ref == "APP-R"
    with pytest.raises(ApprovalRefused, match="release approval"):
        approval_on_record(policy, "APP-1", today)
    [unlisted] = policies(run(h, "APP-R", Revoke("chair", "no longer needed")))
    assert (unlisted["version"], unlisted["status"]) == (3, "ACTIVE")
    with pytest.raises(ApprovalRefused) as refused:
        approval_on_record(parse_policy(json.loads(unlisted["policy_json"]), "v3"), "APP-R", today)
    assert refused.value.reason_code == "REIDENTIFICATION_APPROVAL_UNKNOWN"
    # the dataset's own revocation still withdraws it (the holder is the release application)
    [withdrawn] = policies(run(h, "APP-1", Revoke("chair", "breach")))
    assert (withdrawn["version"], withdrawn["status"]) == (4, "WITHDRAWN")


def test_the_publication_is_audited_on_its_application_as_the_ledger_reads_it() -> None:
    h = handler()
    decided = approve(h, "APP-1")
    [audit] = [
        a
        for a in (
            CODEC.decode(m.value, AUDIT_EVENT) for m in decided.messages if "audit" in m.topic
        )
        if a["action"] == "access.policy_published"
    ]
    assert audit["inputs"] == ["APP-1"] and audit["dataset"] == "diabetes-cohort"
    # The access event that issued the version (the approval) is named first.
    [approved] = [e for e in decided.events if e.type == "approved"]
    assert audit["outputs"] == [
        approved.event_id, "policy:diabetes-cohort@1", "status:ACTIVE",
        "principal:User:t-project-diabetes-cohort",
    ]  # fmt: skip
