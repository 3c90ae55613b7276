"""Readers that report what a topic holds, with the broker paused (SIGSTOP) mid-read: `audit verify`
reads the whole ledger or exits non-zero, never "intact" on part of it; a consumer toolkit sync
reads the whole dataset or raises, never reports itself caught up on part of it (D26).

The old readers stopped after 10 (audit) or 20 (toolkit) empty polls of 500 ms and carried on with
what they had read; the pauses here are longer than that and shorter than the limit (read to the
end), or longer than a short limit (fail). Each reader is paused right after its first batch, so
most of the topic is still on the broker. The broker is this module's own (``pausable``, in
conftest.py): pausing the session's shared broker would disturb other tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from audit.domain.checkpoint import Signer, private_key_from_secret, public_key_hex
from audit.domain.ledger import LedgerState
from biostream import kafka as kafka_clients
from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT, CURATED_RECORD, LEDGER_CHECKPOINT, LEDGER_ENTRY
from biostream.envelopes import Envelopes
from biostream.kafka import ensure_topics
from biostream.restore import ReadStalled
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import FOREVER, Topics, TopicSpec
from biostream_consumer.adapters.source import DatasetSource, DatasetTopics
from biostream_consumer.adapters.store import LocalCopy
from biostream_dev import access, broker
from biostream_dev.access import kafka_environment
from typer.testing import CliRunner

from .conftest import Broker

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry())
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
ENTRIES = 30_000  # about 10 MB: many fetches of 1 MB, most still on the broker at the pause
RECORDS = 30_000
PER_TRANSACTION = 10_000
SIGNING_SECRET = b"11" * 32
# Longer than the old readers' give-up (audit 10 x 500 ms, toolkit 20 x 500 ms), well inside
# the limit of the reads that must wait.
AUDIT_PAUSE_S = 7.0
SYNC_PAUSE_S = 12.0
SHORT_LIMIT_S = 3.0


class Pauser:
    """Pauses the broker once, the first time it is triggered; resumes it after ``resume_after_s``
    (from a timer thread) or when the test ends."""

    def __init__(self, run_dir: Path, resume_after_s: float | None) -> None:
        self.run_dir, self.resume_after_s = run_dir, resume_after_s
        self.paused_at: int | None = None  # how much had been read when the broker stopped
        self._timer: threading.Timer | None = None

    def trigger(self, read_so_far: int) -> None:
        if self.paused_at is not None:
            return
        self.paused_at = read_so_far
        broker.pause_broker(self.run_dir)
        if self.resume_after_s is not None:
            self._timer = threading.Timer(self.resume_after_s, self.resume)
            self._timer.start()

    def resume(self) -> None:
        broker.resume_broker(self.run_dir)

    def __enter__(self) -> Pauser:
        return self

    def __exit__(self, *_: object) -> None:
        if self._timer is not None:
            self._timer.join()
        self.resume()


async def _send(producer: AIOKafkaProducer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Straight into record batches (``send`` per record would take most of the test's time)."""
    builder = producer.create_batch()
    deliveries = []
    for key, value in records:
        if builder.append(key=key, value=value, timestamp=None) is None:
            deliveries.append(await producer.send_batch(builder, topic, partition=0))
            builder = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None)
    deliveries.append(await producer.send_batch(builder, topic, partition=0))
    await asyncio.gather(*deliveries)


async def write_transactionally(
    kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    """In transactions, as the services write: the log ends in a commit marker."""
    await ensure_topics(kafka, [TopicSpec(topic, 1, FOREVER)])
    producer = kafka_clients.transactional_producer(kafka, f"{topic}-writer")
    await producer.start()
    try:
        for start in range(0, len(records), PER_TRANSACTION):
            await producer.begin_transaction()
            await _send(producer, topic, records[start : start + PER_TRANSACTION])
            await producer.commit_transaction()
    finally:
        await producer.stop()


# ------------------------------------------------------------------------- audit verify


@dataclasses.dataclass(frozen=True)
class Ledger:
    prefix: str
    public_key: Path
    auditor: KafkaSettings  # the ACL matrix's auditor principal, which the commands run as (D35)


async def write_ledger(kafka: KafkaSettings, prefix: str) -> None:
    """A valid chain; one signed checkpoint, over its first 1000 entries, as if the audit service
    had signed nothing since (a cut anywhere after 1000 is then invisible to the chain check)."""
    topics = Topics(prefix)
    state = LedgerState()
    signer = Signer(private_key_from_secret(SIGNING_SECRET))
    entries, checkpoints = [], []
    envelopes = Envelopes("ingest", "ingest", CODEC, topics)
    for n in range(ENTRIES):
        # A real audit event per entry: verify checks each entry's events root (D23a).
        event = envelopes.audit("ingest.accepted", [f"feed.H001/0/{n}"], [f"record-{n}"], NOW)
        assert event.value is not None
        entry = state.append(CODEC.decode(event.value, AUDIT_EVENT)["event_id"], event.value, NOW)
        entries.append((str(n).encode(), CODEC.encode(LEDGER_ENTRY, entry)))
        if n == 999:
            checkpoint = state.checkpoint(signer, NOW)
            checkpoints.append((b"c", CODEC.encode(LEDGER_CHECKPOINT, checkpoint)))
    await write_transactionally(kafka, topics.audit_checkpoints, checkpoints)
    await write_transactionally(kafka, topics.audit_ledger, entries)


@pytest.fixture(scope="module")
def ledger(pausable: Broker, tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    prefix = "readers-audit."
    asyncio.run(write_ledger(pausable.kafka, prefix))
    key = tmp_path_factory.mktemp("ledger") / "ledger_public.key"
    key.write_text(public_key_hex(private_key_from_secret(SIGNING_SECRET).public_key()))
    principals = access.render(access.load_matrix(), prefix=prefix)
    credentials = access.apply(pausable.kafka, {"auditor": principals["auditor"]})
    asyncio.run(access.wait_until_usable(credentials))
    return Ledger(prefix, key, credentials.settings("auditor"))


class PausingCodec(AvroCodec):
    """The audit command's codec, pausing the broker at the first ledger entry it decodes: the
    command has then read one fetch of the ledger, the rest is on the broker."""

    def __init__(self, pauser: Pauser) -> None:
        super().__init__(SchemaRegistry())
        self.pauser, self.entries = pauser, 0

    def decode(self, data: bytes | None, contract_name: str) -> dict[str, Any]:
        if contract_name == LEDGER_ENTRY:
            self.entries += 1
            self.pauser.trigger(self.entries)
        return super().decode(data, contract_name)


def audit_verify(
    monkeypatch: pytest.MonkeyPatch,
    pausable: Broker,
    ledger: Ledger,
    pauser: Pauser,
    limit_s: float,
) -> Any:
    """`audit verify` in this process (the pause must come at a known point of its read)."""
    import audit.__main__ as audit_cli
    import audit.cli as audit_commands

    monkeypatch.setattr(audit_commands, "_codec", lambda: PausingCodec(pauser))
    env = {
        **kafka_environment(ledger.auditor),
        "BIOSTREAM_TOPIC_PREFIX": ledger.prefix,
        "BIOSTREAM_READ_TIMEOUT_S": str(limit_s),
    }
    args = ["verify", "--public-key", str(ledger.public_key)]
    return CliRunner().invoke(audit_cli.app, args, env=env)


def test_audit_verify_waits_out_a_paused_broker_and_verifies_the_whole_ledger(
    monkeypatch: pytest.MonkeyPatch, pausable: Broker, ledger: Ledger
) -> None:
    with Pauser(pausable.run_dir, resume_after_s=AUDIT_PAUSE_S) as pauser:
        result = audit_verify(monkeypatch, pausable, ledger, pauser, limit_s=120)
    assert pauser.paused_at == 1, "the broker was paused at the first entry read"
    assert result.exit_code == 0, result.output
    assert f"ledger intact: {ENTRIES} entries, 1 signed checkpoints verified" in result.stdout


def test_audit_verify_exits_non_zero_when_the_broker_stays_paused_past_the_limit(
    monkeypatch: pytest.MonkeyPatch, pausable: Broker, ledger: Ledger
) -> None:
    with Pauser(pausable.run_dir, resume_after_s=None) as pauser:
        result = audit_verify(monkeypatch, pausable, ledger, pauser, limit_s=SHORT_LIMIT_S)
    assert pauser.paused_at == 1
    assert "ledger intact" not in result.stdout
    assert result.exit_code == 2, result.output
    assert "could not read the live topics to their end" in result.stderr
    assert "readers-audit.audit.ledger/0 at" in result.stderr
    assert "BIOSTREAM_READ_TIMEOUT_S" in result.stderr


# -------------------------------------------------------------------- consumer toolkit sync


DATASET = "cohort-pause"


def curated(n: int) -> dict[str, Any]:
    return {
        "curated_id": f"cur-{n:06d}", "dataset": DATASET, "policy_version": "1",
        "approval_ref": "DRB-1", "pseudonym": f"ps_{n % 997:04d}", "key_version": "k1",
        "hospital": "H001", "resource_type": "Observation", "event_date": dt.date(2026, 1, 2),
        "code_system": "http://loinc.org", "code": "718-7", "code_version": None,
        "value_number": float(n % 20), "value_unit": "g/dL", "birth_year": 1980, "sex": "F",
        "province_code": "11", "released_at": NOW, "age_band": "40-44", "postal_prefix": "062",
        "district_code": None, "value_text": None, "specimen_ids": [],
        "event_date_handling": None,
    }  # fmt: skip


@pytest.fixture(scope="module")
async def dataset(pausable: Broker) -> Topics:
    topics = Topics("readers-sync.")
    records = [(f"cur-{n:06d}".encode(), CODEC.encode(CURATED_RECORD, curated(n))) for n in range(RECORDS)]  # fmt: skip
    await write_transactionally(pausable.kafka, topics.curated(DATASET), records)
    await ensure_topics(pausable.kafka, [TopicSpec(topics.notices(DATASET), 1, FOREVER)])
    return topics


class PausingProgress:
    """The sync's progress sink: pauses the broker once the first batch is applied."""

    def __init__(self, pauser: Pauser) -> None:
        self.pauser, self.applied = pauser, 0

    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        self.applied += count
        self.pauser.trigger(self.applied)

    def finish(self) -> None:
        pass


def source(pausable: Broker, topics: Topics, copy: LocalCopy, limit_s: float) -> DatasetSource:
    return DatasetSource(
        pausable.kafka,
        DatasetTopics(topics.curated(DATASET), topics.notices(DATASET)),
        CODEC,
        copy,
        client_id="readers-sync",
        read_timeout_s=limit_s,
    )


async def test_a_sync_waits_out_a_paused_broker_and_reads_the_whole_dataset(
    pausable: Broker, dataset: Topics, tmp_path: Path
) -> None:
    copy = LocalCopy(tmp_path / "copy.duckdb")
    try:
        with Pauser(pausable.run_dir, resume_after_s=SYNC_PAUSE_S) as pauser:
            report = await source(pausable, dataset, copy, 120).sync(PausingProgress(pauser))
        assert pauser.paused_at is not None and pauser.paused_at < RECORDS
        assert report.messages_read == RECORDS
        assert copy.count() == RECORDS
        # The position stored with the copy is the end of the data (past the commit marker).
        assert copy.positions()[(dataset.curated(DATASET), 0)] >= RECORDS
    finally:
        copy.close()


async def test_a_sync_raises_when_the_broker_stays_paused_and_the_next_sync_completes_it(
    pausable: Broker, dataset: Topics, tmp_path: Path
) -> None:
    copy = LocalCopy(tmp_path / "copy.duckdb")
    try:
        stalled = pytest.raises(ReadStalled, match=r"readers-sync\.curated\.cohort-pause/0 at")
        with Pauser(pausable.run_dir, resume_after_s=None) as pauser, stalled:
            await source(pausable, dataset, copy, SHORT_LIMIT_S).sync(PausingProgress(pauser))
        assert pauser.paused_at is not None
        held = copy.count()
        assert held < RECORDS  # behind, and it said so
        # What was applied is kept with its position: the next sync reads only the rest.
        report = await source(pausable, dataset, copy, 120).sync()
        assert report.messages_read == RECORDS - held
        assert copy.count() == RECORDS
    finally:
        copy.close()
