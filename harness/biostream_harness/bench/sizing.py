"""Storage sizing: bytes per record of every pipeline topic, measured on the broker (D21).

    .venv/bin/python -m biostream_harness.bench.sizing [--persons 2000] [--seed 16]
        [--participants 1000000] [--messages-per-participant-year 20] [--years 10]
        [--rate 0] [--replication 3] [--local-days 7] [--json out/sizing.json] [--measured FILE]

Not a test: it prints figures (see docs/benchmarks/sizing.md and the sizing section of
deploy/k8s/README.md). What it does:

1. Starts a fresh local broker (stopped at the end), generates a synthetic feed of
   ``--persons`` persons (``biostream_dev.synth``), publishes it (at once, as a backfill does, or
   ``--rate`` messages a second one by one, as live traffic: each service transaction then
   carries about one message, so batch headers and transaction markers weigh more) and runs the
   four services in this process until every message is accounted for, as the demo does.
2. Measures every topic of the table (``Topics.pipeline_specs``): the bytes of its log segments as
   the broker reports them (DescribeLogDirs: what the disk holds, record batches, headers,
   transaction markers and all), its records (read_committed), and for compacted topics the share
   of those bytes that compaction keeps (the latest value of each key).
3. Projects them (:func:`project`): per feed message, then per year for ``--participants`` sending
   ``--messages-per-participant-year`` messages each, with every topic's retention, with and
   without Kafka tiered storage (``--measured out/sizing.json`` projects an earlier
   measurement again, e.g. for another scenario, without running anything).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biostream.kafka import plain_producer, reader, sync_admin_client, topic_partitions
from biostream.settings import KafkaSettings
from biostream.topics import DAY_MS, KEEP, Topics, TopicSpec

if TYPE_CHECKING:
    from ingest.domain.files import FeedMessage

YEAR_DAYS = 365
YEAR_SECONDS = YEAR_DAYS * 86_400
CHECKPOINTS = "audit.checkpoints"


@dataclass(frozen=True)
class TopicSize:
    """One topic of the table as measured: ``name`` without the run's prefix."""

    name: str
    retention: str  # "forever", "compacted" or "<n> days"
    records: int
    disk_bytes: int  # log segments on the broker (one replica)
    payload_bytes: int  # keys, values and headers of the records (what the codec wrote)
    live_bytes: int  # what compaction keeps: disk bytes in the proportion of the latest values

    @property
    def bytes_per_record(self) -> float:
        return self.disk_bytes / self.records if self.records else 0.0


def retention_label(spec: TopicSpec) -> str:
    if spec.compacted:
        return "compacted"
    if spec.retention.retention_ms == KEEP:
        return "forever"
    return f"{spec.retention.retention_ms // DAY_MS} days"


def window_days(label: str) -> int | None:
    return int(label.split()[0]) if label.endswith(" days") else None


# How each service's compacted state grows (what its keys are; services/*/README.md). A
# changelog not named here grows with the records (the pseudonymizer's released ids per patient).
STATE_GROWTH = {
    "linkage.state-changelog": "participants",  # r:<patient_ref>, p:<person>, open tasks
    "ingest.state-changelog": "dedup window",  # resent-message ids of the last window (D25)
    "audit.state-changelog": "constant",  # the ledger's tip and Merkle frontier
}


@dataclass(frozen=True)
class Scenario:
    participants: int = 1_000_000
    messages_per_participant_year: float = 20.0
    years: int = 10
    replication: int = 3  # deploy/k8s/base/kafka-topics.yaml
    local_days: float = 7.0  # local.retention.ms with tiered storage
    segment_days: float = 7.0  # segment.ms (Kafka's default): the active segment stays local
    checkpoint_every_seconds: float = 30.0  # the audit service's default (services/audit)
    dedup_window_days: float = 30.0  # BIOSTREAM_DEDUP_WINDOW_DAYS (D25)


@dataclass(frozen=True)
class TopicProjection:
    name: str
    retention: str
    records_per_message: float
    bytes_per_record: float
    bytes_per_message: float  # held after one year, per message of that year
    first_year: float  # one copy held after one year
    held_one_copy: float  # one copy held after ``years``
    tiered: bool  # eligible for tiered storage (Kafka tiers no compacted topic)


@dataclass(frozen=True)
class Projection:
    scenario: Scenario
    messages_per_year: float
    topics: list[TopicProjection]
    first_year_one_copy: float
    held_one_copy: float
    local_without_tiering: float  # replicated broker disk after ``years``
    local_with_tiering: float  # replicated broker disk after ``years``, tiered storage on
    remote_with_tiering: float  # object storage after ``years`` (one copy: the store's own)


def project(
    sizes: Iterable[TopicSize], published: int, persons: int, scenario: Scenario
) -> Projection:
    """D21 sizing arithmetic: bytes measured per feed message (of ``published`` from ``persons``),
    times the messages of a year, held as each topic's retention says.

    * ``forever`` topics grow by a year's bytes every year; ``<n> days`` topics hold at most
      ``n`` days of them.
    * ``audit.checkpoints`` grows with time, not messages: one signed checkpoint per
      ``checkpoint_every_seconds`` while entries keep arriving (an upper bound; the audit
      service also signs one per 1,000 entries, far fewer at this rate).
    * Compacted changelogs hold their live bytes (the latest value per key), which grow as
      :data:`STATE_GROWTH` says: with the participants (then stay), over the de-duplication
      window, not at all, or with the records (an upper bound for state per patient).
    * Without tiered storage every byte held is on the brokers' disks, ``replication`` times.
    * With it (KIP-405), every delete-policy topic keeps ``local_days`` plus its active segment
      (``segment_days``) on the brokers and the rest once in object storage; compacted topics
      cannot be tiered and stay local.
    """
    if published < 1 or persons < 1:
        raise ValueError("nothing was published to measure")
    messages_per_year = scenario.participants * scenario.messages_per_participant_year
    scale = messages_per_year / published
    local_share = min(1.0, (scenario.local_days + scenario.segment_days) / YEAR_DAYS)
    topics: list[TopicProjection] = []
    local_tiered = remote = 0.0
    for size in sizes:
        compacted = size.retention == "compacted"
        kept = size.live_bytes if compacted else size.disk_bytes
        rate = kept * scale  # bytes a year of messages writes (or keeps, for state)
        if size.name == CHECKPOINTS:
            rate = size.bytes_per_record * YEAR_SECONDS / scenario.checkpoint_every_seconds

        def held_after(years: int, size: TopicSize = size, rate: float = rate) -> float:
            days = YEAR_DAYS * years
            if size.retention != "compacted":
                window = window_days(size.retention)
                return rate * min(days, window if window is not None else days) / YEAR_DAYS
            growth = STATE_GROWTH.get(size.name, "records")
            if growth == "participants":
                return size.live_bytes * scenario.participants / persons
            if growth == "constant":
                return float(size.live_bytes)
            if growth == "dedup window":
                return rate * min(days, scenario.dedup_window_days) / YEAR_DAYS
            return rate * years

        first, held = held_after(1), held_after(scenario.years)
        topics.append(
            TopicProjection(
                name=size.name,
                retention=size.retention,
                records_per_message=size.records / published,
                bytes_per_record=size.bytes_per_record,
                bytes_per_message=first / messages_per_year,
                first_year=first,
                held_one_copy=held,
                tiered=not compacted,
            )
        )
        if compacted:
            local_tiered += held
        else:
            local_held = min(held, rate * local_share)
            local_tiered += local_held
            remote += held - local_held
    held_total = sum(t.held_one_copy for t in topics)
    return Projection(
        scenario=scenario,
        messages_per_year=messages_per_year,
        topics=topics,
        first_year_one_copy=sum(t.first_year for t in topics),
        held_one_copy=held_total,
        local_without_tiering=held_total * scenario.replication,
        local_with_tiering=local_tiered * scenario.replication,
        remote_with_tiering=remote,
    )


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def group_name(prefix: str, name: str) -> str:
    """Table rows: the hospital feeds as one row (``feed.*``)."""
    bare = name[len(prefix) :]
    return "feed.*" if bare.startswith("feed.") else bare


def merge_feeds(sizes: list[TopicSize]) -> list[TopicSize]:
    merged: dict[str, TopicSize] = {}
    for size in sizes:
        old = merged.get(size.name)
        if old is None:
            merged[size.name] = size
            continue
        merged[size.name] = TopicSize(
            size.name,
            size.retention,
            old.records + size.records,
            old.disk_bytes + size.disk_bytes,
            old.payload_bytes + size.payload_bytes,
            old.live_bytes + size.live_bytes,
        )
    return list(merged.values())


GROWTH_LABELS = {
    "participants": "per participant",
    "dedup window": "the dedup window's",
    "constant": "constant",
    "records": "grows with the records",
}


def growth(t: TopicProjection) -> str:
    if t.retention != "compacted":
        return ""
    return f" ({GROWTH_LABELS[STATE_GROWTH.get(t.name, 'records')]})"


def render(projection: Projection, persons: int, published: int, rate: float = 0.0) -> str:
    s = projection.scenario
    years = f"{s.years} year" + ("" if s.years == 1 else "s")
    lines = [
        f"measured: {persons:,} synthetic persons, {published:,} feed messages "
        + (f"published {rate:g} a second, one by one" if rate else "published at once"),
        f"scenario: {s.participants:,} participants x {s.messages_per_participant_year:g} "
        f"messages a year = {projection.messages_per_year:,.0f} messages a year; "
        f"replication {s.replication}, {years}",
        "",
        "| topic | retention | records per feed message | bytes per record (disk) "
        "| bytes per feed message | one copy after a year | one copy after "
        f"{years} |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for t in sorted(projection.topics, key=lambda t: -t.held_one_copy):
        lines.append(
            f"| {t.name} | {t.retention}{growth(t)} | {t.records_per_message:.2f} | "
            f"{t.bytes_per_record:,.0f} | {t.bytes_per_message:,.0f} | "
            f"{human(t.first_year)} | {human(t.held_one_copy)} |"
        )
    per_message = sum(t.bytes_per_message for t in projection.topics)
    lines += [
        f"| all | | | | {per_message:,.0f} | {human(projection.first_year_one_copy)} | "
        f"{human(projection.held_one_copy)} |",
        "",
        f"without tiered storage: {human(projection.local_without_tiering)} of broker disk "
        f"after {years} ({s.replication} replicas)",
        f"with tiered storage ({s.local_days:g} days local + the active segment, "
        f"{s.segment_days:g} days): {human(projection.local_with_tiering)} of broker disk, "
        f"{human(projection.remote_with_tiering)} in object storage",
    ]
    return "\n".join(lines)


async def measure(kafka: KafkaSettings, prefix: str, specs: list[TopicSpec]) -> list[TopicSize]:
    names = [spec.name for spec in specs]
    disk = await asyncio.to_thread(_segment_bytes, kafka, names)
    counted = await _read(kafka, names)
    sizes = []
    for spec in specs:
        records, payload, live = counted[spec.name]
        on_disk = disk.get(spec.name, 0)
        live_disk = round(on_disk * live / payload) if payload else 0
        sizes.append(
            TopicSize(
                group_name(prefix, spec.name),
                retention_label(spec),
                records,
                on_disk,
                payload,
                live_disk if spec.compacted else on_disk,
            )
        )
    return merge_feeds(sizes)


def _segment_bytes(kafka: KafkaSettings, names: list[str]) -> dict[str, int]:
    """Bytes of each topic's log segments on one replica (DescribeLogDirs, leader's broker)."""
    client = sync_admin_client(kafka, "bench-sizing")
    try:
        answers = client.describe_log_dirs(names)
    finally:
        client.close()
    per_partition: dict[tuple[str, int], int] = {}
    for answer in answers:
        for log_dir in answer["log_dirs"]:
            for topic in log_dir["topics"]:
                for partition in topic["partitions"]:
                    if partition.get("is_future_key"):
                        continue
                    key = (topic["name"], partition["partition_index"])
                    # Several brokers hold replicas of a partition: count one of them.
                    per_partition[key] = max(per_partition.get(key, 0), partition["partition_size"])
    out: dict[str, int] = {}
    for (name, _), size in per_partition.items():
        out[name] = out.get(name, 0) + size
    return out


async def _read(kafka: KafkaSettings, names: list[str]) -> dict[str, tuple[int, int, int]]:
    """Per topic: committed records, their key+value+header bytes, and those of the latest
    non-tombstone value per key (what compaction keeps)."""
    partitions = await topic_partitions(kafka, names)
    consumer = reader(kafka, "bench-sizing")
    await consumer.start()
    counts = {name: [0, 0] for name in names}
    latest: dict[str, dict[bytes, int]] = {name: {} for name in names}
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    size = len(record.key or b"") + len(record.value or b"")
                    size += sum(len(k) + len(v) for k, v in record.headers)
                    counts[tp.topic][0] += 1
                    counts[tp.topic][1] += size
                    if record.key is not None:
                        if record.value is None:
                            latest[tp.topic].pop(record.key, None)
                        else:
                            latest[tp.topic][record.key] = size
    finally:
        await consumer.stop()
    return {n: (counts[n][0], counts[n][1], sum(latest[n].values())) for n in names}


async def publish_trickle(
    kafka: KafkaSettings, feeds: dict[str, list[FeedMessage]], topics: Topics, rate: float
) -> None:
    """One message at a time, ``rate`` a second, the hospitals in turn: each service transaction
    then carries about one feed message, as under a steady trickle of live traffic."""
    producer = plain_producer(kafka, "bench-sizing-trickle")
    await producer.start()
    try:
        queues = {hospital: list(messages) for hospital, messages in feeds.items()}
        while any(queues.values()):
            for hospital, queue in queues.items():
                if queue:
                    message = queue.pop(0)
                    await producer.send_and_wait(
                        topics.feed(hospital),
                        message.value,
                        key=message.key,
                        headers=[("content-type", message.content_type.encode())],
                    )
                    await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()


async def run_pipeline(
    kafka: KafkaSettings, work: Path, persons: int, seed: int, rate: float
) -> tuple[str, list[TopicSpec], int]:
    """``rate`` 0: every message at once (a backfill: large transactions); else a trickle."""
    from biostream.logs import configure_logging
    from biostream_dev.synth import generate_feed
    from ingest.adapters.publisher import publish_messages

    from biostream_harness.demo import feed_messages
    from biostream_harness.inprocess import DATASET, Keys, running_pipeline

    configure_logging("bench-sizing", "WARNING")
    generate_feed(work / "feed", persons=persons, seed=seed)
    feeds = feed_messages(work / "feed")
    published = sum(len(m) for m in feeds.values())
    prefix = f"sizing{secrets.token_hex(3)}."
    topics = Topics(prefix)
    # A checkpoint a second, so that the short run signs some to measure (the projection uses
    # the service's default interval).
    audit: dict[str, object] = {"checkpoint_every_seconds": 1.0}
    async with running_pipeline(
        kafka, prefix, sorted(feeds), Keys.fresh(), audit=audit
    ) as observer:
        if rate > 0:
            await publish_trickle(kafka, feeds, topics, rate)
        else:
            for hospital, messages in feeds.items():
                await publish_messages(kafka, topics.feed(hospital), messages)
        view = await observer.wait_until_settled(published, timeout_s=max(600.0, published / 10))
        for _ in range(100):  # the idle tick signs a checkpoint over the tail
            if view.checkpoints and view.checkpoints[-1]["size"] == len(view.ledger):
                break
            await observer.poll(timeout_ms=200)
    return prefix, topics.pipeline_specs(sorted(feeds), [DATASET]), published


async def measure_pipeline(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from biostream_dev import broker

    run_dir = work / "kafka"
    info = await asyncio.to_thread(broker.start_broker, run_dir, authentication=True)
    try:
        kafka = broker.admin_settings(run_dir, info.bootstrap)
        prefix, specs, published = await run_pipeline(
            kafka, work, args.persons, args.seed, args.rate
        )
        sizes = await measure(kafka, prefix, specs)
    finally:
        await asyncio.to_thread(broker.stop_broker, run_dir)
    return {
        "persons": args.persons,
        "seed": args.seed,
        "rate": args.rate,
        "published": published,
        "sizes": [asdict(s) for s in sizes],
    }


def report(measured: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    sizes = [TopicSize(**row) for row in measured["sizes"]]
    scenario = Scenario(
        participants=args.participants,
        messages_per_participant_year=args.messages_per_participant_year,
        years=args.years,
        replication=args.replication,
        local_days=args.local_days,
    )
    persons, published = measured["persons"], measured["published"]
    projection = project(sizes, published, persons, scenario)
    print(render(projection, persons, published, measured.get("rate", 0.0)))
    return measured | {"projection": asdict(projection)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="feed messages a second, one at a time (default 0: all at once, as a backfill)",
    )
    parser.add_argument("--participants", type=int, default=Scenario.participants)
    parser.add_argument(
        "--messages-per-participant-year",
        type=float,
        default=Scenario.messages_per_participant_year,
    )
    parser.add_argument("--years", type=int, default=Scenario.years)
    parser.add_argument("--replication", type=int, default=Scenario.replication)
    parser.add_argument("--local-days", type=float, default=Scenario.local_days)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--measured",
        type=Path,
        default=None,
        help="project the sizes of an earlier --json instead of running the pipeline",
    )
    args = parser.parse_args(argv)
    if args.measured is not None:
        measured = json.loads(args.measured.read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="biostream-sizing-") as tmp:
            measured = asyncio.run(measure_pipeline(args, Path(tmp)))
    result = report(measured, args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
