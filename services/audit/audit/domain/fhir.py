"""Audit events as FHIR R4 AuditEvent resources, for hospitals' own audit tools.

Mapping (R4, http://hl7.org/fhir/R4/auditevent.html):
- ``type``: DICOM 110107 Import for ingest, 110106 Export for releases, 110100 Application Activity
  otherwise; ``subtype``: the biostream action code.
- ``action``: C (create) for accepted/linked, E (execute) otherwise; ``outcome``: 0 success,
  4 minor failure (rejected, withheld, duplicate, held), 8 serious failure (failed).
- ``agent``: the acting service principal (``requestor`` false: the pipeline acts on its own).
- ``source.observer``: the biostream service; ``entity``: every input and output reference, and the
  ledger entry (sequence and entry hash) so a hospital can ask for its inclusion proof.
References only: no direct identifier reaches the resource (none is in an audit event).
"""

from __future__ import annotations

from typing import Any

from biostream.contracts import AuditEvent

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACTION_SYSTEM = "urn:biostream:audit-action"
LEDGER_SYSTEM = "urn:biostream:audit-ledger"
REFERENCE_SYSTEM = "urn:biostream:reference"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"

_FAILED = frozenset({"failed"})
_MINOR = frozenset({"rejected", "withheld", "duplicate", "held"})


def _type(action: str) -> dict[str, str]:
    if action.startswith("ingest."):
        return {"system": DCM, "code": "110107", "display": "Import"}
    if action == "pseudonymizer.released":
        return {"system": DCM, "code": "110106", "display": "Export"}
    return {"system": DCM, "code": "110100", "display": "Application Activity"}


def _outcome(event: AuditEvent) -> str:
    if event["outcome"] in _FAILED or event["action"].endswith(".failed"):
        return "8"
    if event["outcome"] in _MINOR:
        return "4"
    return "0"


def to_fhir(event: AuditEvent, sequence: int, entry_hash: bytes) -> dict[str, Any]:
    action = event["action"]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event["event_id"],
        "type": _type(action),
        "subtype": [{"system": ACTION_SYSTEM, "code": action}],
        "action": "C" if action in ("ingest.accepted", "linkage.linked") else "E",
        "recorded": event["occurred_at"].isoformat(timespec="milliseconds"),
        "outcome": _outcome(event),
        "agent": [
            {
                "type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
                "who": {
                    "identifier": {"system": "urn:biostream:principal", "value": event["principal"]}
                },
                "name": event["service"],
                "requestor": False,
            }
        ],
        "source": {
            "site": "biostream",
            "observer": {"display": f"biostream {event['service']}"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": [
            *(_entity(ref, "input") for ref in event["inputs"]),
            *(_entity(ref, "output") for ref in event["outputs"]),
            {
                "what": {"identifier": {"system": LEDGER_SYSTEM, "value": str(sequence)}},
                "description": "audit ledger entry",
                "detail": [{"type": "entry_hash", "valueString": entry_hash.hex()}],
            },
        ],
    }
    if event["reason_code"]:
        resource["outcomeDesc"] = event["reason_code"]
    if event["purpose"]:
        resource["purposeOfEvent"] = [{"text": event["purpose"]}]
    if event["hospital"]:
        resource["source"]["site"] = f"biostream/{event['hospital']}"
    return resource


def _entity(reference: str, direction: str) -> dict[str, Any]:
    return {
        "what": {"identifier": {"system": REFERENCE_SYSTEM, "value": reference}},
        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        "description": direction,
    }


def structural_problems(resource: dict[str, Any]) -> list[str]:
    """The R4 AuditEvent invariants a consumer relies on: required elements, their cardinality and
    value sets (a structural check, not a full profile validation)."""
    problems: list[str] = []
    if resource.get("resourceType") != "AuditEvent":
        problems.append("resourceType must be AuditEvent")
    coding = resource.get("type")
    if not isinstance(coding, dict) or not coding.get("system") or not coding.get("code"):
        problems.append("type (Coding) is required with system and code")
    if resource.get("action") not in (None, "C", "R", "U", "D", "E"):
        problems.append("action must be one of C R U D E")
    if resource.get("outcome") not in (None, "0", "4", "8", "12"):
        problems.append("outcome must be one of 0 4 8 12")
    recorded = resource.get("recorded")
    if (
        not isinstance(recorded, str)
        or "T" not in recorded
        or not (recorded.endswith("Z") or "+" in recorded[10:] or "-" in recorded[10:])
    ):
        problems.append("recorded must be an instant with a time zone")
    agents = resource.get("agent")
    if not isinstance(agents, list) or not agents:
        problems.append("agent is required (1..*)")
    else:
        for agent in agents:
            if not isinstance(agent.get("requestor"), bool):
                problems.append("agent.requestor is required (boolean)")
            if not agent.get("who"):
                problems.append("agent.who is expected")
    source = resource.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("observer"), dict):
        problems.append("source.observer is required")
    for entity in resource.get("entity", []):
        for detail in entity.get("detail", []):
            if "type" not in detail or not any(k.startswith("value") for k in detail):
                problems.append("entity.detail needs type and value[x]")
    return problems
