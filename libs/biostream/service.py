"""The run loop every service's ``run`` command shares: metrics server, signals, processor.

Services do not create topics: provisioning is the operator's (Strimzi ``KafkaTopic`` in deploy,
``biostream-dev topics`` locally), so a service never needs the Create permission.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry

from biostream.logs import get_logger
from biostream.observability import HealthServer
from biostream.processor import TransactionalProcessor
from biostream.settings import ServiceSettings


class Runnable(Protocol):
    """A built service: runs until ``stop`` is set, or raises the error that stopped it."""

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class RunnableService:
    """A stream service: its transactional processor behind a metrics and health server."""

    name: str
    settings: ServiceSettings
    registry: CollectorRegistry
    processor: TransactionalProcessor

    async def run(self, stop: asyncio.Event) -> None:
        """The processor until ``stop``; exits with the processor's error if it fails."""
        log = get_logger(self.name)
        # Serving (not ready) before the processor starts: during a long state restore the
        # probe sees 503, not a refused connection (D22).
        health = HealthServer(
            self.registry,
            lambda: self.processor.ready,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
        )
        health.start()
        log.info("started", port=health.port)
        try:
            await self.processor.run(stop)
        finally:
            health.stop()
            log.info("stopped")


async def run_until_stopped(service: Runnable, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); exits with the service's error if it fails."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            break
        installed.append(sig)
    try:
        await service.run(stop)
    finally:
        for sig in installed:  # a caller's loop (tests) keeps its own Ctrl-C
            loop.remove_signal_handler(sig)
