"""The one place that builds the review desk's collaborators."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

from aiohttp import web
from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes
from biostream.logs import get_logger
from biostream.observability import HealthServer
from biostream.schemas import SchemaRegistry
from biostream.settings import read_secret
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

from review.adapters.stream import Publisher, StreamFollower
from review.adapters.web import DeskApp
from review.domain.auth import Sessions, parse_users
from review.handlers import SERVICE, ReviewHandler, ReviewMetrics
from review.settings import ReviewSettings


def build_handler(settings: ReviewSettings, registry: CollectorRegistry) -> ReviewHandler:
    topics = Topics(settings.topic_prefix)
    codec = AvroCodec(SchemaRegistry())
    # The desk never dead-letters (it only reads); its envelopes are for audit events.
    envelopes = Envelopes(SERVICE, settings.principal, codec, topics)
    return ReviewHandler(codec, topics, envelopes, ReviewMetrics.create(registry))


def load_users(settings: ReviewSettings) -> dict[str, str]:
    if settings.users_file is not None:
        return parse_users(settings.users_file.read_text(encoding="utf-8"))
    if settings.users is not None:
        return parse_users(settings.users.get_secret_value())
    raise ValueError("no steward accounts: set BIOSTREAM_USERS_FILE or BIOSTREAM_USERS")


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


def build(settings: ReviewSettings, registry: CollectorRegistry | None = None) -> ReviewService:
    registry = registry or CollectorRegistry()
    handler = build_handler(settings, registry)
    sessions = Sessions(
        read_secret(settings.session_key, settings.session_key_file, "session_key"),
        settings.session_lifetime_s,
    )
    client = f"{settings.topic_prefix}{SERVICE}-{settings.instance_id}"
    publisher = Publisher(settings.kafka, client)
    # The desk's view is rebuilt from its topics at every start: a state restore (D22, D26).
    follower = StreamFollower(settings.kafka, client, handler, limit_s=settings.restore_timeout_s)
    return ReviewService(
        settings=settings,
        registry=registry,
        handler=handler,
        follower=follower,
        publisher=publisher,
        desk_app=DeskApp(
            handler,
            publisher,
            load_users(settings),
            sessions,
            settings.secure_cookie,
            ready=lambda: follower.ready,
        ),
    )


async def run_until_signalled(service: ReviewService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)
