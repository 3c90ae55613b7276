"""``topic_partitions`` gets past a broker's first metadata answer without brokers in it (a broker
just restarted or resumed after a pause), and still fails when the broker never answers so."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import NodeNotReadyError
from biostream import kafka
from biostream.settings import KafkaSettings


class FlakyAdmin:
    """An admin client whose first ``failures`` describes find no broker (shared count)."""

    calls = 0
    closed = 0

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def start(self) -> None:
        pass

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        FlakyAdmin.calls += 1
        if FlakyAdmin.calls <= self.failures:
            raise NodeNotReadyError("Attempt to send a request to node which is not ready")
        return [{"topic": t, "error_code": 0, "partitions": [{"partition": 0}]} for t in topics]

    async def close(self) -> None:
        FlakyAdmin.closed += 1


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[FlakyAdmin]:
    FlakyAdmin.calls = FlakyAdmin.closed = 0
    monkeypatch.setattr(kafka.asyncio, "sleep", _no_sleep)
    return FlakyAdmin


async def _no_sleep(_seconds: float) -> None:
    pass


async def test_a_first_answer_without_brokers_is_asked_again(
    admin: type[FlakyAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka, "admin_client", lambda *_: admin(failures=2))
    partitions = await kafka.topic_partitions(KafkaSettings(), ["a", "b"])
    assert partitions == [TopicPartition("a", 0), TopicPartition("b", 0)]
    assert (admin.calls, admin.closed) == (3, 3)  # every client it opened is closed


async def test_a_broker_that_never_lists_itself_still_fails(
    admin: type[FlakyAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka, "admin_client", lambda *_: admin(failures=99))
    with pytest.raises(NodeNotReadyError):
        await kafka.topic_partitions(KafkaSettings(), ["a"])
    assert admin.calls == 5 and admin.closed == 5
