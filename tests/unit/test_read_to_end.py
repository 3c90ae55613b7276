"""biostream.restore.read_to_end with an in-memory consumer: a read ends at the end offsets taken
at its start, or fails naming where it stopped; never after some empty polls (D26)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from biostream.restore import READ_SETTING, Lag, ReadStalled, read_to_end
from biostream.testing import FakePartitionReader

A0 = TopicPartition("ledger", 0)
A1 = TopicPartition("ledger", 1)
OTHER = TopicPartition("notices", 0)
LIMIT_S = 30.0


def records(n: int, tag: str = "v") -> list[tuple[bytes | None, bytes | None] | None]:
    return [(f"k{i}".encode(), f"{tag}{i}".encode()) for i in range(n)]


async def read(reader: FakePartitionReader, *partitions: TopicPartition, **kw: Any) -> list[Any]:
    seen = []
    async for batch in read_to_end(
        reader,
        list(partitions) or [A0, A1],
        LIMIT_S,
        "the ledger",
        clock=reader.clock,
        sleep=reader.sleep,
        **kw,
    ):
        for tp, got in batch.items():
            assert all(r.topic == tp.topic and r.partition == tp.partition for r in got)
            seen += got
    return seen


def values(seen: list[Any], tp: TopicPartition) -> list[bytes]:
    return [r.value for r in seen if (r.topic, r.partition) == (tp.topic, tp.partition)]


async def test_every_record_up_to_the_end_of_every_partition_in_offset_order() -> None:
    reader = FakePartitionReader({A0: records(7), A1: records(3, "w")})
    seen = await read(reader)
    assert values(seen, A0) == [f"v{i}".encode() for i in range(7)]
    assert values(seen, A1) == [b"w0", b"w1", b"w2"]
    assert [await reader.position(tp) for tp in (A0, A1)] == [7, 3]


async def test_a_broker_silent_for_longer_than_ten_empty_polls_is_waited_for() -> None:
    # The old readers gave up after 10 or 20 empty polls and reported the part they had read.
    reader = FakePartitionReader({A0: records(100), A1: []})
    seen = []
    async for batch in read_to_end(reader, [A0, A1], LIMIT_S, "the ledger", clock=reader.clock):
        seen += batch.get(A0, [])
        if len(seen) == 2:
            reader.silent_polls = 12  # 19 s of silence (back-off to 2 s): inside the limit
    assert len(seen) == 100
    assert reader.now > 10  # it did wait through the silence


async def test_silence_past_the_limit_fails_naming_topic_partition_position_and_end() -> None:
    reader = FakePartitionReader({A0: records(100), A1: records(4)})
    seen = []
    with pytest.raises(ReadStalled) as raised:
        async for batch in read_to_end(reader, [A0, A1], LIMIT_S, "the ledger", clock=reader.clock):
            seen += [r for rs in batch.values() for r in rs]
            reader.silent_forever = True
    stall = raised.value
    assert stall.lagging[0] == Lag("ledger", 0, 2, 100)
    assert "ledger/0 at 2 of 100" in str(stall)
    assert READ_SETTING in str(stall) and "the ledger stalled" in str(stall)
    assert LIMIT_S <= stall.stalled_s < LIMIT_S + 3  # gives up on time, not after a long poll
    assert len(seen) < 104


async def test_a_slow_read_that_keeps_moving_is_never_cut_off() -> None:
    # One record per poll, each poll after a long silence: the whole read takes far longer than
    # the limit, but no silence is as long as the limit.
    reader = FakePartitionReader({A0: records(20)}, per_poll=1)
    seen = []
    async for batch in read_to_end(reader, [A0], LIMIT_S, "the ledger", clock=reader.clock):
        seen += batch[A0]
        reader.silent_polls = 4  # 200 + 400 + 800 + 1600 ms of back-off
    assert len(seen) == 20
    assert reader.now > LIMIT_S


async def test_records_written_after_the_start_are_not_part_of_the_read() -> None:
    reader = FakePartitionReader({A0: records(4)}, per_poll=10)
    seen = []
    async for batch in read_to_end(reader, [A0], LIMIT_S, "the ledger", clock=reader.clock):
        seen += batch[A0]
        for n in range(4, 9):
            reader.append(A0, (b"later", f"v{n}".encode()))
    # The fake hands out the later records in the same fetch: the reader drops them and seeks
    # back, so whoever goes on from here reads them next.
    assert [r.offset for r in seen] == [0, 1, 2, 3]
    assert await reader.position(A0) == 4


async def test_a_log_ending_in_transaction_markers_is_done_by_position() -> None:
    # Offsets 3 and 4 hold markers (no record): the last record is at 2, the end offset is 5. A
    # reader that compared the last offset it saw with the end would wait for ever.
    reader = FakePartitionReader({A0: [*records(3), None, None], A1: [None]})
    seen = await read(reader)
    assert [r.offset for r in seen] == [0, 1, 2]
    assert [await reader.position(tp) for tp in (A0, A1)] == [5, 1]
    assert reader.now < 1.0


async def test_empty_partitions_and_no_partitions_are_done_at_once() -> None:
    reader = FakePartitionReader({A0: [], A1: []})
    assert await read(reader) == []
    assert reader.polls == 0
    assert [b async for b in read_to_end(reader, [], LIMIT_S, "nothing")] == []


async def test_reads_from_the_consumers_own_positions() -> None:
    reader = FakePartitionReader({A0: records(6)})
    reader.seek(A0, 4)  # a local copy resuming where it stopped
    assert [r.offset for r in await read(reader, A0)] == [4, 5]


async def test_other_assigned_partitions_are_paused_meanwhile_and_resumed_after() -> None:
    reader = FakePartitionReader({A0: records(5), OTHER: records(5, "n")})
    paused_during: list[set[TopicPartition]] = []
    async for _ in read_to_end(reader, [A0], LIMIT_S, "data", clock=reader.clock):
        paused_during.append(reader.paused())
    assert paused_during and all(OTHER in p for p in paused_during)
    assert reader.paused() == set()
    assert await reader.position(OTHER) == 0  # nothing of it was read


async def test_a_partition_paused_by_the_caller_stays_paused() -> None:
    reader = FakePartitionReader({A0: records(3), OTHER: records(3)})
    reader.pause(OTHER)
    await read(reader, A0)
    assert reader.paused() == {OTHER}


async def test_end_offsets_are_retried_while_the_broker_is_unreachable() -> None:
    reader = FakePartitionReader({A0: records(3)})
    reader.end_offset_failures = [KafkaConnectionError(), KafkaConnectionError()]
    assert len(await read(reader, A0)) == 3


async def test_end_offsets_unanswered_past_the_limit_fail() -> None:
    reader = FakePartitionReader({A0: records(3)})
    reader.end_offset_failures = [KafkaConnectionError()] * 1000
    with pytest.raises(ReadStalled, match="the end offsets were never answered"):
        await read(reader, A0)


async def test_an_error_that_is_not_transient_is_raised_as_it_is() -> None:
    reader = FakePartitionReader({A0: records(3)})
    reader.end_offset_failures = [TopicAuthorizationFailedError()]
    with pytest.raises(TopicAuthorizationFailedError):
        await read(reader, A0)
