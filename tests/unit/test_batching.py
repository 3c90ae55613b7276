"""The batched producer path must put every record where Kafka's default partitioner would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from biostream.batching import murmur2, partition_for
from hypothesis import given, settings
from hypothesis import strategies as st

# Reference values from Kafka's Java client test (UtilsTest.testMurmur2).
JAVA_CASES = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_matches_kafkas_java_reference() -> None:
    for data, signed in JAVA_CASES.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data


@settings(max_examples=2000)
@given(st.binary(max_size=80))
def test_murmur2_matches_aiokafka(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF


@settings(max_examples=500)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_partition_matches_default_partitioner(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
