"""D38 on a real broker over HTTPS: the FHIR REST intake stores what a hospital POSTs on its feed
before answering, answers each refusal with an OperationOutcome, and lets in only the hospital
(bearer token or client certificate)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from biostream.kafka import ensure_topics
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import tls
from ingest.adapters.fhir_gateway import FhirGateway
from ingest.settings import FhirGatewaySettings
from prometheus_client import CollectorRegistry

from .conftest import hospital_kafka, topic_messages

pytestmark = pytest.mark.integration

HOSPITAL = "H001"


def patient(identifier: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient", "id": identifier,
        "identifier": [{"type": {"coding": [{"code": "MR"}]},
                        "system": "http://h001.example.kr/patient-id", "value": mrn}],
        "name": [{"text": "김서연", "family": "김", "given": ["서연"]}],
        "gender": "female", "birthDate": "1985-03-21",
    }  # fmt: skip


@dataclass
class Intake:
    base: str
    context: ssl.SSLContext
    token: str
    gateway: FhirGateway


@contextlib.asynccontextmanager
async def intake(
    kafka: KafkaSettings, prefix: str, work: Path, **settings: object
) -> AsyncIterator[Intake]:
    ca = tls.ensure_ca(work / "ca")
    server = tls.issue_server(ca, work / "server", "fhir", ["127.0.0.1"])
    token = secrets.token_urlsafe(32)
    token_file = work / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    await ensure_topics(kafka, Topics(prefix).pipeline_specs([HOSPITAL], []))
    options = {
        "kafka": await hospital_kafka(kafka, prefix, HOSPITAL), "topic_prefix": prefix, "fhir_hospital": HOSPITAL,
        "fhir_port": 0, "fhir_certfile": server.cert, "fhir_keyfile": server.key,
        "fhir_token_file": token_file, **settings,
    }  # fmt: skip
    gateway = FhirGateway(FhirGatewaySettings.model_validate(options), CollectorRegistry())
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        for _ in range(300):
            if task.done():
                task.result()
            if gateway.ready:
                break
            await asyncio.sleep(0.1)
        context = ssl.create_default_context(cafile=str(ca.cert))
        yield Intake(f"https://127.0.0.1:{gateway.port}/fhir", context, token, gateway)
    finally:
        stop.set()
        await task


async def feed(kafka: KafkaSettings, prefix: str) -> list[tuple[bytes | None, bytes]]:
    return await topic_messages(kafka, Topics(prefix).feed(HOSPITAL))


async def post(
    session: aiohttp.ClientSession, on: Intake, path: str, body: bytes, token: str | None = None,
    content_type: str = "application/fhir+json",
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(on.base + path, data=body, headers=headers, ssl=on.context) as answer:
        return answer.status, json.loads(await answer.read())


def reasons(outcome: dict[str, Any]) -> list[str]:
    return [
        coding["code"]
        for issue in outcome["issue"]
        for coding in issue.get("details", {}).get("coding", [])
    ]


async def test_resources_bundles_and_ndjson_are_stored_before_the_answer(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    bundle = {"resourceType": "Bundle", "id": "B-1", "type": "collection",
              "entry": [{"resource": patient("p2", "71000002")}]}  # fmt: skip
    ndjson = b"\n".join([
        json.dumps(patient("p3", "71000003")).encode(),
        b'{"resourceType": "Patient", "id": "p4", ',  # cut off: not JSON
        json.dumps(patient("p5", "71000005")).encode(), b"",
    ])  # fmt: skip
    async with intake(kafka, topic_prefix, tmp_path) as on, aiohttp.ClientSession() as session:
        token = on.token
        one = await post(
            session, on, "/Patient", json.dumps(patient("p1", "71000001")).encode(), token
        )
        many = await post(session, on, "", json.dumps(bundle).encode(), token)
        transaction = {**bundle, "id": "T-1", "type": "transaction"}
        answered = await post(session, on, "", json.dumps(transaction).encode(), token)
        wrong_type = await post(
            session, on, "/Condition", json.dumps(patient("p9", "9")).encode(), token
        )
        not_json = await post(session, on, "/Patient", b"<Patient/>", token)
        imported = await post(session, on, "/$import", ndjson, token, "application/fhir+ndjson")
    assert one[0] == 202 and one[1]["resourceType"] == "OperationOutcome"
    assert many[0] == 202
    assert answered[0] == 200 and answered[1]["type"] == "transaction-response"
    assert wrong_type[0] == 400 and reasons(wrong_type[1]) == ["FHIR_TYPE_MISMATCH"]
    assert not_json[0] == 400 and reasons(not_json[1]) == ["FHIR_INVALID_JSON"]
    assert imported[0] == 422
    assert (
        imported[1]["issue"][0]["diagnostics"] == "3 resources read, 2 usable, 1 refused, 3 stored"
    )
    assert imported[1]["issue"][1]["expression"] == ["line 2"]
    stored = await feed(kafka, topic_prefix)
    # The wrongly addressed body is not stored; the unreadable ones are, for ingest to
    # dead-letter with their reasons (D7, D12).
    assert [key for key, _ in stored] == [b"p1", b"B-1", b"T-1", None, b"p3", None, b"p5"]
    assert stored[3][1] == b"<Patient/>"


async def test_only_the_hospital_gets_in(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    body = json.dumps(patient("p1", "71000001")).encode()
    async with intake(kafka, topic_prefix, tmp_path) as on, aiohttp.ClientSession() as session:
        without = await post(session, on, "/Patient", body)
        wrong = await post(session, on, "/Patient", body, secrets.token_urlsafe(32))
        async with session.get(on.base + "/metadata", ssl=on.context) as answer:
            metadata = answer.status, json.loads(await answer.read())
    assert without[0] == 401 and without[1]["issue"][0]["code"] == "login"
    assert wrong[0] == 401
    assert metadata[0] == 200 and metadata[1]["resourceType"] == "CapabilityStatement"
    assert await feed(kafka, topic_prefix) == []


async def test_with_client_certificates_another_hospitals_certificate_is_forbidden(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    ca = tls.ensure_ca(tmp_path / "ca")
    own = tls.issue_client(ca, tmp_path / "own", HOSPITAL)
    other = tls.issue_client(ca, tmp_path / "other", "H002")
    body = json.dumps(patient("p1", "71000001")).encode()
    async with intake(kafka, topic_prefix, tmp_path, fhir_client_cafile=ca.cert,
                      fhir_token_file=None) as on:  # fmt: skip
        answers = []
        for certificate in (own, other):
            context = ssl.create_default_context(cafile=str(ca.cert))
            context.load_cert_chain(certificate.cert, certificate.key)
            async with aiohttp.ClientSession() as session, session.post(
                on.base + "/Patient", data=body, ssl=context,
                headers={"Content-Type": "application/fhir+json"},
            ) as answer:  # fmt: skip
                answers.append(answer.status)
    assert answers == [202, 403]
    assert [key for key, _ in await feed(kafka, topic_prefix)] == [b"p1"]
