"""Benchmark (D49): the chair's decision in the access service -> the dataset on the stream.

    python -m biostream_harness.bench.approval_to_stream [--records 100000] [--persons 10000]
                                                         [--bootstrap HOST:PORT]

As ``policy_history`` (the same retained records, the same topic-only pseudonymizer in this
process), but the approval is a real application in the access service (in this process, as its
own principal ``svc-access`` on the SCRAM broker, with a board signing key generated here):
created, submitted, reviewed and voted by two members, then, on one clock:

* the chair's ``decide approve`` command (the desk: decided, signed, the events and the policy
  version committed in one transaction) -> the first curated record of the dataset, and -> the
  whole history (read back read_committed by a counting consumer in this process);
* the chair's ``revoke`` -> the ``DATASET_WITHDRAWN`` notice and, on the SCRAM broker (the
  pseudonymizer given the ACL-admin connection, the project a real principal), -> the broker
  refusing the project's fetch.

Starts its own broker (SCRAM over TLS, about 10 s) unless ``--bootstrap`` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import tempfile
import time
from functools import partial
from pathlib import Path

from access import testing
from access.domain.commands import Decide, Review, Revoke, Submit, Vote
from access.handlers import AccessHandler, Decided, read_create
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError
from biostream.codec import AvroCodec
from biostream.kafka import client_options
from biostream.release_policies import write_signing_key
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from biostream_harness.access_board import access_board, running
from biostream_harness.bench.measure import Clock
from biostream_harness.bench.policy_history import (
    first_and_all,
    put_history,
    topic_only_pseudonymizer,
    until_notice,
    with_broker,
)

DATASET = "cohort-late"
REQUESTED = {
    "dataset": DATASET, "record_types": ["Condition", "Observation", "MedicationRequest"],
    "fields": ["hospital", "code_system", "code", "event_date", "value_number", "value_unit"],
    "generalisation": {"birth": "age_band_5", "address": "province"},
    "min_k": 1, "consent_required": False, "duration_months": 12,
}  # fmt: skip


async def refused(kafka: KafkaSettings, topic: str) -> bool:
    """Whether the broker refuses ``kafka``'s principal a fetch of ``topic``."""
    consumer = AIOKafkaConsumer(
        **client_options(kafka), request_timeout_ms=5000, enable_auto_commit=False
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return True
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        try:
            await consumer.getmany(timeout_ms=500)
        except TopicAuthorizationFailedError:
            return True
        return False
    finally:
        await consumer.stop()


async def bench(kafka: KafkaSettings, records: int, persons: int) -> dict[str, float]:
    codec = AvroCodec(SchemaRegistry())
    prefix = f"bench{secrets.token_hex(3)}."
    topics = Topics(prefix)
    await put_history(kafka, topics, codec, records, persons)
    sasl = kafka.security_protocol.startswith("SASL")
    project_kafka = None
    if sasl:  # the project: a real principal with no ACL of its own
        project = access.Principal(f"{prefix}project-{DATASET}", ())
        credentials = await asyncio.to_thread(access.apply, kafka, {"project": project})
        await access.wait_until_usable(credentials)
        project_kafka = credentials.settings("project")
    board_key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "board.k1.key"
        write_signing_key(key_file, board_key)
        accounts = (testing.APPLICANT, "chair", *testing.REVIEWERS)
        board = await access_board(
            kafka, prefix, testing.BOARD_YAML.replace("RULE", "majority"), accounts, Path(tmp),
            signing_key_file=key_file,
        )  # fmt: skip
        options = {"acl_admin": kafka} if sasl else {}
        async with (
            topic_only_pseudonymizer(kafka, prefix, board_key.public_key(), records, **options),
            running(board) as service,
        ):
            app, now = "APP-BENCH-1", dt.datetime.now(dt.UTC)
            form = testing.form(requested=REQUESTED)

            def create(h: AccessHandler) -> Decided:
                body = {"kind": "dataset", "form": form.model_dump(mode="json")}
                command = read_create(h, app, testing.APPLICANT, body)
                return h.decide_all(app, [command, Submit(testing.APPLICANT)], now)

            await service.desk.run(create)
            for member in ("rev-a", "rev-b"):
                for command in (Review(member, testing.CHECKLIST_YES), Vote(member, "approve")):
                    await service.desk.run(
                        partial(AccessHandler.decide, application_id=app, command=command, now=now)
                    )
            decide = partial(
                AccessHandler.decide, application_id=app, command=Decide("chair", "approve"),
                now=dt.datetime.now(dt.UTC),
            )  # fmt: skip
            with Clock() as clock:
                started = time.perf_counter()
                decided = await service.desk.run(decide)
                assert decided.refusal is None
                first_s, whole_s = await first_and_all(
                    kafka, topics.curated(DATASET), records, started
                )
            revoke = partial(
                AccessHandler.decide, application_id=app,
                command=Revoke("chair", "benchmark"), now=dt.datetime.now(dt.UTC),
            )  # fmt: skip
            started = time.perf_counter()
            await service.desk.run(revoke)
            notice_s = await until_notice(kafka, topics.notices(DATASET), started)
            refused_s = float("nan")
            if project_kafka is not None:
                for _ in range(600):  # each attempt is one fetch of up to 0.5 s
                    if await refused(project_kafka, topics.curated(DATASET)):
                        break
                refused_s = time.perf_counter() - started
    return {
        "records": records,
        "first_record_s": first_s,
        "whole_history_s": whole_s,
        "records_per_s_wall": records / whole_s,
        "records_per_cpu_s": records / clock.cpu_s,
        "withdrawal_notice_s": notice_s,
        "broker_refusal_s": refused_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    figures = asyncio.run(with_broker(args, bench))
    print(
        f"{figures['records']:,.0f} retained clinical records: the chair's decision -> first "
        f"curated record {figures['first_record_s']:.2f} s, -> whole history "
        f"{figures['whole_history_s']:.1f} s ({figures['records_per_s_wall']:,.0f} rec/s wall, "
        f"{figures['records_per_cpu_s']:,.0f} rec/s per CPU-second of this process, the access "
        f"service included); revocation -> DATASET_WITHDRAWN notice "
        f"{figures['withdrawal_notice_s']:.2f} s, -> broker refuses the project "
        f"{figures['broker_refusal_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
