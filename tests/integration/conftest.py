"""Fixtures of the integration tests that need more than the session's shared broker."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from biostream.settings import KafkaSettings
from biostream_dev import broker


@dataclasses.dataclass(frozen=True)
class Broker:
    """A broker of one test module's own (no authentication), to pause and resume at will."""

    run_dir: Path
    kafka: KafkaSettings


def run_root() -> Path:
    """``.run`` at the top of the repository, where the pausable brokers keep their run dirs."""
    root = Path(__file__).resolve().parents[2] / ".run"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="module")
def pausable() -> Iterator[Broker]:
    """A broker of the module's own: pausing (SIGSTOP) the session's shared broker would disturb
    the other tests. Resumed (if paused) and stopped when the module's tests are done."""
    with tempfile.TemporaryDirectory(prefix="kafka-pause-", dir=run_root()) as tmp:
        run_dir = Path(tmp)
        info = broker.start_broker(run_dir, authentication=True)
        try:
            yield Broker(run_dir, broker.admin_settings(run_dir, info.bootstrap))
        finally:
            with contextlib.suppress(broker.BrokerError):
                broker.resume_broker(run_dir)
            broker.stop_broker(run_dir)
