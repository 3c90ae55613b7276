"""The running access service: the replay and follower of ``access.events``, the JSON API, the
expiry sweep and the metrics and health server, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from functools import partial

from aiohttp import web
from biostream.logs import get_logger
from biostream.observability import HealthServer
from prometheus_client import CollectorRegistry

from access.adapters.risk_reports import ReportFollower
from access.adapters.stream import Clock, CommandDesk, EventFollower, TransactionalWriter, utc_now
from access.adapters.web import AccessApi
from access.handlers import SERVICE, AccessHandler
from access.settings import AccessSettings


@dataclass
class AccessService:
    settings: AccessSettings
    registry: CollectorRegistry
    follower: EventFollower
    writer: TransactionalWriter
    desk: CommandDesk
    api: AccessApi
    clock: Clock = utc_now
    web_port: int = 0  # the bound ports once running
    metrics_port: int = 0
    reports: ReportFollower | None = None  # D48: the pseudonymizer's risk reports

    @property
    def ready(self) -> bool:
        return self.follower.ready

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        """Replay, then follow, serve and sweep until ``stop``; fails if the stream fails."""
        log = get_logger(SERVICE)
        health = HealthServer(
            self.registry, lambda: self.ready,
            host=self.settings.metrics_host, port=self.settings.metrics_port,
        )  # fmt: skip
        health.start()
        self.metrics_port = health.port
        await self.writer.start()
        runner = web.AppRunner(self.api.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.web_host, self.settings.web_port)
        await site.start()
        self.web_port = int(runner.addresses[0][1])
        log.info("started", port=self.web_port)
        if started is not None:
            started.set()
        tasks = {
            asyncio.create_task(self.follower.run(stop)),
            asyncio.create_task(self._sweep(stop)),
        }
        if self.reports is not None:
            tasks.add(asyncio.create_task(self.reports.run(stop, lambda: self.ready)))
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(tasks | {stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopped}:
                task.result()  # the stream or the sweep failed: exit with its error
        finally:
            stop.set()
            stopped.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
            await self.writer.stop()
            health.stop()
            log.info("stopped")

    async def _sweep(self, stop: asyncio.Event) -> None:
        """D45: the expirer: every ``expiry_check_s`` (once caught up), each approval past its
        end date gets its ``expired`` event."""
        log = get_logger(SERVICE)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.expiry_check_s)
            if stop.is_set() or not self.ready:
                continue
            now = self.clock()
            for application_id in self.desk.handler.due_expiries(now):
                decided = await self.desk.run(
                    partial(AccessHandler.expire, application_id=application_id, now=now)
                )
                log.info("expired", application_id=decided.application_id)
