"""D48: ``pseudonymizer risk``: answers disclosure-risk requests from the retained data.

A process apart from ``pseudonymizer run`` (same principal, its own consumer group
``pseudonymizer-risk``), so a report that reads a million records never holds up the live
stream. For each request on ``access.risk-requests``: ``pseudonymizer.risk_requested`` is
audited (acknowledged by the broker) before anything is read; the retained data is read to its
end offsets at that moment (the service's state changelog for the link decisions' facts and the
consent, ``clinical.records`` from offset 0, kept forever, D21); the report goes to
``access.risk-reports`` with ``pseudonymizer.risk_reported`` (its outcome); then the request's
offset is committed. A crash in between answers the request again: the access service keeps the
first report of a request id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from biostream import kafka as kafka_clients
from biostream.codec import AvroCodec
from biostream.contracts import CLINICAL_RECORD, RISK_REPORT, RISK_REQUEST, RiskReport, RiskRequest
from biostream.envelopes import Envelopes
from biostream.logs import get_logger
from biostream.restore import ReadStalled, read_from_start
from biostream.settings import KafkaSettings
from biostream.topics import Topics

from pseudonymizer.domain.risk import RetainedRecord
from pseudonymizer.risk import Retained, answer, failed
from pseudonymizer.state import DECISION_PREFIX, decode_facts

_DECISION = DECISION_PREFIX.encode()
_WITHDRAWN, _GRANTED = b"wd:", b"cg:"
log = get_logger("pseudonymizer.risk")


async def read_retained(
    kafka: KafkaSettings, topics: Topics, codec: AvroCodec, limit_s: float
) -> Retained:
    """D48: the retained data a report is computed over, read to the end offsets at the start, or
    ``ReadStalled`` (D26): a report over part of the data would understate the risk."""
    import json

    latest: dict[bytes, bytes | None] = {}
    async for batch in read_from_start(
        kafka, "pseudonymizer-risk-state", [topics.state("pseudonymizer")], limit_s,
        max_records=10_000,
    ):  # fmt: skip
        for records in batch.values():
            for record in records:
                key = record.key
                if key is not None and (
                    key.startswith(_DECISION) or key.startswith(_WITHDRAWN) or key[:3] == _GRANTED
                ):
                    latest[key] = record.value
    retained = Retained()
    for key, value in latest.items():
        if value is None:
            continue
        name = key.decode()
        if key.startswith(_DECISION):
            retained.facts[name.removeprefix(DECISION_PREFIX)] = decode_facts(value)
        elif key.startswith(_WITHDRAWN):
            retained.withdrawn[name[3:]] = json.loads(value)
        else:
            retained.granted[name[3:]] = json.loads(value)
    async for batch in read_from_start(
        kafka, "pseudonymizer-risk-records", [topics.clinical_records], limit_s,
        max_records=10_000,
    ):  # fmt: skip
        for records in batch.values():
            for record in records:
                if record.value is None:
                    continue
                clinical = codec.decode(record.value, CLINICAL_RECORD)
                retained.records.append(
                    RetainedRecord(
                        clinical["patient_ref"],
                        clinical["resource_type"],
                        clinical["event_date"],
                        tuple(clinical.get("previous_patient_refs") or ()),
                    )
                )
    return retained


class RiskReports:
    """D48: the loop: one request at a time, each audited, answered and committed."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Topics,
        principal: str,
        codec: AvroCodec,
        limit_s: float,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kafka, self.topics, self.codec, self.limit_s = kafka, topics, codec, limit_s
        self.envelopes = Envelopes("pseudonymizer", principal, codec, topics)
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        consumer = kafka_clients.group_consumer(
            self.kafka, f"{self.topics.prefix}pseudonymizer-risk", "pseudonymizer-risk", 1
        )
        producer = kafka_clients.plain_producer(self.kafka, "pseudonymizer-risk")
        consumer.subscribe([self.topics.risk_requests])
        await consumer.start()
        await producer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=1)
                for records in batches.values():
                    for record in records:
                        await self.handle(producer, record.value)
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()

    async def handle(self, producer: AIOKafkaProducer, raw: bytes | None) -> None:
        try:
            request: RiskRequest = self.codec.decode(raw, RISK_REQUEST)  # type: ignore[assignment]
        except Exception as error:  # an unreadable request has no id to answer under
            log.warning("risk request unreadable", error_type=type(error).__name__)
            return
        ref = request["request_id"]
        asked = self.envelopes.audit(
            "pseudonymizer.risk_requested", [f"risk:{ref}"], [], self.clock(),
            outcome="requested", purpose=request["application_id"],
        )  # fmt: skip
        await producer.send_and_wait(asked.topic, asked.value, key=asked.key)
        started = time.monotonic()
        report = await self.compute(request)
        seconds = time.monotonic() - started
        value = self.codec.encode(RISK_REPORT, report)
        await producer.send_and_wait(
            self.topics.risk_reports, value, key=request["application_id"].encode()
        )
        done = self.envelopes.audit(
            "pseudonymizer.risk_reported", [f"risk:{ref}"], [f"risk-report:{ref}"], self.clock(),
            outcome=report["outcome"].lower(), purpose=request["application_id"],
            reason_code=None if report["outcome"] == "COMPUTED" else report["outcome"],
        )  # fmt: skip
        await producer.send_and_wait(done.topic, done.value, key=done.key)
        log.info(
            "risk report sent", outcome=report["outcome"], records=report["records_read"],
            elapsed_s=round(seconds, 3),
        )  # fmt: skip

    async def compute(self, request: RiskRequest) -> RiskReport:
        retained: Retained | None = None
        try:
            retained = await read_retained(self.kafka, self.topics, self.codec, self.limit_s)
        except ReadStalled as stall:
            return failed(request, "READ_STALLED", str(stall)[:300], self.clock())
        except Exception as error:
            return failed(request, "INTERNAL_ERROR", type(error).__name__, self.clock())
        data = retained
        try:
            # The figures are CPU work: off the event loop, so the consumer stays in its group.
            return await asyncio.to_thread(answer, request, lambda: data, self.clock())
        except Exception as error:
            return failed(request, "INTERNAL_ERROR", type(error).__name__, self.clock())
