"""Audit ledger benchmark: appends per second on one core, and the time to verify a million entries.

    .venv/bin/python -m biostream_harness.bench.audit [--appends 100000] [--verify-entries 1000000]

Not a test: it prints figures (see docs/benchmarks/audit.md). Runs pinned to one CPU so the rate
is per core, and reports CPU time besides wall time: on a shared machine the wall time includes
waiting for the CPU, the CPU time is what the work costs. What it measures:

1. handler appends/s: the audit service's whole per-event work without Kafka I/O (decode the Avro
   audit event, chain it, extend the Merkle frontier, encode the ledger entry, write the state
   value, sign a checkpoint every 1000 entries).
2. domain appends/s: chain + Merkle frontier + checkpoints only, while building the ledger for 3.
3. verify: ``audit.domain.chain.verify`` over N in-memory entries with a signed checkpoint every
   1000 (every hash recomputed, the Merkle root rebuilt, every signature checked).
4. per-event proofs (D23a): the handler's events/s on batches (one service transaction's events,
   as services write them since D15), each entry committing to an RFC 6962 root over its events;
   and the events root alone (a leaf hash per event, a node hash per pair).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform

from audit.domain.chain import verify
from audit.domain.checkpoint import Signer
from audit.domain.ledger import CheckpointPolicy, LedgerState
from audit.domain.rotation import Keyring
from audit.handlers import AuditMetrics, LedgerAppendHandler
from biostream.codec import AvroCodec
from biostream.contract import Inbound
from biostream.contracts import LedgerCheckpoint, LedgerEntry
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from biostream_harness.bench.measure import Clock

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _events(codec: AvroCodec, topics: Topics, n: int) -> list[bytes]:
    ingest = Envelopes("ingest", "User:svc-ingest", codec, topics)
    return [
        ingest.audit(
            "ingest.accepted",
            [f"feed.H001/0/{i}"],
            [f"H001/MSG-{i:08d}/0", f"H001/MSG-{i:08d}/1", f"H001/MSG-{i:08d}/2"],
            T0,
            hospital="H001",
        ).value
        or b""
        for i in range(n)
    ]


def bench_handler(n: int) -> tuple[float, float]:
    codec = AvroCodec(SchemaRegistry())
    topics = Topics("bench.")
    handler = LedgerAppendHandler(
        codec,
        topics,
        Envelopes("audit", "User:svc-audit", codec, topics),
        AuditMetrics.create(CollectorRegistry()),
        Keyring({"k1": Signer(Ed25519PrivateKey.generate())}),
        CheckpointPolicy(every_entries=1000, every_seconds=1e9),
    )
    payloads = _events(codec, topics, min(n, 10_000))
    state = StateStore()
    with Clock() as clock:
        for i in range(n):
            payload = payloads[i % len(payloads)]
            handler(
                Inbound(topics.audit_events_of("svc-ingest"), 0, i, None, payload, (), 0), state, T0
            )
            if i % 500 == 499:
                state.drain_changes()  # what the processor does once per batch
    return clock.rates(n)


def bench_batches(n_events: int, batch_size: int) -> tuple[float, float]:
    """The handler on batches of ``batch_size`` events: events/s (wall, CPU)."""
    codec = AvroCodec(SchemaRegistry())
    topics = Topics("bench.")
    handler = LedgerAppendHandler(
        codec,
        topics,
        Envelopes("audit", "User:svc-audit", codec, topics),
        AuditMetrics.create(CollectorRegistry()),
        Keyring({"k1": Signer(Ed25519PrivateKey.generate())}),
        CheckpointPolicy(every_entries=1000, every_seconds=1e9),
    )
    packer = Envelopes("pseudonymizer", "User:svc-pseudonymizer", codec, topics)
    payloads = _events(codec, topics, 10_000)
    batches = [
        packer.pack_audit(payloads[i : i + batch_size], now=T0)[0].value or b""
        for i in range(0, len(payloads), batch_size)
    ]
    state = StateStore()
    count = max(1, n_events // batch_size)
    with Clock() as clock:
        for i in range(count):
            handler(
                Inbound(packer.audit_topic, 0, i, None, batches[i % len(batches)], (), 0),
                state,
                T0,
            )
            if i % 50 == 49:
                state.drain_changes()
    return clock.rates(count * batch_size)


def bench_events_root(n_events: int, batch_size: int) -> float:
    """The events root alone (D23a): events per CPU-second."""
    from audit.domain.chain import events_root

    payloads = _events(AvroCodec(SchemaRegistry()), Topics("bench."), batch_size)
    with Clock() as clock:
        for _ in range(max(1, n_events // batch_size)):
            events_root(payloads)
    return max(1, n_events // batch_size) * batch_size / clock.cpu_s


def build_ledger(
    n: int, signer: Signer
) -> tuple[list[LedgerEntry], list[LedgerCheckpoint], float, float]:
    codec = AvroCodec(SchemaRegistry())
    payloads = _events(codec, Topics("bench."), 1000)
    ledger = LedgerState()
    entries: list[LedgerEntry] = []
    checkpoints: list[LedgerCheckpoint] = []
    with Clock() as clock:
        for i in range(n):
            entries.append(ledger.append(f"ev{i}", payloads[i % 1000], T0))
            if (i + 1) % 1000 == 0:
                checkpoints.append(ledger.checkpoint(signer, T0))
    return entries, checkpoints, *clock.rates(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appends", type=int, default=100_000)
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    parser.add_argument("--batch-events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"python {platform.python_version()} on {platform.machine()}, pinned to one CPU")

    wall_rate, cpu_rate = bench_handler(args.appends)
    print(
        f"handler appends/s per core: {cpu_rate:,.0f} per CPU-second, {wall_rate:,.0f} wall "
        f"({args.appends:,} events)"
    )

    wall_rate, cpu_rate = bench_batches(args.batch_events, args.batch_size)
    line = (
        f"per-event proofs: handler on batches of {args.batch_size} events: {cpu_rate:,.0f} "
        f"events per CPU-second, {wall_rate:,.0f} wall ({args.batch_events:,} events)"
    )
    print(
        f"{line}; events root alone: "
        f"{bench_events_root(args.batch_events, args.batch_size):,.0f} events per CPU-second"
    )

    signer = Signer(Ed25519PrivateKey.generate())
    entries, checkpoints, wall_rate, cpu_rate = build_ledger(args.verify_entries, signer)
    print(
        f"domain appends/s per core: {cpu_rate:,.0f} per CPU-second, {wall_rate:,.0f} wall "
        "(chain + Merkle + checkpoints)"
    )

    with Clock() as clock:
        result = verify(entries, checkpoints=checkpoints, public_key=signer.public_key)
    elapsed, cpu_s = clock.wall_s, clock.cpu_s
    assert result.ok, result.problem
    print(
        f"verify {result.entries:,} entries with {result.checkpoints_checked:,} signed "
        f"checkpoints: {cpu_s:.2f} s CPU, {elapsed:.2f} s wall "
        f"({result.entries / cpu_s:,.0f} entries per CPU-second)"
    )


if __name__ == "__main__":
    main()
