"""Child processes of the end-to-end benchmark: the bare relay chain's hops (a transactional
consume -> produce of the bytes as they are) and the process group that starts and stops a
side's hops.

    python -m biostream_harness.bench.hops SOURCE SINK GROUP   (started by ``e2e.py``)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import TopicPartition
from biostream.kafka import group_consumer
from biostream.settings import KafkaSettings


async def relay_hop(kafka: KafkaSettings, source: str, sink: str, group: str) -> None:
    """Transactional consume -> produce until SIGTERM (relay.py's shape, without an end count)."""
    from biostream.kafka import transactional_producer

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    producer = transactional_producer(kafka, f"{group}-tx")
    consumer = group_consumer(kafka, group, group, 500)
    consumer.subscribe(topics=[source])
    await producer.start()
    await consumer.start()
    await asyncio.to_thread(Path(os.environ["BENCH_READY_FILE"]).touch)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            if not batch:
                continue
            offsets: dict[TopicPartition, int] = {}
            await producer.begin_transaction()
            for tp, records in batch.items():
                for record in records:
                    await producer.send(
                        sink, record.value, key=record.key, headers=list(record.headers or ())
                    )
                offsets[tp] = records[-1].offset + 1
            await producer.send_offsets_to_transaction(offsets, group)
            await producer.commit_transaction()
    finally:
        await consumer.stop()
        await producer.stop()


def _settings_json(kafka: KafkaSettings) -> str:
    data = kafka.model_dump()
    if kafka.sasl_password is not None:
        data["sasl_password"] = kafka.sasl_password.get_secret_value()
    return json.dumps(data)


class HopProcesses:
    """A side's child processes (relay or floor hops): each touches its ready file once it
    consumes; started one after the other, stopped with SIGTERM."""

    def __init__(self, kafka: KafkaSettings, run_dir: Path, commands: dict[str, list[str]]) -> None:
        self.kafka, self.run_dir, self.commands = kafka, run_dir, commands
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name, argv in self.commands.items():
            ready = self.run_dir / f"{name}.ready"
            env = dict(os.environ, BENCH_KAFKA=_settings_json(self.kafka), **(extra_env or {}))
            env["BENCH_READY_FILE"] = str(ready)
            with (self.run_dir / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", *argv],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            deadline = time.monotonic() + 60
            while not ready.exists():
                if self.processes[name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; see {self.run_dir}")
                time.sleep(0.1)

    def assert_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}); see {self.run_dir}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def relay_chain(kafka: KafkaSettings, topics: list[str], run_dir: Path) -> HopProcesses:
    commands = {
        f"hop{n}": [
            "biostream_harness.bench.hops",
            topics[n - 1],
            topics[n],
            f"bench-hop{n}-{secrets.token_hex(3)}",
        ]
        for n in range(1, len(topics))
    }
    return HopProcesses(kafka, run_dir, commands)


def hop(source: str, sink: str, group: str) -> None:
    """One hop of the relay chain (started by the benchmark as ``python -m biostream_harness.bench.hops SRC SINK GROUP``)."""
    kafka = KafkaSettings.model_validate(json.loads(os.environ["BENCH_KAFKA"]))
    asyncio.run(relay_hop(kafka, source, sink, group))


if __name__ == "__main__":
    hop(*sys.argv[1:4])
