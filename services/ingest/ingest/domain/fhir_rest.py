"""D38: the rules of the FHIR REST intake: what a hospital's POST of a resource, a Bundle or an
NDJSON file (Bulk Data) is answered, what of it is stored on the feed, and the OperationOutcome.

The intake checks each resource with ingest's own parser (the one the stream service applies
later), so a hospital learns at once that a resource cannot be used; a resource the parser
refuses is still stored, so that ingest dead-letters it with its reason and the original bytes
(D7, D12), as the MLLP listener does with a refused message (D37). What is not a FHIR resource
of the request at all (a body that does not fit the URL) is refused and not stored: the request
was wrong, not the data. Pure: bytes in, answers out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ingest.domain.messages import parse_message
from ingest.domain.model import Rejected

REASON_SYSTEM = "https://biostream.dev/fhir/CodeSystem/ingest-reason"


@dataclass(frozen=True, slots=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR IssueType: invalid, structure, not-supported, too-long, transient, ...
    diagnostics: str
    reason_code: str | None = None
    expression: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity, "code": self.code, "diagnostics": self.diagnostics,
        }  # fmt: skip
        if self.reason_code is not None:
            issue["details"] = {"coding": [{"system": REASON_SYSTEM, "code": self.reason_code}]}
        if self.expression is not None:
            issue["expression"] = [self.expression]
        return issue


@dataclass(frozen=True, slots=True)
class Intake:
    """What to do with one resource (or Bundle) of a request."""

    status: int  # the HTTP status it alone would get
    store: bool  # written to the hospital's feed topic
    key: bytes | None  # the feed message key: the resource's (or Bundle's) id
    issue: Issue


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def resource_intake(
    body: bytes, today: dt.date, expected_type: str | None = None, where: str | None = None
) -> Intake:
    """D38: one resource. Not JSON, or not an object: 400, stored (ingest dead-letters it:
    what a hospital sent is kept). A ``resourceType`` other than the URL's: 400, not stored (the
    request was wrong). Refused by ingest's parser: 422 with the parser's reason code, stored.
    Otherwise 202 Accepted: stored, and processed by the stream service."""
    try:
        resource = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Intake(400, True, None, Issue("error", "structure", "not a JSON document",
                                             "FHIR_INVALID_JSON", where))  # fmt: skip
    if not isinstance(resource, dict):
        return Intake(400, True, None, Issue("error", "structure", "not a FHIR resource",
                                             "FHIR_NOT_A_RESOURCE", where))  # fmt: skip
    resource_type = resource.get("resourceType")
    if expected_type is not None and resource_type != expected_type:
        return Intake(400, False, None, Issue(
            "error", "invalid", f"the body is not a {expected_type} resource",
            "FHIR_TYPE_MISMATCH", where,
        ))  # fmt: skip
    identifier = resource.get("id")
    key = identifier.encode() if isinstance(identifier, str) and identifier else None
    try:
        parse_message("fhir", body, key.decode() if key else None, today)
    except Rejected as rejected:
        return Intake(422, True, key, Issue("error", "processing", rejected.message,
                                            rejected.reason_code, where))  # fmt: skip
    return Intake(202, True, key, Issue("information", "informational",
                                        "stored; ingest processes it from the feed", None,
                                        where))  # fmt: skip


def ndjson_lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """D38: the resources of a Bulk Data NDJSON file, with their 1-based line numbers; blank
    lines (and a final newline, CRLF line ends) are not resources."""
    for number, line in enumerate(body.split(b"\n"), start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def import_outcome(intakes: list[tuple[int, Intake]], stored: int) -> tuple[int, list[Issue]]:
    """D38: the answer to an NDJSON import: 200 when every line was usable, 422 when some were
    refused (they are named by line, and stored all the same unless the line did not fit the
    request), 400 when none was a resource; one information issue with the totals first."""
    refused = [(n, i) for n, i in intakes if i.status >= 400]
    usable = len(intakes) - len(refused)
    summary = Issue(
        "information", "informational",
        f"{len(intakes)} resources read, {usable} usable, {len(refused)} refused, {stored} stored",
    )  # fmt: skip
    issues = [summary] + [
        Issue(i.issue.severity, i.issue.code, i.issue.diagnostics, i.issue.reason_code, f"line {n}")
        for n, i in refused
    ]
    if not intakes:
        return 400, [Issue("error", "required", "the file holds no resource", "EMPTY_MESSAGE")]
    return (200 if not refused else 422 if usable else 400), issues


def bundle_response(body: bytes, intake: Intake) -> dict[str, Any] | None:
    """D38: a stored transaction or batch Bundle is answered as FHIR answers them, with a
    ``transaction-response``/``batch-response`` Bundle holding one entry per request entry (each
    "202 Accepted": the whole Bundle is one feed message, processed by the stream service). Any
    other Bundle, or one refused, is answered with its OperationOutcome (a refused transaction
    is refused whole, as FHIR requires)."""
    if intake.status != 202:
        return None
    bundle = json.loads(body)
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        return None
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    return {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "entry": [
            {"response": {"status": "202 Accepted", "outcome": operation_outcome([intake.issue])}}
            for _entry in entries
        ],
    }
