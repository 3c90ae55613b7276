"""Issue 19 on a real broker: a FHIR Bulk Data export of 1,000 patients (Patient, Encounter,
Condition, Observation and MedicationRequest NDJSON files, every resource pointing at its
Patient by ``Patient/<id>``) is imported through the hospital's FHIR intake (D38), read by
ingest (D36: resources on their own), linked, and reaches the curated dataset: nothing
dead-lettered, one person per patient, every clinical record released or withheld by policy."""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
from pathlib import Path

import aiohttp
import pytest
from biostream.settings import KafkaSettings
from biostream_dev import tls
from biostream_dev.synth.bulk import RESOURCE_FILES, bulk_export
from biostream_dev.synth.feed import generate_feed
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.fhir_gateway import FhirGateway
from ingest.settings import FhirGatewaySettings
from prometheus_client import CollectorRegistry

from .conftest import hospital_kafka

pytestmark = pytest.mark.integration

HOSPITAL = "H001"
PATIENTS = 1000


def true_people(feed: Path, patients: Path) -> int:
    """How many different people the exported Patients are (the generator's truth file)."""
    entity = {}
    for line in (feed / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["hospital"] == HOSPITAL and row["patient_no"]:
            entity[row["patient_no"]] = row["entity_id"]
    numbers = [
        identifier["value"]
        for line in patients.read_text(encoding="utf-8").splitlines()
        for identifier in json.loads(line)["identifier"]
        if identifier.get("type", {}).get("coding", [{}])[0].get("code") == "MR"
    ]
    return len({entity[n] for n in numbers})


async def test_a_bulk_export_of_a_thousand_patients_loads_links_and_is_curated(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=3300, seed=7)
    counts = bulk_export(tmp_path / "feed" / HOSPITAL / "fhir.ndjson", tmp_path / "bulk", PATIENTS)
    assert counts["Patient"] == PATIENTS
    total = sum(counts.values())

    ca = tls.ensure_ca(tmp_path / "ca")
    server = tls.issue_server(ca, tmp_path / "server", "fhir", ["127.0.0.1"])
    token = secrets.token_urlsafe(32)
    (tmp_path / "token").write_text(token)
    async with running_pipeline(kafka, topic_prefix, [HOSPITAL], Keys.fresh()) as observer:
        gateway = FhirGateway(
            FhirGatewaySettings.model_validate({
                "kafka": await hospital_kafka(kafka, topic_prefix, HOSPITAL), "topic_prefix": topic_prefix,
                "fhir_hospital": HOSPITAL, "fhir_port": 0, "fhir_certfile": server.cert,
                "fhir_keyfile": server.key, "fhir_token_file": tmp_path / "token",
            }),
            CollectorRegistry(),
        )  # fmt: skip
        stop = asyncio.Event()
        serving = asyncio.create_task(gateway.run(stop))
        while not gateway.ready:  # noqa: ASYNC110 - the intake has no ready event
            await asyncio.sleep(0.1)
        context = ssl.create_default_context(cafile=str(ca.cert))
        answers = {}
        headers = {"Content-Type": "application/fhir+ndjson", "Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            for kind in RESOURCE_FILES:  # Patients first, as an importer loads an export
                body = (tmp_path / "bulk" / f"{kind}.ndjson").read_bytes()
                url = f"https://127.0.0.1:{gateway.port}/fhir/$import"
                async with session.post(url, data=body, headers=headers, ssl=context) as answer:
                    answers[kind] = (answer.status, json.loads(await answer.read()))
        view = await observer.wait_until_settled(total, timeout_s=600)
        stop.set()
        await serving

    for kind, (status, outcome) in answers.items():
        assert status == 200, (kind, outcome["issue"][:3])
    assert view.dead_letters == [], {d["reason_code"] for d in view.dead_letters}
    # One identity record per Patient; the clinical resources are joined to them; the persons
    # are the generator's true people among them (a person may hold two patient numbers at one
    # hospital), up to linkage's known error rate.
    assert len(view.identity) == PATIENTS
    people = true_people(tmp_path / "feed", tmp_path / "bulk" / "Patient.ndjson")
    assert abs(view.persons() - people) <= people * 0.01, (view.persons(), people)
    clinical = (
        counts["Encounter"]
        + counts["Condition"]
        + counts["Observation"]
        + counts["MedicationRequest"]
    )
    assert len(view.clinical) >= counts["Condition"] + counts["Observation"]
    assert len(view.clinical) <= clinical
    # Every clinical record is settled (released, or withheld by the dataset's policy), and the
    # curated dataset holds records of the export's patients under one pseudonym each.
    assert view.clinical_settled() == len(view.clinical)
    assert view.curated, "nothing reached the curated dataset"
    print(f"bulk import: {counts} -> {len(view.identity)} identity records, {view.persons()} "
          f"persons (truth {people}), {len(view.clinical)} clinical records, "
          f"{len(view.curated)} curated")  # fmt: skip
    assert len({c["pseudonym"] for c in view.curated}) <= PATIENTS
