"""Trace, processing record, reconciliation and FHIR export over a realistic ledger."""

from __future__ import annotations

import json

from audit.domain.fhir import structural_problems, to_fhir
from audit.domain.lineage import dataset_reports, reconcile, trace
from biostream.contracts import AuditEvent

from .conftest import CODEC, DATASET, FEED, SignedLedger


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


def test_processing_record_per_dataset(signed_ledger: SignedLedger) -> None:
    policy = {
        "dataset": DATASET,
        "purpose": "Demonstration cohort",
        "approval_ref": "DRB-1",
        "resource_types": ["Observation", "Condition"],
    }
    [report] = dataset_reports(logged(signed_ledger), {DATASET: policy}).values()
    record = report.as_dict()
    assert record["dataset"] == DATASET
    assert record["purpose"] == ["Demonstration cohort"]
    assert record["items_released"] == ["Condition", "Observation"]
    assert record["recipients"] == ["research project approved under DRB-1"]
    assert record["counts"]["released"] == 3
    assert record["counts"]["withheld_by_reason"] == {"RESOURCE_TYPE_NOT_APPROVED": 1}
    assert record["counts"]["held_awaiting_link"] == 0  # the held one was released later
    assert record["period"]["from"] < record["period"]["to"]
    assert record["processed_by"] == ["User:svc-pseudonymizer"]


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
    assert released["purposeOfEvent"] == [{"text": "cohort-demo@1"}]
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
