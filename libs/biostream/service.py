"""The run loop every service's ``__main__`` shares: metrics server, signals, processor.

Services do not create topics: provisioning is the operator's (Strimzi ``KafkaTopic`` in deploy,
``biostream-dev topics`` locally), so a service never needs the Create permission.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from biostream.logs import get_logger
from biostream.observability import HealthServer
from biostream.processor import TransactionalProcessor
from biostream.settings import ServiceSettings


@dataclass
class RunnableService:
    name: str
    settings: ServiceSettings
    registry: CollectorRegistry
    processor: TransactionalProcessor


async def run_until_stopped(service: RunnableService, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); exits with the processor's error if it fails."""
    log = get_logger(service.name)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            break
        installed.append(sig)
    # Serving (not ready) before the processor starts: during a long state restore the probe
    # sees 503, not a refused connection (D22).
    health = HealthServer(
        service.registry,
        lambda: service.processor.ready,
        host=service.settings.metrics_host,
        port=service.settings.metrics_port,
    )
    health.start()
    log.info("started", port=health.port)
    try:
        await service.processor.run(stop)
    finally:
        health.stop()
        for sig in installed:  # a caller's loop (tests) keeps its own Ctrl-C
            loop.remove_signal_handler(sig)
        log.info("stopped")
