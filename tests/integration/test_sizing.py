"""The sizing benchmark's measurement on the real broker (D21): segment bytes from
DescribeLogDirs, committed records, and what compaction keeps of a changelog."""

from __future__ import annotations

import pytest
from biostream.kafka import ensure_topics, plain_producer
from biostream.settings import KafkaSettings
from biostream.topics import COMPACTED, FOREVER, TopicSpec
from biostream_harness.bench.sizing import measure

pytestmark = pytest.mark.integration


async def test_bytes_records_and_live_state_are_measured_on_the_broker(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    specs = [
        TopicSpec(f"{topic_prefix}feed.H001", 1, FOREVER),
        TopicSpec(f"{topic_prefix}feed.H002", 1, FOREVER),
        TopicSpec(f"{topic_prefix}linkage.state-changelog", 1, COMPACTED),
    ]
    await ensure_topics(kafka, specs)
    producer = plain_producer(kafka, "test-sizing")
    await producer.start()
    try:
        for n in range(30):
            await producer.send(specs[0].name, b"x" * 100, key=b"k%02d" % n)
        for n in range(10):
            await producer.send(specs[1].name, b"y" * 100, key=b"k%02d" % n)
        for n in range(40):  # four keys, each written ten times: compaction keeps four
            await producer.send(specs[2].name, b"z" * 98, key=b"s%d" % (n % 4))
        await producer.flush()
    finally:
        await producer.stop()

    sizes = {s.name: s for s in await measure(kafka, topic_prefix, specs)}
    assert set(sizes) == {"feed.*", "linkage.state-changelog"}
    feeds, state = sizes["feed.*"], sizes["linkage.state-changelog"]
    assert (feeds.records, feeds.payload_bytes) == (40, 30 * 103 + 10 * 103)
    assert feeds.retention == "forever" and feeds.live_bytes == feeds.disk_bytes
    # On disk: the payload plus record and batch framing.
    assert feeds.disk_bytes > feeds.payload_bytes
    assert (state.records, state.payload_bytes) == (40, 40 * 100)
    assert state.retention == "compacted"
    assert state.live_bytes == round(state.disk_bytes * 4 / 40)
