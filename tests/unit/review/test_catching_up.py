"""The desk is ready only once it has read its topics to the end offsets they had at its start, and
stops if the broker makes no progress for the limit; until ready every page, the API and the
decision form answer 503 with a message saying why (D26). The consumer is an in-memory fake."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import TopicPartition
from biostream import restore
from biostream.codec import AvroCodec
from biostream.contracts import REVIEW_TASK
from biostream.restore import ReadStalled
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.testing import FakePartitionReader
from biostream.web_auth import Sessions, hash_password
from prometheus_client import CollectorRegistry
from review.adapters.stream import Publisher, StreamFollower
from review.adapters.web import DeskApp
from review.bootstrap import build_handler
from review.handlers import ReviewHandler
from review.settings import ReviewSettings

# Clients built but never started: no broker, so no credentials either.
NEVER_CONNECTED = KafkaSettings(security_protocol="PLAINTEXT", allow_plaintext=True)

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
CODEC = AvroCodec(SchemaRegistry())
TASKS = 9


def handler() -> ReviewHandler:
    return build_handler(ReviewSettings(topic_prefix="t."), CollectorRegistry())


def task(n: int) -> bytes:
    return CODEC.encode(
        REVIEW_TASK,
        {
            "task_id": f"review/pr_{n}/0", "created_at": T0, "record_id": f"H001/M{n}/0",
            "patient_ref": f"pr_{n}", "hospital": "H001", "provisional_person_id": f"P{n}",
            "candidate_person_ids": ["P0"], "score": 2.5, "reason": "FAMILY_SAME",
            "comparisons": [],
        },
    )  # fmt: skip


def fake_topics(desk: ReviewHandler) -> FakePartitionReader:
    logs: dict[TopicPartition, list[tuple[bytes | None, bytes | None] | None]] = {
        TopicPartition(topic, 0): [] for topic in desk.input_topics
    }
    logs[TopicPartition(desk.topics.review_tasks, 0)] = [
        (f"pr_{n}".encode(), task(n)) for n in range(TASKS)
    ]
    return FakePartitionReader(logs, per_poll=2)


@pytest.fixture
def fake_open(monkeypatch: pytest.MonkeyPatch) -> list[FakePartitionReader]:
    opened: list[FakePartitionReader] = []

    async def open_reader(
        _kafka: Any, _client: Any, topics: list[str], *_a: Any, **_k: Any
    ) -> tuple[FakePartitionReader, list[TopicPartition]]:
        reader = opened[0]
        return reader, [TopicPartition(t, 0) for t in topics]

    monkeypatch.setattr(restore, "open_reader", open_reader)
    return opened


async def test_ready_only_with_every_task_read_however_long_the_broker_is_silent(
    fake_open: list[FakePartitionReader],
) -> None:
    desk = handler()
    reader = fake_topics(desk)
    reader.silent_polls = 30  # 50 s without an answer before the first records: inside 300 s
    fake_open.append(reader)
    follower = StreamFollower(NEVER_CONNECTED, "c", desk, monotonic=reader.clock)
    await follower.run(asyncio.Event(), until_caught_up=True)
    assert follower.ready
    assert len(desk.desk.tasks) == TASKS
    assert reader.now > 40 and reader.stopped


async def test_no_progress_for_the_limit_stops_the_desk_unready(
    fake_open: list[FakePartitionReader],
) -> None:
    desk = handler()
    reader = fake_topics(desk)
    reader.answer_polls = 1  # one batch, then the broker stops answering
    fake_open.append(reader)
    follower = StreamFollower(NEVER_CONNECTED, "c", desk, limit_s=20.0, monotonic=reader.clock)
    with pytest.raises(ReadStalled, match=r"t\.linkage\.review-tasks/0 at 2 of 9"):
        await follower.run(asyncio.Event())
    assert not follower.ready
    assert reader.stopped


async def desk_client(
    ready: list[bool],
) -> TestClient[aiohttp.web.Request, aiohttp.web.Application]:
    password = secrets.token_urlsafe(8)
    app = DeskApp(
        handler(),
        Publisher(NEVER_CONNECTED, "c"),
        {"steward": hash_password(password)},
        Sessions(secrets.token_bytes(32), 3600),
        secure_cookie=False,
        ready=lambda: ready[0],
    )
    client = TestClient(TestServer(app.app()))
    await client.start_server()
    return client


async def test_pages_api_and_decisions_answer_503_until_caught_up() -> None:
    ready = [False]
    client = await desk_client(ready)
    try:
        for path in ("/", "/task?id=review/pr_1/0", "/?hospital=H001"):
            answer = await client.get(path, allow_redirects=False)
            assert answer.status == 503
            assert "still reading its topics" in await answer.text()
            assert answer.headers["Retry-After"] == "5"
            assert answer.headers["Cache-Control"] == "no-store"
        answer = await client.get("/api/tasks")
        assert answer.status == 503
        assert (await answer.json())["error"] == "catching up"
        answer = await client.post("/decide", data={"task_id": "x"}, allow_redirects=False)
        assert answer.status == 503
        assert (await client.get("/login")).status == 200  # signing in shows nothing read

        ready[0] = True
        answer = await client.get("/", allow_redirects=False)
        assert (answer.status, answer.headers["Location"]) == (303, "/login")
        assert (await client.get("/api/tasks")).status == 401
    finally:
        await client.close()
