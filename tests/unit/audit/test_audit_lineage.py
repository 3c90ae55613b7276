"""Trace, processing record, reconciliation and FHIR export over a realistic ledger."""

from __future__ import annotations

import datetime as dt
import json

from audit.domain.fhir import structural_problems, to_fhir
from audit.domain.lineage import Logged, dataset_reports, reconcile, trace
from biostream.contracts import AuditEvent
from biostream.envelopes import Envelopes

from .conftest import CODEC, DATASET, FEED, T0, TOPICS, SignedLedger


def logged(ledger: SignedLedger) -> list[tuple[int, AuditEvent]]:
    return [(e["sequence"], CODEC.decode(e["event_payload"], "AuditEvent")) for e in ledger.entries]  # type: ignore[misc]


def test_trace_from_a_curated_id_finds_the_whole_history_of_its_source_message(
    signed_ledger: SignedLedger,
) -> None:
    events = logged(signed_ledger)
    hits = trace(events, "cur-H001/M0/c0a")
    actions = [e["action"] for _, e in hits]
    assert actions == [
        "ingest.accepted", "linkage.linked", "pseudonymizer.released", "pseudonymizer.released"
    ]  # fmt: skip
    assert hits[0][1]["inputs"] == [f"{FEED}0"]
    # Nothing of other messages.
    assert all("M1" not in json.dumps(e["inputs"] + e["outputs"]) for _, e in hits)


def test_trace_from_a_source_position_and_of_an_unknown_reference(
    signed_ledger: SignedLedger,
) -> None:
    events = logged(signed_ledger)
    held = [e["action"] for _, e in trace(events, f"{FEED}1")]
    assert held == [
        "ingest.accepted", "linkage.linked", "pseudonymizer.held", "pseudonymizer.released"
    ]  # fmt: skip
    assert [e["action"] for _, e in trace(events, f"{FEED}3")] == ["ingest.rejected"]
    assert trace(events, "nothing-like-this") == []


def test_a_ledger_written_before_d23c_takes_items_from_a_policy_file_of_the_same_version(
    signed_ledger: SignedLedger,
) -> None:
    """The ledger of the conftest has no policy announcement (as before D23c): the policy file,
    with its real key ``record_types``, fills purpose, items and recipients, flagged as such."""
    policy = {
        "dataset": DATASET,
        "version": "2",
        "purpose": "Demonstration cohort",
        "approval_ref": "DRB-1",
        "record_types": ["Observation", "Condition"],
        "fields": ["code", "hospital"],
    }
    [report] = dataset_reports(logged(signed_ledger), {DATASET: policy}).values()
    record = report.as_dict()
    assert record["dataset"] == DATASET
    assert record["purpose"] == ["Demonstration cohort"]
    assert record["items_released"] == ["Condition", "Observation"]
    assert record["fields_released"] == ["code", "hospital"]
    assert record["recipients"] == ["research project approved under DRB-1"]
    [period] = record["policies"]
    assert period["policy_version"] == "cohort-demo@2" and period["source"] == "policy-file"
    assert period["released"] == 3 and period["digest"] is None
    assert record["notes"] == [
        "cohort-demo@2: not announced in the ledger (written before D23c); purpose, approval "
        "and items from the policy file given to the report"
    ]
    assert record["counts"]["released"] == 3
    assert record["counts"]["released_by_policy_version"] == {"cohort-demo@2": 3}
    assert record["counts"]["withheld_by_reason"] == {"RESOURCE_TYPE_NOT_APPROVED": 1}
    assert record["counts"]["held_awaiting_link"] == 0  # the held one was released later
    assert record["period"]["from"] < record["period"]["to"]
    assert record["processed_by"] == ["User:u.svc-pseudonymizer"]

    # Today's file of another version says nothing about what was then in force.
    newer = {**policy, "version": "3"}
    [unknown] = dataset_reports(logged(signed_ledger), {DATASET: newer}).values()
    assert unknown.as_dict()["policies"][0]["source"] == "unknown"
    assert unknown.items == [] and unknown.recipients == []
    assert "no policy file of this version" in unknown.notes[0]


PSEUDO = Envelopes("pseudonymizer", "User:svc-pseudonymizer", CODEC, TOPICS)


def in_force(version: str, minute: int, record_types: list[str], approval: str,
             digest: str = "a") -> Logged:  # fmt: skip
    policy_version = f"{DATASET}@{version}"
    digest = "sha256:" + digest * 64
    out = PSEUDO.audit(
        "pseudonymizer.policy_in_force", [f"policy:{policy_version}/{digest}"], [],
        T0 + dt.timedelta(minutes=minute), dataset=DATASET, purpose=policy_version,
        reason_code="POLICY_LOADED",
        policy={
            "policy_version": policy_version, "digest": digest, "approval_ref": approval,
            "purpose": f"purpose of {version}", "record_types": record_types,
            "fields": ["code", "hospital"],
        },
    )  # fmt: skip
    return (minute, CODEC.decode(out.value or b"", "AuditEvent"))  # type: ignore[return-value]


def released(version: str, minute: int, record: str) -> Logged:
    out = PSEUDO.audit(
        "pseudonymizer.released", [record], [f"cur-{record}"], T0 + dt.timedelta(minutes=minute),
        hospital="H001", dataset=DATASET, purpose=f"{DATASET}@{version}",
    )  # fmt: skip
    return (minute, CODEC.decode(out.value or b"", "AuditEvent"))  # type: ignore[return-value]


def test_releases_count_under_the_policy_version_in_force_when_the_policy_changes() -> None:
    """D23c: version 1 (Conditions and Observations) is replaced mid-stream by version 2
    (Conditions only, another approval); each release counts under the policy then in force,
    as the ledger says it, whatever the policy files of today say."""
    events = [
        in_force("1", 0, ["Condition", "Observation"], "DRB-1"),
        released("1", 1, "r1"),
        released("1", 2, "r2"),
        in_force("2", 3, ["Condition"], "DRB-2", digest="b"),
        released("2", 4, "r3"),
        released("2", 5, "r4"),
        released("2", 6, "r5"),
    ]
    todays_file = {"dataset": DATASET, "version": "2", "purpose": "today",
                   "approval_ref": "DRB-9", "record_types": ["Specimen"], "fields": []}  # fmt: skip
    [report] = dataset_reports(events, {DATASET: todays_file}).values()
    record = report.as_dict()
    one, two = record["policies"]
    assert (one["policy_version"], one["released"], one["source"]) == ("cohort-demo@1", 2, "ledger")
    assert (two["policy_version"], two["released"], two["source"]) == ("cohort-demo@2", 3, "ledger")
    assert one["items"] == {
        "record_types": ["Condition", "Observation"],
        "fields": ["code", "hospital"],
    }
    assert two["items"]["record_types"] == ["Condition"]
    assert one["approval_ref"] == "DRB-1" and two["approval_ref"] == "DRB-2"
    assert one["digest"] == "sha256:" + "a" * 64 and two["digest"] == "sha256:" + "b" * 64
    assert (
        one["in_force"]["until"]
        == two["in_force"]["from"]
        == (T0 + dt.timedelta(minutes=3)).isoformat()
    )
    assert two["in_force"]["until"] is None
    assert one["period"]["to"] < two["period"]["from"]
    assert record["counts"]["released_by_policy_version"] == {
        "cohort-demo@1": 2,
        "cohort-demo@2": 3,
    }
    assert record["policy_versions"] == ["cohort-demo@1", "cohort-demo@2"]
    assert record["purpose"] == ["purpose of 1", "purpose of 2"]
    assert record["items_released"] == ["Condition", "Observation"]
    assert record["recipients"] == [
        "research project approved under DRB-1", "research project approved under DRB-2"
    ]  # fmt: skip
    assert record["notes"] == []


def test_a_repeated_announcement_is_one_period_and_a_new_digest_is_another() -> None:
    events = [
        in_force("1", 0, ["Condition"], "DRB-1"),
        released("1", 1, "r1"),
        in_force("1", 2, ["Condition"], "DRB-1"),  # announced again: the same policy
        released("1", 3, "r2"),
        in_force("1", 4, ["Condition", "Observation"], "DRB-1", digest="c"),  # edited, same version
        released("1", 5, "r3"),
    ]
    [report] = dataset_reports(events).values()
    periods = report.as_dict()["policies"]
    assert [(p["digest"][-1], p["released"]) for p in periods] == [("a", 2), ("c", 1)]
    assert report.as_dict()["counts"]["released_by_policy_version"] == {"cohort-demo@1": 3}


def test_a_policy_announcement_is_neither_unaccounted_nor_part_of_a_record_trace(
    signed_ledger: SignedLedger,
) -> None:
    events = [in_force("2", 0, ["Condition"], "DRB-1"), *logged(signed_ledger)]
    result = reconcile([f"{FEED}{n}" for n in range(5)], events)
    assert result.complete and result.counts()["published"] == 5
    assert "pseudonymizer.policy_in_force" not in [
        e["action"] for _, e in trace(events, f"{FEED}0")
    ]


def test_reconciliation_accounts_for_every_published_message(signed_ledger: SignedLedger) -> None:
    published = [f"{FEED}{n}" for n in range(5)]
    result = reconcile(published, logged(signed_ledger))
    assert result.complete
    assert result.counts() == {
        "published": 5, "curated": 2, "withheld": 1, "held": 0, "linked_only": 0,
        "dead_lettered": 1, "duplicates": 1, "unaccounted": 0,
    }  # fmt: skip


def test_reconciliation_names_what_is_missing(signed_ledger: SignedLedger) -> None:
    events = logged(signed_ledger)
    # Drop the release of one record of message 0, and publish a message nobody ingested.
    without = [
        (s, e) for s, e in events if not (e["action"] == "pseudonymizer.released" and e["inputs"] == ["H001/M0/c0b"])
    ]  # fmt: skip
    result = reconcile([f"{FEED}{n}" for n in range(6)], without)
    assert not result.complete
    assert result.unaccounted == {
        f"{FEED}0": "no downstream outcome for 1 record(s)",
        f"{FEED}5": "no ingest event",
    }


def test_fhir_audit_events_are_structurally_valid_r4(signed_ledger: SignedLedger) -> None:
    resources = [
        to_fhir(e, s, signed_ledger.entries[s]["entry_hash"]) for s, e in logged(signed_ledger)
    ]
    for resource in resources:
        assert structural_problems(resource) == [], resource
        json.dumps(resource)  # JSON-serialisable as is
    released = next(r for r in resources if r["subtype"][0]["code"] == "pseudonymizer.released")
    assert released["type"]["code"] == "110106"
    assert released["outcome"] == "0"
    assert released["purposeOfEvent"] == [{"text": "cohort-demo@2"}]
    rejected = next(r for r in resources if r["subtype"][0]["code"] == "ingest.rejected")
    assert rejected["outcome"] == "4" and rejected["outcomeDesc"] == "FHIR_INVALID_JSON"
    ledger_ref = rejected["entity"][-1]["what"]["identifier"]
    assert ledger_ref["system"] == "urn:biostream:audit-ledger"


def test_fhir_audit_events_validate_against_the_fhir_models(signed_ledger: SignedLedger) -> None:
    # fhir.resources ships R4B models; AuditEvent did not change between R4 and R4B.
    from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

    for sequence, event in logged(signed_ledger):
        resource = to_fhir(event, sequence, signed_ledger.entries[sequence]["entry_hash"])
        parsed = FhirAuditEvent.model_validate(resource)
        assert parsed.id == event["event_id"]
        assert len(parsed.entity) == len(event["inputs"]) + len(event["outputs"]) + 1


def test_the_structural_check_catches_broken_resources() -> None:
    assert structural_problems({"resourceType": "Patient"})
    assert "agent is required (1..*)" in structural_problems(
        {"resourceType": "AuditEvent", "type": {"system": "s", "code": "c"},
         "recorded": "2026-03-01T09:00:00+00:00", "source": {"observer": {}}}
    )  # fmt: skip
