"""D38: the FHIR REST intake of one hospital. Its EHR or interface engine POSTs resources, Bundles
(transaction, batch, collection) and Bulk Data NDJSON files over HTTPS; each usable resource is
written to the hospital's feed topic (acks=all, idempotent producer) before the answer, which is
an ``OperationOutcome``. As the MLLP listener (D37), one intake per hospital, running as that
hospital's Kafka principal; the caller is authenticated by a bearer token or a client
certificate naming the hospital.

Routes (FHIR R4 conventions, base ``/fhir``):
  POST /fhir/{type}    one resource of that type             202 | 400 | 422
  POST /fhir           a Bundle                              202 | 400 | 422
  POST /fhir/$import   an NDJSON file (application/fhir+ndjson): one resource per line,
                       each stored as a feed message         200 | 422 | 400
  GET  /fhir/metadata  a CapabilityStatement (no authentication, as FHIR servers do)
A broker that does not take the data in time: 503 with ``Retry-After`` (nothing was accepted).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from biostream.kafka import plain_producer
from biostream.logs import get_logger
from biostream.observability import HealthServer
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Histogram

from ingest.adapters.tls_server import certificate_common_name, server_tls
from ingest.domain.fhir_rest import (
    Intake,
    Issue,
    bundle_response,
    import_outcome,
    ndjson_lines,
    operation_outcome,
    resource_intake,
)
from ingest.domain.messages import FORMAT_CONTENT_TYPE
from ingest.settings import FhirGatewaySettings

FHIR_JSON = "application/fhir+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.resources = Counter(
            "biostream_fhir_gateway_resources",
            "Resources received over FHIR REST, by route and answer "
            "(accepted = stored; refused = stored for ingest to dead-letter, or not stored when "
            "the request was wrong; failed = the broker did not take it, 503)",
            ("hospital", "route", "outcome"),
            registry=registry,
        )
        self.seconds = Histogram(
            "biostream_fhir_gateway_request_seconds",
            "From a request's body read to its answer (includes the broker's acks=all)",
            ("hospital", "route"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
            registry=registry,
        )


def fhir_response(status: int, issues: list[Issue], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(operation_outcome(issues), ensure_ascii=False).encode(),
        content_type=FHIR_JSON,
        headers=headers,
    )


class FhirGateway:
    """A Runnable: the HTTPS intake and its health server until ``stop``."""

    def __init__(
        self,
        settings: FhirGatewaySettings,
        registry: CollectorRegistry,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.hospital = settings.fhir_hospital
        self.topic = Topics(settings.topic_prefix).feed(self.hospital)
        self.registry = registry
        self.metrics = GatewayMetrics(registry)
        self._producer_factory = producer_factory or (
            lambda: plain_producer(settings.kafka, f"{settings.topic_prefix}fhir-{self.hospital}")
        )
        self._clock = clock
        self._tls = server_tls(
            settings.fhir_certfile, settings.fhir_keyfile, settings.fhir_client_cafile,
            settings.fhir_allow_plaintext, "BIOSTREAM_FHIR",
        )  # fmt: skip
        self._token_digest = self._read_token()
        self._producer: AIOKafkaProducer | None = None
        self._log = get_logger("ingest.fhir_gateway")
        self.port: int | None = None
        self.ready = False

    def _read_token(self) -> bytes | None:
        """D38: the caller proves to be the hospital by a client certificate naming it, or by
        the bearer token in the token file (compared as SHA-256 digests in constant time); an
        intake with neither refuses to start."""
        if self.settings.fhir_token_file is None:
            if self.settings.fhir_client_cafile is None:
                raise ValueError(
                    "the FHIR intake needs a way to authenticate the hospital: set "
                    "BIOSTREAM_FHIR_TOKEN_FILE or BIOSTREAM_FHIR_CLIENT_CAFILE"
                )
            return None
        token = self.settings.fhir_token_file.read_bytes().strip()
        if len(token) < 32:
            raise ValueError("the FHIR bearer token must be at least 32 characters")
        return hashlib.sha256(token).digest()

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.fhir_max_body_bytes, middlewares=[self._authenticate]
        )
        app.router.add_get("/fhir/metadata", self._metadata)
        app.router.add_post("/fhir/$import", self._import)
        app.router.add_post("/fhir", self._bundle)
        app.router.add_post("/fhir/{type}", self._resource)
        return app

    async def run(self, stop: asyncio.Event) -> None:
        health = HealthServer(
            self.registry, lambda: self.ready,
            host=self.settings.metrics_host, port=self.settings.metrics_port,
        )  # fmt: skip
        health.start()
        producer = self._producer_factory()
        runner = web.AppRunner(self.app(), access_log=None)
        try:
            await producer.start()
            self._producer = producer
            await runner.setup()
            site = web.TCPSite(
                runner, self.settings.fhir_host, self.settings.fhir_port, ssl_context=self._tls
            )
            await site.start()
            self.port = int(runner.addresses[0][1])
            self.ready = True
            self._log.info("fhir intake listening", hospital=self.hospital, port=self.port,
                           tls=self._tls is not None)  # fmt: skip
            await stop.wait()
        finally:
            self.ready = False
            await runner.cleanup()
            await producer.stop()
            health.stop()

    # ------------------------------------------------------------------------------ routes

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/fhir/metadata":
            return await handler(request)
        if self.settings.fhir_client_cafile is not None:
            name = certificate_common_name(request.transport.get_extra_info("ssl_object")
                                           if request.transport else None)  # fmt: skip
            if name != self.hospital:
                return fhir_response(403, [Issue("error", "forbidden",
                                                 "the client certificate names another hospital")])  # fmt: skip
        if self._token_digest is not None:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            given = hashlib.sha256(token.strip().encode()).digest()
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token_digest):
                return fhir_response(401, [Issue("error", "login", "a valid bearer token is required")],
                                     **{"WWW-Authenticate": 'Bearer realm="biostream"'})  # fmt: skip
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return fhir_response(413, [Issue("error", "too-long", "the request body is too large")])

    async def _metadata(self, _request: web.Request) -> web.Response:
        statement = {
            "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
            "date": self._clock().date().isoformat(), "fhirVersion": "4.0.1",
            "format": [FHIR_JSON, "application/fhir+ndjson"],
            "rest": [{"mode": "server", "operation": [{"name": "import",
                                                       "definition": "$import (NDJSON upload)"}]}],
        }  # fmt: skip
        return web.Response(body=json.dumps(statement).encode(), content_type=FHIR_JSON)

    async def _resource(self, request: web.Request) -> web.Response:
        return await self._single(request, "resource", request.match_info["type"])

    async def _bundle(self, request: web.Request) -> web.Response:
        return await self._single(request, "bundle", "Bundle")

    async def _single(self, request: web.Request, route: str, expected: str) -> web.Response:
        body = await request.read()
        started = time.monotonic()
        intake = resource_intake(body, self._clock().date(), expected)
        if intake.store and not await self._store([(body, intake)]):
            return self._unavailable(route, 1)
        self._count(route, intake)
        self.metrics.seconds.labels(self.hospital, route).observe(time.monotonic() - started)
        answer = bundle_response(body, intake) if route == "bundle" else None
        if answer is not None:
            return web.Response(body=json.dumps(answer).encode(), content_type=FHIR_JSON)
        return fhir_response(intake.status, [intake.issue])

    async def _import(self, request: web.Request) -> web.Response:
        body = await request.read()
        started = time.monotonic()
        today = self._clock().date()
        lines = list(ndjson_lines(body))
        intakes = [(n, resource_intake(line, today)) for n, line in lines]
        storable = [
            (line, intake) for (_n, line), (_m, intake) in zip(lines, intakes, strict=True)
            if intake.store
        ]  # fmt: skip
        if storable and not await self._store(storable):
            return self._unavailable("import", len(intakes))
        for _n, intake in intakes:
            self._count("import", intake)
        status, issues = import_outcome(intakes, len(storable))
        self.metrics.seconds.labels(self.hospital, "import").observe(time.monotonic() - started)
        return fhir_response(status, issues)

    # ------------------------------------------------------------------------------ output

    async def _store(self, items: list[tuple[bytes, Intake]]) -> bool:
        """Every item on the feed, acknowledged by the broker (acks=all), or False: sent
        together, so a file of many resources is one round of batches, not one per line."""
        assert self._producer is not None
        headers = [("content-type", FORMAT_CONTENT_TYPE["fhir"].encode()),
                   ("received-via", b"fhir-rest")]  # fmt: skip
        try:
            async with asyncio.timeout(self.settings.fhir_store_timeout_s):
                pending = [
                    await self._producer.send(self.topic, body, key=intake.key, headers=headers)
                    for body, intake in items
                ]
                await asyncio.gather(*pending)
        except (KafkaError, TimeoutError) as error:
            self._log.warning("fhir resources not stored", hospital=self.hospital,
                              error_type=type(error).__name__, count=len(items))  # fmt: skip
            return False
        return True

    def _unavailable(self, route: str, count: int) -> web.Response:
        self.metrics.resources.labels(self.hospital, route, "failed").inc(count)
        return fhir_response(
            503,
            [Issue("error", "transient", "the platform could not store the data; retry")],
            **{"Retry-After": "30"},
        )

    def _count(self, route: str, intake: Intake) -> None:
        outcome = "accepted" if intake.status < 400 else "refused"
        self.metrics.resources.labels(self.hospital, route, outcome).inc()
