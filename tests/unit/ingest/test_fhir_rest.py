"""D38: what the FHIR REST intake answers and stores, decided without a server or a broker."""

from __future__ import annotations

import datetime as dt
import json

from ingest.domain.fhir_rest import import_outcome, ndjson_lines, operation_outcome, resource_intake

TODAY = dt.date(2026, 12, 4)
PATIENT = {
    "resourceType": "Patient", "id": "p1",
    "identifier": [{"type": {"coding": [{"code": "MR"}]}, "system": "urn:h001", "value": "7"}],
    "name": [{"family": "김", "given": ["서연"]}], "gender": "female", "birthDate": "1985-03-21",
}  # fmt: skip


def test_a_usable_resource_is_stored_and_accepted_under_its_id() -> None:
    intake = resource_intake(json.dumps(PATIENT).encode(), TODAY, "Patient")
    assert (intake.status, intake.store, intake.key) == (202, True, b"p1")


def test_a_resource_the_parser_refuses_is_stored_for_the_dead_letter_and_answered_422() -> None:
    unusable = {**PATIENT, "identifier": []}
    intake = resource_intake(json.dumps(unusable).encode(), TODAY, "Patient")
    assert (intake.status, intake.store) == (422, True)
    assert intake.issue.reason_code is not None


def test_a_body_that_does_not_fit_the_url_is_refused_and_not_stored() -> None:
    intake = resource_intake(json.dumps(PATIENT).encode(), TODAY, "Observation")
    assert (intake.status, intake.store, intake.issue.reason_code) == (
        400,
        False,
        "FHIR_TYPE_MISMATCH",
    )


def test_what_is_not_json_is_refused_and_kept() -> None:
    for body, reason in ((b"MSH|^~\\&|", "FHIR_INVALID_JSON"), (b"[1, 2]", "FHIR_NOT_A_RESOURCE")):
        intake = resource_intake(body, TODAY, "Patient")
        assert (intake.status, intake.store, intake.issue.reason_code) == (400, True, reason)


def test_ndjson_lines_are_numbered_from_one_and_blank_lines_skipped() -> None:
    assert list(ndjson_lines(b'{"a":1}\r\n\n{"b":2}\n')) == [(1, b'{"a":1}'), (3, b'{"b":2}')]


def test_an_import_names_each_refused_line_and_totals_first() -> None:
    good = resource_intake(json.dumps(PATIENT).encode(), TODAY)
    bad = resource_intake(b"{", TODAY)
    assert import_outcome([(1, good), (2, good)], 2)[0] == 200
    status, issues = import_outcome([(1, good), (2, bad)], 2)
    assert status == 422
    outcome = operation_outcome(issues)
    assert outcome["issue"][0]["diagnostics"] == "2 resources read, 1 usable, 1 refused, 2 stored"
    assert outcome["issue"][1]["expression"] == ["line 2"]
    assert import_outcome([(1, bad)], 1)[0] == 400
    assert import_outcome([], 0)[0] == 400


def test_a_stored_transaction_is_answered_with_a_transaction_response_entry_per_entry() -> None:
    from ingest.domain.fhir_rest import bundle_response

    transaction = {"resourceType": "Bundle", "id": "T-1", "type": "transaction",
                   "entry": [{"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}}]}  # fmt: skip
    body = json.dumps(transaction).encode()
    intake = resource_intake(body, TODAY, "Bundle")
    answer = bundle_response(body, intake)
    assert answer is not None and answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["202 Accepted"]
    collection = json.dumps({**transaction, "type": "collection"}).encode()
    assert bundle_response(collection, resource_intake(collection, TODAY, "Bundle")) is None
    refused = json.dumps(
        {**transaction, "entry": [{"resource": {**PATIENT, "identifier": []}}]}
    ).encode()
    assert bundle_response(refused, resource_intake(refused, TODAY, "Bundle")) is None


def test_refusals_never_quote_the_personal_data_they_refuse() -> None:
    """Planted canaries: a refused resource's OperationOutcome names fields and rules only."""
    canaries = ("캐나리아", "850321-2012341", "010-9876-5432", "부산광역시 canary로 7")
    refused = {**PATIENT, "identifier": [{"system": "urn:rrn", "value": canaries[1]}],
               "name": [{"family": canaries[0][0], "given": [canaries[0][1:]], "text": canaries[0]}],
               "telecom": [{"system": "phone", "value": canaries[2]}],
               "address": [{"text": canaries[3]}], "birthDate": "1985-02-30"}  # fmt: skip
    for body in (
        json.dumps(refused, ensure_ascii=False).encode(),
        json.dumps(refused).encode()[:-3],
    ):
        intake = resource_intake(body, TODAY, "Patient")
        assert intake.status >= 400
        text = json.dumps(operation_outcome([intake.issue]), ensure_ascii=False)
        for canary in canaries:
            assert canary not in text and canary.replace("-", "") not in text
