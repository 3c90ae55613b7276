"""Benchmark (D46): a dataset approved mid-stream, from the signed approval to its whole history.

    python -m biostream_harness.bench.policy_history [--records 100000] [--persons 10000]
                                                     [--bootstrap HOST:PORT]

Puts link decisions and ``--records`` structured clinical records on the broker, runs the real
pseudonymizer service in this process (no dataset yet: topic-only, with a board key) until it has
handled them all, then publishes a signed ``ReleasePolicyVersion`` for ``cohort-late`` and
measures, on the same clock:

* approval -> first curated record of the dataset (the policy read, admitted, the dataset
  started, the replay reader assigned and its first transaction committed);
* approval -> the whole history on ``curated.cohort-late`` (every record, read back
  read_committed by a counting consumer in this process), as records per second of wall time
  and per CPU-second of this process (per core: the engine is one thread; the counting consumer
  is included, the broker's CPU is not);
* withdrawal -> the ``DATASET_WITHDRAWN`` notice on the dataset's notice topic.

Starts its own broker (SCRAM over TLS, about 10 s) unless ``--bootstrap`` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from biostream.codec import AvroCodec
from biostream.contracts import CLINICAL_RECORD, DATASET_NOTICE, LINK_DECISION
from biostream.kafka import ensure_topics, reader, topic_partitions
from biostream.policy_topic import publish
from biostream.release_policies import policy_version, public_key_hex, sign, withdrawal_of
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pseudonymizer.bootstrap import build as build_pseudonymizer
from pseudonymizer.settings import PseudonymizerSettings
from pydantic import SecretStr

from biostream_harness.bench.measure import Clock
from biostream_harness.bench.pseudonymizer import POLICY, clinical_records, decisions, produce


async def first_and_all(
    kafka: KafkaSettings, topic: str, expected: int, started: float
) -> tuple[float, float]:
    """Seconds from ``started`` (``time.perf_counter``) to the first and the last record."""
    consumer = reader(kafka, "bench-history-counter")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, first = 0, None
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            seen += sum(len(r) for r in batch.values())
            if seen and first is None:
                first = time.perf_counter() - started
        assert first is not None
        return first, time.perf_counter() - started
    finally:
        await consumer.stop()


async def until_notice(kafka: KafkaSettings, topic: str, started: float) -> float:
    codec = AvroCodec(SchemaRegistry())
    consumer = reader(kafka, "bench-history-notices")
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    if codec.decode(record.value, DATASET_NOTICE)["kind"] == "DATASET_WITHDRAWN":
                        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def put_history(
    kafka: KafkaSettings, topics: Topics, codec: AvroCodec, records: int, persons: int
) -> None:
    """Link decisions of ``persons`` and ``records`` clinical records on the broker."""
    await ensure_topics(kafka, topics.pipeline_specs([], ["cohort-late"]))
    await produce(
        kafka,
        topics.link_decisions,
        [(d["patient_ref"].encode(), codec.encode(LINK_DECISION, d)) for d in decisions(persons)],
    )
    # In chunks, so that a million records never sit in memory at once.
    chunk = 50_000
    for start in range(0, records, chunk):
        batch = clinical_records(min(chunk, records - start), persons)
        for n, record in enumerate(batch, start):
            record["record_id"] = f"{record['hospital']}/M{n}/1"
            record["message_id"] = f"M{n}"
        await produce(
            kafka,
            topics.clinical_records,
            [(r["patient_ref"].encode(), codec.encode(CLINICAL_RECORD, r)) for r in batch],
        )


@contextlib.asynccontextmanager
async def topic_only_pseudonymizer(
    kafka: KafkaSettings, prefix: str, board: Ed25519PublicKey, records: int, **options: Any
) -> AsyncIterator[None]:
    """The real pseudonymizer in this process with no dataset (an empty policy directory, one
    trusted board key, a root key), once it has handled all ``records`` live."""
    with tempfile.TemporaryDirectory() as empty:
        settings = PseudonymizerSettings.model_validate(
            {
                "kafka": kafka, "topic_prefix": prefix, "policy_dir": Path(empty),
                "pseudonym_root_key": SecretStr(secrets.token_hex(32)),
                "board_keys": {"k1": public_key_hex(board)},
                "batch_max_records": 2000,
                "dead_letter_key": SecretStr(secrets.token_hex(32)), **options,
            }
        )  # fmt: skip
        service = build_pseudonymizer(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(service.processor.run(stop))
        try:
            state = service.processor.state
            while sum(int(state.get(f"cpos:{p}") or b"0") for p in range(3)) < records:
                if task.done():
                    task.result()
                await asyncio.sleep(0.2)
            yield
        finally:
            stop.set()
            await task


async def bench(kafka: KafkaSettings, records: int, persons: int) -> dict[str, float]:
    codec = AvroCodec(SchemaRegistry())
    prefix = f"bench{secrets.token_hex(3)}."
    topics = Topics(prefix)
    await put_history(kafka, topics, codec, records, persons)
    board = Ed25519PrivateKey.generate()
    async with topic_only_pseudonymizer(kafka, prefix, board.public_key(), records):
        document = json.loads(POLICY.read_text())
        document.update(
            dataset="cohort-late", pseudonym_domain="cohort-late",
            target_topic="curated.cohort-late", approval_ref="DRB-BENCH-1",
        )  # fmt: skip
        now_ms = int(time.time() * 1000)
        approval = sign(policy_version(
            document, version=1, application_id="APP-BENCH", principal="User:project-late",
            valid_from_ms=now_ms - 1000, valid_until_ms=now_ms + 86_400_000,
            issued_at_ms=now_ms,
        ), board)  # fmt: skip
        with Clock() as clock:
            started = time.perf_counter()
            await publish(kafka, topics, codec, approval)
            first_s, whole_s = await first_and_all(
                kafka, topics.curated("cohort-late"), records, started
            )
        withdrawn = sign(withdrawal_of(approval, "REVOKED", int(time.time() * 1000)), board)
        started = time.perf_counter()
        await publish(kafka, topics, codec, withdrawn)
        stopped_s = await until_notice(kafka, topics.notices("cohort-late"), started)
    return {
        "records": records,
        "first_record_s": first_s,
        "whole_history_s": whole_s,
        "records_per_s_wall": records / whole_s,
        "records_per_cpu_s": records / clock.cpu_s,
        "withdrawal_notice_s": stopped_s,
    }


async def with_broker(
    args: argparse.Namespace,
    run: Callable[[KafkaSettings, int, int], Awaitable[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    from biostream_dev import broker

    run = run or bench
    if args.bootstrap is not None:  # a development broker of your own, without authentication
        kafka = KafkaSettings(
            bootstrap_servers=args.bootstrap, security_protocol="PLAINTEXT", allow_plaintext=True
        )
        return await run(kafka, args.records, args.persons)
    with tempfile.TemporaryDirectory() as tmp:
        print("starting a Kafka broker (SCRAM over TLS) ...", flush=True)
        started = broker.start_broker(Path(tmp) / "kafka", authentication=True)
        try:
            kafka = broker.admin_settings(Path(tmp) / "kafka", started.bootstrap)
            return await run(kafka, args.records, args.persons)
        finally:
            broker.stop_broker(Path(tmp) / "kafka")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    figures = asyncio.run(with_broker(args))
    print(
        f"{figures['records']:,.0f} retained clinical records: approval -> first curated record "
        f"{figures['first_record_s']:.2f} s, -> whole history {figures['whole_history_s']:.1f} s "
        f"({figures['records_per_s_wall']:,.0f} rec/s wall, "
        f"{figures['records_per_cpu_s']:,.0f} rec/s per CPU-second of this process); "
        f"withdrawal -> DATASET_WITHDRAWN notice {figures['withdrawal_notice_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
