"""D34 on the real broker: the audit service is restarted with a new signing key added while
events keep coming; it writes the signed hand-over first, signs with the new key from then on,
nothing is lost or doubled, and `audit verify` of the whole ledger passes from the first key."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from audit.bootstrap import build
from audit.domain.checkpoint import key_id_of, private_key_from_secret, public_key_pem
from audit.settings import AuditSettings
from biostream.codec import AvroCodec
from biostream.contracts import LEDGER_CHECKPOINT, LEDGER_ENTRY
from biostream.envelopes import Envelopes, audit_events_in
from biostream.kafka import ensure_topics, plain_producer, reader, topic_partitions
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_dev.access import kafka_environment
from pydantic import SecretStr

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry())


@asynccontextmanager
async def audit_service(kafka: KafkaSettings, prefix: str, keys_dir: Path) -> AsyncIterator[None]:
    settings = AuditSettings.model_validate(
        {
            "kafka": kafka, "topic_prefix": prefix, "poll_timeout_ms": 100,
            "dead_letter_key": SecretStr(secrets.token_hex(32)),
            "ledger_signing_keys_dir": keys_dir,
            "checkpoint_every_entries": 5, "checkpoint_every_seconds": 1.0,
        }
    )  # fmt: skip
    service = build(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.processor.run(stop))
    try:
        for _ in range(600):
            if task.done():
                task.result()
            if service.processor.ready:
                break
            await asyncio.sleep(0.1)
        yield
    finally:
        stop.set()
        await task


class Ledger:
    """The ledger and checkpoint topics, read from the start (read_committed)."""

    def __init__(self, kafka: KafkaSettings, topics: Topics) -> None:
        self.kafka, self.topics = kafka, topics
        self.entries: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self._consumer = reader(kafka, "test-rotation-ledger")

    async def start(self) -> None:
        await self._consumer.start()
        names = [self.topics.audit_ledger, self.topics.audit_checkpoints]
        partitions = await topic_partitions(self.kafka, names)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def until_covered(self, size: int, timeout_s: float = 90) -> None:
        """Until the ledger has ``size`` entries and a checkpoint covers them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (len(self.entries) >= size and any(c["size"] >= size for c in self.checkpoints)):
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.entries)} entries, wanted {size} covered")
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    if tp.topic == self.topics.audit_ledger:
                        self.entries.append(CODEC.decode(r.value, LEDGER_ENTRY))
                    else:
                        self.checkpoints.append(CODEC.decode(r.value, LEDGER_CHECKPOINT))

    async def stop(self) -> None:
        await self._consumer.stop()


def audit_cli(kafka: KafkaSettings, prefix: str, *args: str | Path, **extra: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOSTREAM_")}
    env.update(kafka_environment(kafka))
    env.update(BIOSTREAM_TOPIC_PREFIX=prefix, **extra)
    return subprocess.run(
        [sys.executable, "-m", "audit", *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def add_key(keys_dir: Path, version: str) -> str:
    seed = secrets.token_hex(32)
    path = keys_dir / f"ledger.{version}.key"
    path.write_text(seed + "\n")
    path.chmod(0o600)
    return seed


async def test_the_signing_key_rotates_mid_stream_and_the_whole_ledger_verifies(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    k1 = private_key_from_secret(add_key(keys_dir, "k1").encode())
    first_key = tmp_path / "ledger-k1.pub"  # what the programme published before the rotation
    first_key.write_text(public_key_pem(k1.public_key()))
    envelopes = Envelopes("ingest", f"User:{topic_prefix}svc-ingest", CODEC, topics)
    producer = plain_producer(kafka, "test-rotation-producer")
    await producer.start()
    ledger = Ledger(kafka, topics)
    await ledger.start()
    sent: list[str] = []

    async def publish(count: int) -> None:
        for _ in range(count):
            n = len(sent)
            event = envelopes.audit(
                "ingest.accepted", [f"feed.H001/0/{n}"], [f"H001/M{n}/0"], dt.datetime.now(dt.UTC)
            )
            assert event.key is not None and event.value is not None
            sent.append(audit_events_in(CODEC, event.value)[0]["event_id"])
            await producer.send_and_wait(event.topic, event.value, key=event.key)

    try:
        async with audit_service(kafka, topic_prefix, keys_dir):
            await publish(12)
            await ledger.until_covered(12)
        # Events keep arriving while the service is down and its new key is added.
        await publish(7)
        k2 = private_key_from_secret(add_key(keys_dir, "k2").encode())
        async with audit_service(kafka, topic_prefix, keys_dir):
            await publish(9)
            await ledger.until_covered(28)
    finally:
        await ledger.stop()
        await producer.stop()

    # Nothing lost, nothing doubled, in one unbroken sequence.
    assert [e["sequence"] for e in ledger.entries] == list(range(28))
    assert [e["event_id"] for e in ledger.entries] == sent
    # k1 signed until the hand-over, which k1 signed; k2 signed everything after it.
    k1_id, k2_id = (key_id_of(k.public_key()) for k in (k1, k2))
    handovers = [c for c in ledger.checkpoints if c["handover"] is not None]
    assert len(handovers) == 1
    [handover] = handovers
    assert handover["key_id"] == k1_id and handover["handover"]["new_key_id"] == k2_id
    assert handover["handover"]["new_key_version"] == "k2"
    before = [c for c in ledger.checkpoints if c["size"] < handover["size"]]
    after = [c for c in ledger.checkpoints if c["size"] > handover["size"]]
    assert before and after
    assert {c["key_id"] for c in before} == {k1_id} and {c["key_id"] for c in after} == {k2_id}
    assert handover["size"] == 12  # written first, before any event that arrived meanwhile

    # D35: the commands run as the ACL matrix's auditor principal.
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {"auditor": principals["auditor"]})
    await access.wait_until_usable(credentials)
    auditor = credentials.settings("auditor")
    verified = audit_cli(auditor, topic_prefix, "verify", "--public-key", first_key)
    assert verified.returncode == 0, verified.stderr
    assert "ledger intact: 28 entries" in verified.stdout
    assert f"signing key {k2_id} (k2) trusted through the hand-over signed by key {k1_id}" in (
        verified.stdout
    )
    # The new key alone is no anchor for the past.
    new_key = tmp_path / "ledger-k2.pub"
    new_key.write_text(public_key_pem(k2.public_key()))
    refused = audit_cli(auditor, topic_prefix, "verify", "--public-key", new_key)
    assert refused.returncode == 1 and "unknown key" in refused.stderr

    # The export derived from the keys directory publishes the first key; it verifies offline.
    exported = tmp_path / "ledger.jsonl"
    result = audit_cli(
        auditor, topic_prefix, "export", "--output", exported,
        BIOSTREAM_LEDGER_SIGNING_KEYS_DIR=str(keys_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ledger.jsonl.pub").read_text() == first_key.read_text()
    offline = audit_cli(auditor, topic_prefix, "verify", "--input", exported)
    assert offline.returncode == 0, offline.stderr
