"""Test infrastructure: one real Kafka broker per test session, started by the project's script.

The broker runs with SCRAM over TLS and ACLs, as in production: the `kafka` fixture is its admin;
services in the harnesses run as their own principals from deploy/acl-matrix.yaml.
Set BIOSTREAM_TEST_BROKER_DIR=<run dir> to reuse a broker you already run (faster iterations).
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
def kafka_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSettings]:
    existing = os.environ.get("BIOSTREAM_TEST_BROKER_DIR")
    if existing:  # a broker you started with `python -m biostream_dev.broker start --auth --dir D`
        yield _admin_settings(Path(existing), broker_status_or_fail(Path(existing)))
        return
    from biostream_dev import broker

    started = time.monotonic()
    broker.ensure_jars()
    BROKER_TIMINGS["jar_check_s"] = time.monotonic() - started
    run_dir: Path = tmp_path_factory.mktemp("kafka")
    started = time.monotonic()
    info = broker.start_broker(run_dir, authentication=True)
    BROKER_TIMINGS["broker_start_s"] = time.monotonic() - started
    try:
        yield _admin_settings(run_dir, info.bootstrap)
    finally:
        broker.stop_broker(run_dir)


def broker_status_or_fail(run_dir: Path) -> str:
    from biostream_dev import broker

    info = broker.broker_status(run_dir)
    if info is None:
        raise RuntimeError(f"BIOSTREAM_TEST_BROKER_DIR={run_dir} has no running broker")
    return info.bootstrap


def _admin_settings(run_dir: Path, bootstrap: str) -> KafkaSettings:
    """The broker's admin (super user), over TLS: tests create topics and principals with it."""
    from biostream_dev import broker

    return broker.admin_settings(run_dir, bootstrap)


@pytest.fixture
def kafka(kafka_admin: KafkaSettings) -> KafkaSettings:
    return kafka_admin


@pytest.fixture
def topic_prefix() -> str:
    return f"t{secrets.token_hex(4)}."


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if BROKER_TIMINGS:
        figures = ", ".join(f"{k}={v:.1f}" for k, v in BROKER_TIMINGS.items())
        terminalreporter.write_line(f"kafka broker: {figures}")
