"""D37: the MLLP listener. A hospital's interface engine connects over TCP (TLS), sends HL7 v2
messages in MLLP frames and waits for each ACK; the listener writes every message to the
hospital's feed topic and answers AA only once the broker has it (acks=all, idempotent
producer). Ingest then reads the feed topic as it reads any other.

One listener per hospital: it runs as that hospital's Kafka principal, which may write only that
hospital's feed (the ACL matrix), so a listener cannot put one hospital's messages on another's
feed. Per connection, messages are handled one after the other and the next bytes are read only
once the ACKs of the ones before are written: a slow broker slows the sender (TCP back-pressure),
it never makes the listener hold more than one read of messages in memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from biostream.kafka import plain_producer
from biostream.logs import get_logger
from biostream.observability import HealthServer
from biostream.topics import Topics
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.adapters.tls_server import certificate_common_name, server_tls
from ingest.domain.messages import FORMAT_CONTENT_TYPE
from ingest.domain.mllp import (
    APPLICATION_INTERNAL_ERROR,
    UNSUPPORTED_MESSAGE,
    AckCode,
    Frame,
    FrameReader,
    FramingError,
    Header,
    HeaderRefused,
    Outcome,
    RecentControlIds,
    acknowledgement,
    frame,
    read_header,
)
from ingest.settings import MllpSettings

READ_BYTES = 64 * 1024


class MllpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "biostream_mllp_messages",
            "HL7 v2 messages received over MLLP, by how they were answered "
            "(accepted = AA after the broker stored it; duplicate = AA, already stored; "
            "refused = AR; failed = AE, the sender should resend)",
            ("hospital", "outcome"),
            registry=registry,
        )
        self.framing_errors = Counter(
            "biostream_mllp_framing_errors",
            "Bytes outside an MLLP frame, overlong or unfinished frames (answered AR)",
            ("hospital",),
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "biostream_mllp_ack_seconds",
            "From the read that completed a message to its ACK written (includes the broker's "
            "acks=all, and the messages before it in the same read)",
            ("hospital",),
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.connections = Gauge(
            "biostream_mllp_connections", "Open MLLP connections", ("hospital",), registry=registry
        )


class MllpListener:
    """A Runnable: the listener and its health server until ``stop``."""

    def __init__(
        self,
        settings: MllpSettings,
        registry: CollectorRegistry,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.hospital = settings.mllp_hospital
        self.topic = Topics(settings.topic_prefix).feed(self.hospital)
        self.registry = registry
        self.metrics = MllpMetrics(registry)
        self._producer_factory = producer_factory or (
            lambda: plain_producer(settings.kafka, f"{settings.topic_prefix}mllp-{self.hospital}")
        )
        self._clock = clock
        self._recent = RecentControlIds(settings.mllp_duplicate_window)
        self._producer: AIOKafkaProducer | None = None
        self._tls = server_tls(
            settings.mllp_certfile, settings.mllp_keyfile, settings.mllp_client_cafile,
            settings.mllp_allow_plaintext, "BIOSTREAM_MLLP",
        )  # fmt: skip
        self._connections: set[asyncio.StreamWriter] = set()
        self._log = get_logger("ingest.mllp")
        self.port: int | None = None
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        health = HealthServer(
            self.registry,
            lambda: self.ready,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
        )
        health.start()
        producer = self._producer_factory()
        try:
            await producer.start()
            self._producer = producer
            server = await asyncio.start_server(
                self._serve, self.settings.mllp_host, self.settings.mllp_port, ssl=self._tls
            )
            self.port = int(server.sockets[0].getsockname()[1])
            self.ready = True
            self._log.info(
                "mllp listening", hospital=self.hospital, port=self.port,
                tls=self._tls is not None,
            )  # fmt: skip
            try:
                await stop.wait()
            finally:
                self.ready = False
                server.close()
                for writer in list(self._connections):
                    writer.close()
                await server.wait_closed()
        finally:
            await producer.stop()
            health.stop()
            self._log.info("mllp stopped", hospital=self.hospital)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._client_allowed(writer):
            writer.close()
            return
        self._connections.add(writer)
        self.metrics.connections.labels(self.hospital).inc()
        frames = FrameReader(self.settings.mllp_max_message_bytes)
        try:
            while True:
                data = await reader.read(READ_BYTES)
                if not data:
                    for error in frames.at_end():
                        self.metrics.framing_errors.labels(self.hospital).inc()
                        self._log.info("mllp framing error", hospital=self.hospital,
                                       reason_code=error.code, count=error.length)  # fmt: skip
                    break
                received = time.monotonic()
                for event in frames.feed(data):
                    writer.write(frame(await self._answer(event)))
                    await writer.drain()
                    self.metrics.ack_seconds.labels(self.hospital).observe(
                        time.monotonic() - received
                    )
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            self._log.info("mllp connection lost", hospital=self.hospital,
                           error_type=type(error).__name__)  # fmt: skip
        finally:
            self._connections.discard(writer)
            self.metrics.connections.labels(self.hospital).dec()
            writer.close()

    def _client_allowed(self, writer: asyncio.StreamWriter) -> bool:
        """D37: with client certificates required, the certificate's common name must be the
        listener's hospital code (the platform's CA issues one per hospital)."""
        if self.settings.mllp_client_cafile is None:
            return True
        name = certificate_common_name(writer.transport.get_extra_info("ssl_object"))
        if name == self.hospital:
            return True
        self._log.warning("mllp client refused: certificate names another hospital",
                          hospital=self.hospital)  # fmt: skip
        return False

    async def _answer(self, event: Frame | FramingError) -> bytes:
        now = self._clock()
        ack_id = uuid.uuid4().hex[:20]
        if isinstance(event, FramingError):
            self.metrics.framing_errors.labels(self.hospital).inc()
            self._log.info("mllp framing error", hospital=self.hospital, reason_code=event.code,
                           count=event.length)  # fmt: skip
            return acknowledgement(None, "AR", ack_id, now, event.reason, UNSUPPORTED_MESSAGE)
        try:
            header = read_header(event.payload)
        except HeaderRefused as refused:
            # Kept anyway: ingest dead-letters it with its reason and the original bytes, so
            # the platform holds a record of what the hospital sent (D7, D12).
            if not await self._store(event.payload, None):
                return self._reply(None, "AE", ack_id, now,
                                   "the platform could not store the message; send it again",
                                   APPLICATION_INTERNAL_ERROR, "failed")  # fmt: skip
            return self._reply(None, "AR", ack_id, now, str(refused), refused.error_code,
                               "refused")  # fmt: skip
        if header.control_id in self._recent:
            return self._reply(header, "AA", ack_id, now, "duplicate of a message already stored",
                               None, "duplicate")  # fmt: skip
        if not await self._store(event.payload, header):
            return self._reply(header, "AE", ack_id, now,
                               "the platform could not store the message; send it again",
                               APPLICATION_INTERNAL_ERROR, "failed")  # fmt: skip
        self._recent.remember(header.control_id)
        return self._reply(header, "AA", ack_id, now, "", None, "accepted")

    def _reply(
        self,
        header: Header | None,
        code: AckCode,
        ack_id: str,
        now: dt.datetime,
        text: str,
        error_code: str | None,
        outcome: Outcome,
    ) -> bytes:
        self.metrics.messages.labels(self.hospital, outcome).inc()
        return acknowledgement(header, code, ack_id, now, text, error_code)

    async def _store(self, payload: bytes, header: Header | None) -> bool:
        """The message on the feed topic, acknowledged by the broker (acks=all), or False."""
        assert self._producer is not None
        key = header.control_id.encode() if header else None
        headers = [("content-type", FORMAT_CONTENT_TYPE["hl7"].encode()),
                   ("received-via", b"mllp")]  # fmt: skip
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(self.topic, payload, key=key, headers=headers),
                timeout=self.settings.mllp_store_timeout_s,
            )
        except (KafkaError, TimeoutError) as error:
            self._log.warning("mllp message not stored", hospital=self.hospital,
                              error_type=type(error).__name__)  # fmt: skip
            return False
        return True
