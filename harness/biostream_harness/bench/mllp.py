"""MLLP listener benchmark (issue 19, D37): HL7 v2 messages per second and ACK latency
percentiles of `ingest mllp`, against a bare relay of the same bytes measured in the same run.

Both sides run on the same broker (SCRAM over TLS), behind TLS, with the same idempotent
acks=all producer and the same clients: several connections, each sending one message and
waiting for its ACK before the next (as interface engines do). The bare relay finds the frame
end, sends the bytes and answers a fixed ACK: no header read, no duplicate window, no metrics,
no ACK built. Its rate is what the broker path costs; the listener's ratio to it is what the
listener's own work keeps. Sides alternate, so the machine's drift hits both.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer
from biostream.kafka import ensure_topics, plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import broker, tls
from prometheus_client import CollectorRegistry

from biostream_harness.bench.measure import percentile

HOSPITAL = "H001"
FIXED_ACK = b"\x0bMSH|^~\\&|BIOSTREAM||||20261204||ACK|1|P|2.5.1\rMSA|AA|1\r\x1c\r"


def message(connection: int, number: int) -> bytes:
    return (
        f"MSH|^~\\&|LAB|SNUH|BIOSTREAM|KBBP|20261204030000||ORU^R01^ORU_R01|B{connection}-{number:06d}|P|2.5.1\r"
        f"PID|1||{connection}{number:06d}^^^SNUH^MR||홍^길동||19971013|M\r"
        "OBR|1|||4548-4^Hemoglobin A1c^LN\r"
        "OBX|1|NM|4548-4^Hemoglobin A1c^LN||7.1|%|4.0-6.0|H|||F|||20261201\r"
    ).encode()


@dataclass
class Side:
    name: str
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds


async def relay_server(
    kafka: KafkaSettings, topic: str, context: ssl.SSLContext
) -> tuple[asyncio.Server, object]:
    producer = plain_producer(kafka, "bench-mllp-relay")
    await producer.start()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                block = await reader.readuntil(b"\x1c\r")
                await producer.send_and_wait(topic, block[1:-2])
                writer.write(FIXED_ACK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    return server, producer


async def drive(
    port: int, context: ssl.SSLContext, connections: int, per_connection: int, offset: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one(connection: int) -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
        )
        for number in range(per_connection):
            frame = b"\x0b" + message(connection, offset + number) + b"\x1c\r"
            started = time.perf_counter()
            writer.write(frame)
            await writer.drain()
            await reader.readuntil(b"\x1c\r")
            latencies.append((time.perf_counter() - started) * 1000)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(connections)))
    return time.perf_counter() - started, latencies


async def run(
    kafka: KafkaSettings, work: Path, connections: int, per_connection: int, rounds: int
) -> list[Side]:
    from ingest.adapters.mllp_listener import MllpListener
    from ingest.settings import MllpSettings

    ca = tls.ensure_ca(work / "ca")
    server_cert = tls.issue_server(ca, work / "server", "mllp", ["127.0.0.1"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(server_cert.cert, server_cert.key)
    client_context = ssl.create_default_context(cafile=str(ca.cert))
    topics = Topics("bench.")
    await ensure_topics(kafka, topics.pipeline_specs([HOSPITAL], []))
    topic = topics.feed(HOSPITAL)

    listener = MllpListener(
        MllpSettings.model_validate({
            "kafka": kafka, "topic_prefix": "bench.", "mllp_hospital": HOSPITAL, "mllp_port": 0,
            "mllp_certfile": server_cert.cert, "mllp_keyfile": server_cert.key,
        }),
        CollectorRegistry(),
    )  # fmt: skip
    stop = asyncio.Event()
    listening = asyncio.create_task(listener.run(stop))
    while not listener.ready:  # noqa: ASYNC110 - the listener has no ready event
        await asyncio.sleep(0.05)
    relay, relay_producer = await relay_server(kafka, topic, server_context)
    relay_port = int(relay.sockets[0].getsockname()[1])
    sides: list[Side] = []
    offset = 0
    try:
        # A warm-up on each side, then alternating rounds.
        for port in (relay_port, int(listener.port or 0)):
            await drive(port, client_context, connections, 50, offset)
            offset += 50
        for _ in range(rounds):
            for name, port in (("relay", relay_port), ("listener", int(listener.port or 0))):
                seconds, latencies = await drive(
                    port, client_context, connections, per_connection, offset
                )
                offset += per_connection
                sides.append(Side(name, len(latencies), seconds, percentile(latencies, 0.5),
                                  percentile(latencies, 0.99)))  # fmt: skip
    finally:
        relay.close()
        await relay.wait_closed()
        await relay_producer.stop()  # type: ignore[attr-defined]
        stop.set()
        await listening
    return sides


def main(
    connections: Annotated[int, typer.Option(help="Concurrent MLLP connections")] = 8,
    per_connection: Annotated[int, typer.Option(help="Messages per connection per round")] = 500,
    rounds: Annotated[int, typer.Option(help="Rounds per side, alternating")] = 2,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
) -> None:
    """Measure `ingest mllp` and a bare relay of the same bytes: messages/s, ACK p50/p99."""
    broker.ensure_jars()
    with tempfile.TemporaryDirectory(prefix="bench-mllp-") as tmp:
        run_dir = Path(tmp) / "kafka"
        started = broker.start_broker(run_dir, authentication=True)  # SCRAM over TLS
        try:
            kafka = broker.admin_settings(run_dir, started.bootstrap)
            sides = asyncio.run(run(kafka, Path(tmp), connections, per_connection, rounds))
        finally:
            broker.stop_broker(run_dir)
    typer.echo(f"{'side':9} {'messages':>8} {'msg/s':>8} {'ack p50 ms':>10} {'ack p99 ms':>10}")
    for side in sides:
        typer.echo(
            f"{side.name:9} {side.messages:8d} {side.per_s:8.0f} {side.p50_ms:10.2f} {side.p99_ms:10.2f}"
        )
    relay = sorted(s.per_s for s in sides if s.name == "relay")
    mine = sorted(s.per_s for s in sides if s.name == "listener")
    ratio = mine[len(mine) // 2] / relay[len(relay) // 2]
    typer.echo(f"listener / relay (median rates): {ratio:.2f}")
    if json_out is not None:
        json_out.write_text(json.dumps({"sides": [asdict(s) | {"per_s": s.per_s} for s in sides],
                                        "ratio": ratio}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    typer.run(main)
