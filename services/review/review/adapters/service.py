"""The running desk: its stream follower, its pages and its metrics and health server, until
stopped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from biostream.logs import get_logger
from biostream.observability import HealthServer
from prometheus_client import CollectorRegistry

from review.adapters.stream import Publisher, StreamFollower
from review.adapters.web import DeskApp
from review.handlers import SERVICE, ReviewHandler
from review.settings import ReviewSettings


@dataclass
class ReviewService:
    settings: ReviewSettings
    registry: CollectorRegistry
    handler: ReviewHandler
    follower: StreamFollower
    publisher: Publisher
    desk_app: DeskApp
    web_port: int = 0  # the bound ports once running
    metrics_port: int = 0

    @property
    def ready(self) -> bool:
        return self.follower.ready

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        """Follow the topics and serve the pages until ``stop``; fails if the stream fails."""
        log = get_logger(SERVICE)
        health = HealthServer(
            self.registry,
            lambda: self.ready,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
        )
        health.start()
        self.metrics_port = health.port
        await self.publisher.start()
        runner = web.AppRunner(self.desk_app.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.web_host, self.settings.web_port)
        await site.start()
        self.web_port = int(runner.addresses[0][1])
        log.info("started", port=self.web_port)
        if started is not None:
            started.set()
        follow = asyncio.create_task(self.follower.run(stop))
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({follow, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if follow in done:
                follow.result()  # the stream failed: exit with its error
        finally:
            stop.set()
            stopped.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await runner.cleanup()
            await self.publisher.stop()
            health.stop()
            log.info("stopped")
