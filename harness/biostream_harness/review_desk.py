"""A running review desk and linkage service on a test broker, with one steward account whose
password is generated here (never committed), and the grey-zone pair the tests resolve."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from biostream.codec import default_codec
from biostream.contracts import IDENTITY_RECORD
from biostream.kafka import ensure_topics
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream.web_auth import hash_password
from biostream_dev import access
from linkage.bootstrap import build as build_linkage
from linkage.settings import LinkageSettings
from pydantic import SecretStr
from review.adapters.service import ReviewService
from review.bootstrap import build as build_review
from review.settings import ReviewSettings

from biostream_harness.linkage_stream import RECEIVED, publish

CODEC = default_codec()
STEWARD = "steward-kim"


def identity(ref: str, n: int, hospital: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_id": f"{hospital}/M{n}/0", "patient_ref": ref, "hospital": hospital,
        "message_id": f"M{n}", "source_format": "FHIR", "received_at": RECEIVED,
        "family_name": "윤", "given_name": "하은", "name_latin": None,
        "birth_date": dt.date(1979, 5, 12), "sex": "F", "rrn": None, "local_patient_no": None,
        "phone": "01023456789", "address": "서울특별시 강남구 테헤란로 152",
        "postal_code": "06236", "province_code": "11", "quality_flags": [],
    }  # fmt: skip
    record.update(fields)
    return record


# Same name, birth date and sex; different phone and address, no registration number: linkage
# scores the second in its grey zone (a possible match of the first) and opens a review task.
GREY_PAIR = (
    identity("pr_yoon_a", 1, "H001"),
    identity(
        "pr_yoon_b",
        2,
        "H002",
        phone="01098761234",
        address="서울특별시 송파구 올림픽로 300",
        postal_code="05551",
    ),
)
# Values that must never appear outside the signed-in pages.
IDENTIFYING = ("하은", "01023456789", "01098761234", "테헤란로", "올림픽로", "1979-05-12")


@dataclass
class RunningDesk:
    kafka: KafkaSettings
    topics: Topics
    review: ReviewService
    password: str
    review_kafka: KafkaSettings  # the desk's own principal (svc-review) on a SASL broker

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.review.web_port}"

    async def publish_grey_pair(self) -> None:
        await publish(
            self.kafka,
            CODEC,
            self.topics.identity_records,
            IDENTITY_RECORD,
            list(GREY_PAIR),
            key=lambda r: str(r["patient_ref"]),
        )

    async def wait_for_task(self, timeout_s: float = 120) -> str:
        """The open task's id once the desk has it (and the identity records it shows)."""
        desk = self.review.handler.desk
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (desk.tasks and all(r["patient_ref"] in desk.identities for r in GREY_PAIR)):
            if loop.time() > deadline:
                raise TimeoutError("no review task reached the desk")
            await asyncio.sleep(0.1)
        [task] = desk.open_tasks()
        return task.task_id


@asynccontextmanager
async def running_desk(kafka: KafkaSettings, topic_prefix: str) -> AsyncIterator[RunningDesk]:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    linkage = build_linkage(
        LinkageSettings.model_validate(
            {
                "kafka": kafka,
                "topic_prefix": topic_prefix,
                "poll_timeout_ms": 100,
                "person_key": SecretStr(secrets.token_hex(32)),
                "dead_letter_key": SecretStr(secrets.token_hex(32)),
                # Opens sealed registration numbers (D13); the grey pair has none.
                "rrn_key": SecretStr(secrets.token_hex(32)),
            }
        )
    )
    # The desk runs as its own principal with exactly the ACLs deploy/acl-matrix.yaml gives it.
    review_kafka = kafka
    if kafka.security_protocol.startswith("SASL"):
        role = "svc-review"
        principals = access.render(access.load_matrix(), prefix=topic_prefix)
        credentials = await asyncio.to_thread(access.apply, kafka, {role: principals[role]})
        await access.wait_until_usable(credentials)
        review_kafka = credentials.settings(role)
    password = secrets.token_urlsafe(16)
    review = build_review(
        ReviewSettings.model_validate(
            {
                "kafka": review_kafka,
                "topic_prefix": topic_prefix,
                "web_port": 0,
                "metrics_port": 0,
                "users": SecretStr(f"{STEWARD}:{hash_password(password)}\n"),
                "session_key": SecretStr(secrets.token_hex(32)),
                "secure_cookie": False,
                "principal": f"User:{topic_prefix}svc-review",
            }
        )
    )
    stop = asyncio.Event()
    started = asyncio.Event()
    tasks = [
        asyncio.create_task(linkage.processor.run(stop)),
        asyncio.create_task(review.run(stop, started)),
    ]
    try:
        waiter = asyncio.create_task(started.wait())
        done, _ = await asyncio.wait(
            {waiter, *tasks}, timeout=60, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            for task in done:
                task.result()
            raise TimeoutError("review desk did not start")
        # Its pages answer 503 until it has caught up with its topics (D26).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not review.ready:
            if any(task.done() for task in tasks) or loop.time() > deadline:
                for task in tasks:
                    if task.done():
                        task.result()
                raise TimeoutError("review desk did not catch up")
            await asyncio.sleep(0.05)
        yield RunningDesk(kafka, topics, review, password, review_kafka)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
