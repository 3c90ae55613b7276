"""Measuring a benchmark: the wall and CPU time of a loop (:class:`Clock`, used by ``audit.py`` and
``pseudonymizer.py``); for an end-to-end side, CPU seconds per process, machine load, latency
percentiles, phases of publication and arrival (used by ``e2e.py``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from biostream.kafka import plain_producer, reader, topic_partitions
from biostream.settings import KafkaSettings
from ingest.domain.files import FeedMessage


class Clock:
    """The wall time (``time.perf_counter``) and this process's CPU time (``time.process_time``)
    of a ``with`` block: ``wall_s`` and ``cpu_s``, set when the block ends."""

    wall_s: float
    cpu_s: float

    def __enter__(self) -> Clock:
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0

    def rates(self, count: int) -> tuple[float, float]:
        """``count`` per wall second and per CPU-second (per core, for a single-threaded loop)."""
        return count / self.wall_s, count / self.cpu_s


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) ": field 3 is state, so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat: other tenants' load shows here."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Phase:
    name: str
    offered_per_s: float | None
    published: int
    arrived: int
    wall_s: float
    records_per_s: float
    p50_s: float
    p99_s: float
    cpu_s: dict[str, float]
    # Share of the whole machine's CPU time busy during the phase (all tenants), and the part of
    # it that was this benchmark's processes (services or hops, and the broker).
    machine_busy: float = 0.0
    ours_of_machine: float = 0.0
    # (seconds since the run's t0, latency s) per arrival, for the plot; not in the JSON summary.
    samples: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def cpu_per_record_ms(self) -> dict[str, float]:
        return {k: 1000 * v / self.arrived for k, v in self.cpu_s.items() if self.arrived}

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("samples")
        data["cpu_ms_per_record"] = self.cpu_per_record_ms()
        return data


class Arrivals:
    """Consumes the last topic of a chain and times each expected record's first arrival."""

    def __init__(
        self, kafka: KafkaSettings, topic: str, match: Callable[[object], int | None]
    ) -> None:
        self._kafka = kafka
        self._consumer = reader(kafka, f"bench-arrivals-{secrets.token_hex(3)}")
        self._topic = topic
        self._match = match
        self.seen: dict[int, float] = {}
        self.unmatched = 0

    async def start(self) -> None:
        await self._consumer.start()
        tps = await topic_partitions(self._kafka, [self._topic])
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        batch = await self._consumer.getmany(timeout_ms=50, max_records=5000)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                seq = self._match(record)
                if seq is None:
                    self.unmatched += 1
                elif seq not in self.seen:
                    self.seen[seq] = now


async def publish(
    kafka: KafkaSettings,
    topic: str,
    messages: list[FeedMessage],
    first_seq: int,
    sent_at: dict[int, float],
    rate_per_s: float | None,
) -> None:
    """Publishes with a ``bench-seq`` header; paced at ``rate_per_s`` in 20 ms ticks if given."""
    producer = plain_producer(kafka, "bench-feeder")
    await producer.start()
    try:
        start = time.perf_counter()
        pending: list[asyncio.Future[object]] = []
        for offset, message in enumerate(messages):
            seq = first_seq + offset
            if rate_per_s is not None:
                due = start + offset / rate_per_s
                delay = due - time.perf_counter()
                if delay > 0.02:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await asyncio.sleep(delay)
            sent_at[seq] = time.perf_counter()
            pending.append(
                await producer.send(
                    topic,
                    message.value,
                    key=message.key,
                    headers=[
                        ("content-type", message.content_type.encode()),
                        ("bench-seq", str(seq).encode()),
                    ],
                )
            )
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def run_phase(
    name: str,
    kafka: KafkaSettings,
    feed_topic: str,
    arrivals: Arrivals,
    messages: list[FeedMessage],
    first_seq: int,
    rate_per_s: float | None,
    pids: dict[str, int],
    t0: float,
    timeout_s: float,
) -> Phase:
    sent_at: dict[int, float] = {}
    expected = set(range(first_seq, first_seq + len(messages)))
    cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
    busy_before = machine_busy()
    started = time.perf_counter()
    feeder = asyncio.create_task(
        publish(kafka, feed_topic, messages, first_seq, sent_at, rate_per_s)
    )
    deadline = time.monotonic() + timeout_s
    while not (feeder.done() and expected <= arrivals.seen.keys()):
        if time.monotonic() > deadline:
            break
        if feeder.done() and feeder.exception() is not None:
            feeder.result()
        await arrivals.poll()
    await feeder
    cpu_after = {k: cpu_seconds(p) for k, p in pids.items()}
    busy_after = machine_busy()
    busy_jiffies = busy_after[0] - busy_before[0]
    total_jiffies = busy_after[1] - busy_before[1]
    ours = sum(cpu_after.values()) - sum(cpu_before.values())
    got = [s for s in expected if s in arrivals.seen]
    last = max((arrivals.seen[s] for s in got), default=started)
    latencies = [arrivals.seen[s] - sent_at[s] for s in got]
    samples = sorted((arrivals.seen[s] - t0, arrivals.seen[s] - sent_at[s]) for s in got)
    if rate_per_s is None:
        # Sustained rate of a drained backlog: arrivals between the first and last 5 %, so that
        # neither the first fetch nor the last straggler decides it.
        times = sorted(arrivals.seen[s] for s in got)
        lo, hi = times[len(times) // 20], times[-1 - len(times) // 20]
        rate = (len(times) - 2 * (len(times) // 20)) / (hi - lo) if hi > lo else 0.0
    else:
        rate = len(got) / (last - started) if last > started else 0.0
    return Phase(
        name=name,
        offered_per_s=rate_per_s,
        published=len(messages),
        arrived=len(got),
        wall_s=last - started,
        records_per_s=rate,
        p50_s=percentile(latencies, 0.50),
        p99_s=percentile(latencies, 0.99),
        cpu_s={k: cpu_after[k] - cpu_before[k] for k in pids},
        machine_busy=busy_jiffies / total_jiffies if total_jiffies else 0.0,
        ours_of_machine=ours * os.sysconf("SC_CLK_TCK") / busy_jiffies if busy_jiffies else 0.0,
        samples=samples,
    )
