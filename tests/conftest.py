"""Test infrastructure: one real Kafka broker per test session, started by the project's script.

Set BIOSTREAM_TEST_BOOTSTRAP=host:port to reuse a broker you already run (faster iterations).
Each test gets its own topic prefix, consumer groups and transactional ids, so tests never see
each other's data on the shared broker.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from biostream.settings import KafkaSettings

BROKER_TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("BIOSTREAM_TEST_BOOTSTRAP")
    if existing:
        yield existing
        return
    from biostream_dev import broker

    started = time.monotonic()
    broker.ensure_jars()
    BROKER_TIMINGS["jar_check_s"] = time.monotonic() - started
    run_dir: Path = tmp_path_factory.mktemp("kafka")
    started = time.monotonic()
    info = broker.start_broker(run_dir)
    BROKER_TIMINGS["broker_start_s"] = time.monotonic() - started
    try:
        yield info.bootstrap
    finally:
        broker.stop_broker(run_dir)


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def topic_prefix() -> str:
    return f"t{secrets.token_hex(4)}."


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if BROKER_TIMINGS:
        figures = ", ".join(f"{k}={v:.1f}" for k, v in BROKER_TIMINGS.items())
        terminalreporter.write_line(f"kafka broker: {figures}")
