"""The synthetic Bulk Data export: one file per resource type, references as ``Type/id``, the
patient limit kept, malformed feed lines left out."""

from __future__ import annotations

import json
from pathlib import Path

from biostream_dev.synth.bulk import RESOURCE_FILES, bulk_export
from biostream_dev.synth.feed import generate_feed


def test_an_export_points_every_resource_at_an_exported_patient(tmp_path: Path) -> None:
    generate_feed(tmp_path / "feed", persons=300, seed=3)
    counts = bulk_export(tmp_path / "feed" / "H001" / "fhir.ndjson", tmp_path / "bulk", 50)
    assert counts["Patient"] == 50
    read = {
        kind: [
            json.loads(line)
            for line in (tmp_path / "bulk" / f"{kind}.ndjson").read_text().splitlines()
        ]
        for kind in RESOURCE_FILES
    }
    assert {kind: len(resources) for kind, resources in read.items()} == counts
    patients = {f"Patient/{p['id']}" for p in read["Patient"]}
    encounters = {f"Encounter/{e['id']}" for e in read["Encounter"]}
    for kind in RESOURCE_FILES[1:]:
        for resource in read[kind]:
            assert resource["subject"]["reference"] in patients
            if "encounter" in resource:
                assert resource["encounter"]["reference"] in encounters
    assert all(
        any(i["type"]["coding"][0]["code"] == "MR" for i in p["identifier"])
        for p in read["Patient"]
    )
    assert counts["MedicationRequest"] > 0 and counts["Condition"] > counts["MedicationRequest"]
