"""The local broker: ready when an admin call and a probe produce succeed, not when a port opens."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
import uuid
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from biostream_dev.broker.common import DEFAULT_READY_TIMEOUT, PROBE_TOPIC, BrokerError
from biostream_dev.broker.config import client_security
from biostream_dev.broker.processes import has_exited, log_tail


async def _probe(bootstrap: str, timeout_ms: int, security: Mapping[str, str]) -> None:
    """One end-to-end check: create the probe topic, produce one record, read it back."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code
    from biostream.topics import for_days

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **security
    )
    try:
        await admin.start()
        # One record per readiness check; a day is plenty, and every topic declares its retention.
        probe = NewTopic(PROBE_TOPIC, 1, 1, topic_configs=for_days(1).configs())
        response = await admin.create_topics([probe], timeout_ms=timeout_ms)
        for topic_error in response.to_object()["topic_errors"]:
            error_type = for_code(topic_error["error_code"])
            if topic_error["error_code"] != 0 and error_type is not TopicAlreadyExistsError:
                raise error_type(str(topic_error))
        # Produce only once the metadata names a leader: avoids a NotLeaderForPartition retry
        # (which aiokafka logs as a warning) right after the topic was created.
        while True:
            (topic,) = await admin.describe_topics([PROBE_TOPIC])
            partitions = topic["partitions"]
            if (
                topic["error_code"] == 0
                and partitions
                and all(p["leader"] >= 0 for p in partitions)
            ):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()

    payload = uuid.uuid4().bytes
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms, **security
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(PROBE_TOPIC, payload)
    finally:
        await producer.stop()

    partition = TopicPartition(PROBE_TOPIC, meta.partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
        **security,
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout_ms / 1000)
        if record.value != payload:
            raise BrokerError("probe read back a different record")
    finally:
        await consumer.stop()


_T = TypeVar("_T")


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def wait_until_ready(
    bootstrap: str,
    timeout: float = DEFAULT_READY_TIMEOUT,
    *,
    pid: int | None = None,
    run_dir: Path | None = None,
) -> float:
    """Poll until the broker creates a topic, accepts a record and serves it back.

    With a ``run_dir`` whose broker uses SASL, the probe authenticates as its admin.

    Returns the seconds waited. If ``pid``/``run_dir`` are given, fails fast when that process
    dies. Raises :class:`TimeoutError` with the last probe error otherwise.
    """
    started = time.monotonic()
    deadline = started + timeout
    last_error: BaseException | None = None
    host, _, port = bootstrap.rpartition(":")
    # First wait for the port to accept TCP connections (quietly: aiokafka logs every refused
    # connection at ERROR level), then probe end to end with Kafka clients.
    while time.monotonic() < deadline:
        if pid is not None and has_exited(pid):
            break
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                break
        except OSError as exc:
            last_error = exc
            time.sleep(0.2)
    while True:
        if pid is not None and run_dir is not None and has_exited(pid):
            raise BrokerError(
                f"broker process {pid} exited before it was ready; log tail:\n{log_tail(run_dir)}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"Kafka at {bootstrap} not ready after {timeout:.1f} s; last error: {last_error!r}"
            )
        try:
            attempt_ms = int(min(10.0, max(1.0, remaining)) * 1000)
            security = client_security(run_dir) if run_dir is not None else {}
            _run_sync(
                asyncio.wait_for(_probe(bootstrap, attempt_ms, security), attempt_ms / 1000 + 5)
            )
        except Exception as exc:  # any failure means "not ready yet"
            last_error = exc
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        else:
            return time.monotonic() - started
