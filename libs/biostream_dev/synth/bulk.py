"""A FHIR Bulk Data export (``$export``) of one hospital of a synthetic feed: NDJSON files, one
resource type per file, every resource pointing at its Patient by ``Patient/<id>``, as an EHR's
export writes them. Patients first (the file an importer loads first).

Built from the feed's own FHIR Bundles (``fhir.ndjson``; the lines its truth file marks
malformed are left out), so the people, visits and codes are the
generator's: each Patient once (its newest details), each Encounter, Condition and Observation,
and for every Condition of a chronic disease a MedicationRequest (a synthetic KD code: the
generator has no prescriptions of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESOURCE_FILES = ("Patient", "Encounter", "Condition", "Observation", "MedicationRequest")
KD_CODE_SYSTEM = "http://www.hl7korea.or.kr/CodeSystem/kd-code"
# Chronic diagnoses (KCD prefix) and a synthetic 9-digit KD code of a drug for each.
_TREATED = {"E11": "690100010", "I10": "690100020", "E78": "690100030", "J45": "690100040"}


def _bundles(fhir_ndjson: Path) -> Iterator[dict[str, Any]]:
    """The feed's well-formed Bundles: the lines its truth file marks malformed (broken JSON, a
    patient without a number, ...) are not exported, as an EHR's export would not hold them."""
    truth = fhir_ndjson.parent.parent / "truth.jsonl"
    hospital = fhir_ndjson.parent.name
    malformed: set[int] = set()
    if truth.exists():
        for row in map(json.loads, truth.read_text(encoding="utf-8").splitlines()):
            if row["hospital"] == hospital and row["format"] == "fhir" and row["malformed"]:
                malformed.add(int(row["line"]))
    with fhir_ndjson.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if number in malformed:
                continue
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict) and document.get("resourceType") == "Bundle":
                yield document


def _relink(resource: dict[str, Any], by_url: dict[str, str]) -> dict[str, Any]:
    """References to entries of the Bundle (``urn:uuid:...``) become ``Type/id``."""
    for field in ("subject", "patient", "encounter"):
        reference = (
            resource.get(field, {}).get("reference")
            if isinstance(resource.get(field), dict)
            else None
        )
        if isinstance(reference, str) and reference in by_url:
            resource[field] = {"reference": by_url[reference]}
    return resource


def bulk_export(
    fhir_ndjson: Path, out_dir: Path, patients_at_most: int | None = None
) -> dict[str, int]:
    """Writes ``<Type>.ndjson`` for each type of ``RESOURCE_FILES``, of the first
    ``patients_at_most`` patients (all by default); returns resources per type."""
    patients: dict[str, dict[str, Any]] = {}
    others: dict[str, list[dict[str, Any]]] = {t: [] for t in RESOURCE_FILES[1:]}
    for bundle in _bundles(fhir_ndjson):
        entries = [e for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
        by_url = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in entries
            if e.get("fullUrl") and e["resource"].get("id")
        }
        first = entries[0]["resource"] if entries else {}
        if first.get("resourceType") != "Patient" or (
            patients_at_most is not None
            and first.get("id") not in patients
            and len(patients) >= patients_at_most
        ):
            continue
        for entry in entries:
            resource = _relink(dict(entry["resource"]), by_url)
            kind = resource["resourceType"]
            if kind == "Patient":
                patients[resource["id"]] = resource  # the newest details win
            elif kind in others:
                others[kind].append(resource)
                if kind == "Condition":
                    medication = _medication_for(resource)
                    if medication is not None:
                        others["MedicationRequest"].append(medication)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"Patient": len(patients), **{k: len(v) for k, v in others.items()}}
    files = {"Patient": list(patients.values()), **others}
    for kind, resources in files.items():
        with (out_dir / f"{kind}.ndjson").open("w", encoding="utf-8") as out:
            for resource in resources:
                out.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
    return counts


def _medication_for(condition: dict[str, Any]) -> dict[str, Any] | None:
    codings = condition.get("code", {}).get("coding", [])
    code = str(codings[0].get("code", "")) if codings else ""
    drug = next((kd for prefix, kd in _TREATED.items() if code.startswith(prefix)), None)
    if drug is None:
        return None
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"mr-{condition['id']}",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": KD_CODE_SYSTEM, "code": drug}]},
        "subject": condition["subject"],
        "authoredOn": condition.get("recordedDate"),
    }
    if "encounter" in condition:
        request["encounter"] = condition["encounter"]
    return request
