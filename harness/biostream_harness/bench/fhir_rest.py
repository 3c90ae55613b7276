"""FHIR REST intake benchmark (issue 19, D38): resources per second of `ingest fhir` for single
resources (POST /fhir/Patient, several clients each waiting for its answer) and for NDJSON
imports (POST /fhir/$import), against a bare relay of the same bytes in the same run.

The bare relay is an aiohttp server on the same TLS certificate and the same idempotent acks=all
producer that stores the body (or each line) and answers a fixed 202: no JSON parse, no ingest
parser, no OperationOutcome. Its rate is what HTTPS and the broker cost; the intake's ratio to it
is what the intake's own work (chiefly running ingest's parser on every resource) keeps. Sides
alternate.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import aiohttp
import typer
from aiohttp import web
from biostream.kafka import ensure_topics, plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import broker, tls
from prometheus_client import CollectorRegistry

from biostream_harness.bench.measure import percentile

HOSPITAL = "H001"


def resource(number: int) -> bytes:
    return json.dumps({
        "resourceType": "Patient", "id": f"p{number}",
        "identifier": [{"type": {"coding": [{"code": "MR"}]},
                        "system": "http://h001.example.kr/patient-id", "value": f"{number:08d}"}],
        "name": [{"text": "김서연", "family": "김", "given": ["서연"]}],
        "gender": "female", "birthDate": "1985-03-21",
        "telecom": [{"system": "phone", "value": "010-3141-5926"}],
        "address": [{"text": "부산광역시 해운대구 센텀중앙로 79", "postalCode": "48058"}],
    }, ensure_ascii=False).encode()  # fmt: skip


@dataclass
class Side:
    name: str
    mode: str  # single | ndjson
    resources: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.resources / self.seconds


async def relay_app(kafka: KafkaSettings, topic: str) -> tuple[web.AppRunner, object]:
    producer = plain_producer(kafka, "bench-fhir-relay")
    await producer.start()

    async def single(request: web.Request) -> web.Response:
        await producer.send_and_wait(topic, await request.read())
        return web.Response(status=202, body=b"{}")

    async def ndjson(request: web.Request) -> web.Response:
        lines = [line for line in (await request.read()).split(b"\n") if line.strip()]
        pending = [await producer.send(topic, line) for line in lines]
        await asyncio.gather(*pending)
        return web.Response(status=200, body=b"{}")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/fhir/$import", ndjson)
    app.router.add_post("/fhir/{type}", single)
    return web.AppRunner(app, access_log=None), producer


async def drive_single(base: str, context: ssl.SSLContext, token: str, clients: int,
                       per_client: int, offset: int) -> tuple[float, list[float]]:  # fmt: skip
    latencies: list[float] = []
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}

    async def one(session: aiohttp.ClientSession, client: int) -> None:
        for n in range(per_client):
            body = resource(offset + client * per_client + n)
            started = time.perf_counter()
            async with session.post(
                f"{base}/Patient", data=body, headers=headers, ssl=context
            ) as r:
                await r.read()
                assert r.status == 202, r.status
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, c) for c in range(clients)))
    return time.perf_counter() - started, latencies


async def drive_ndjson(base: str, context: ssl.SSLContext, token: str, files: int,
                       per_file: int, offset: int) -> tuple[float, list[float]]:  # fmt: skip
    headers = {"Content-Type": "application/fhir+ndjson", "Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for f in range(files):
            body = b"\n".join(resource(offset + f * per_file + n) for n in range(per_file))
            begun = time.perf_counter()
            async with session.post(
                f"{base}/$import", data=body, headers=headers, ssl=context
            ) as r:
                await r.read()
                assert r.status == 200, r.status
            latencies.append((time.perf_counter() - begun) * 1000)
    return time.perf_counter() - started, latencies


async def run(kafka: KafkaSettings, work: Path, clients: int, per_client: int, files: int,
              per_file: int, rounds: int) -> list[Side]:  # fmt: skip
    from ingest.adapters.fhir_gateway import FhirGateway
    from ingest.settings import FhirGatewaySettings

    ca = tls.ensure_ca(work / "ca")
    server = tls.issue_server(ca, work / "server", "fhir", ["127.0.0.1"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(server.cert, server.key)
    client_context = ssl.create_default_context(cafile=str(ca.cert))
    token = secrets.token_urlsafe(32)
    (work / "token").write_text(token)
    topics = Topics("bench.")
    await ensure_topics(kafka, topics.pipeline_specs([HOSPITAL], []))
    gateway = FhirGateway(
        FhirGatewaySettings.model_validate({
            "kafka": kafka, "topic_prefix": "bench.", "fhir_hospital": HOSPITAL, "fhir_port": 0,
            "fhir_certfile": server.cert, "fhir_keyfile": server.key,
            "fhir_token_file": work / "token",
        }),
        CollectorRegistry(),
    )  # fmt: skip
    stop = asyncio.Event()
    serving = asyncio.create_task(gateway.run(stop))
    while not gateway.ready:  # noqa: ASYNC110 - the gateway has no ready event
        await asyncio.sleep(0.05)
    runner, relay_producer = await relay_app(kafka, topics.feed(HOSPITAL))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    bases = {"relay": f"https://127.0.0.1:{runner.addresses[0][1]}/fhir",
             "intake": f"https://127.0.0.1:{gateway.port}/fhir"}  # fmt: skip
    sides: list[Side] = []
    offset = 0
    try:
        for base in bases.values():  # warm-up
            await drive_single(base, client_context, token, clients, 20, offset)
            offset += clients * 20
        for _ in range(rounds):
            for name, base in bases.items():
                seconds, latencies = await drive_single(base, client_context, token, clients,
                                                        per_client, offset)  # fmt: skip
                offset += clients * per_client
                sides.append(Side(name, "single", len(latencies), seconds,
                                  percentile(latencies, 0.5), percentile(latencies, 0.99)))  # fmt: skip
                seconds, latencies = await drive_ndjson(base, client_context, token, files,
                                                        per_file, offset)  # fmt: skip
                offset += files * per_file
                sides.append(Side(name, "ndjson", files * per_file, seconds,
                                  percentile(latencies, 0.5), percentile(latencies, 0.99)))  # fmt: skip
    finally:
        await runner.cleanup()
        await relay_producer.stop()  # type: ignore[attr-defined]
        stop.set()
        await serving
    return sides


def main(
    clients: Annotated[int, typer.Option(help="Concurrent clients POSTing single resources")] = 8,
    per_client: Annotated[int, typer.Option(help="Resources per client per round")] = 250,
    files: Annotated[int, typer.Option(help="NDJSON files per round")] = 4,
    per_file: Annotated[int, typer.Option(help="Resources per NDJSON file")] = 5000,
    rounds: Annotated[int, typer.Option(help="Rounds per side, alternating")] = 2,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
) -> None:
    """Measure `ingest fhir` and a bare relay: resources/s single and NDJSON, answer p50/p99."""
    broker.ensure_jars()
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as tmp:
        run_dir = Path(tmp) / "kafka"
        started = broker.start_broker(run_dir, authentication=True)  # SCRAM over TLS
        try:
            kafka = broker.admin_settings(run_dir, started.bootstrap)
            sides = asyncio.run(run(kafka, Path(tmp), clients, per_client, files, per_file, rounds))
        finally:
            broker.stop_broker(run_dir)
    typer.echo(f"{'side':7} {'mode':7} {'resources':>9} {'res/s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    for s in sides:
        typer.echo(
            f"{s.name:7} {s.mode:7} {s.resources:9d} {s.per_s:8.0f} {s.p50_ms:9.2f} {s.p99_ms:9.2f}"
        )
    ratios = {}
    for mode in ("single", "ndjson"):
        relay = sorted(s.per_s for s in sides if s.name == "relay" and s.mode == mode)
        mine = sorted(s.per_s for s in sides if s.name == "intake" and s.mode == mode)
        ratios[mode] = mine[len(mine) // 2] / relay[len(relay) // 2]
        typer.echo(f"intake / relay, {mode} (median rates): {ratios[mode]:.2f}")
    if json_out is not None:
        json_out.write_text(json.dumps({"sides": [asdict(s) | {"per_s": s.per_s} for s in sides],
                                        "ratios": ratios}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    typer.run(main)
