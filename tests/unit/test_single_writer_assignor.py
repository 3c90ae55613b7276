"""The single-writer assignor: all partitions to one member, sticky to the current writer."""

from __future__ import annotations

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from biostream.assignor import SingleWriterAssignor


class Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2} if topic == "in" else {0}


def meta(user_data: bytes = b"") -> ConsumerProtocolMemberMetadata:
    return ConsumerProtocolMemberMetadata(0, ["in", "merges"], user_data)


def owned(assignment: object) -> list[tuple[str, list[int]]]:
    return list(assignment.assignment)  # type: ignore[attr-defined]


def test_every_partition_goes_to_one_member() -> None:
    result = SingleWriterAssignor.assign(Cluster(), {"m-b": meta(), "m-a": meta(), "m-c": meta()})
    assert owned(result["m-a"]) == [("in", [0, 1, 2]), ("merges", [0])]
    assert owned(result["m-b"]) == [] and owned(result["m-c"]) == []


def test_the_current_writer_keeps_the_partitions_when_a_member_joins() -> None:
    result = SingleWriterAssignor.assign(Cluster(), {"m-a": meta(), "m-z": meta(b"writer")})
    assert owned(result["m-z"]) == [("in", [0, 1, 2]), ("merges", [0])]
    assert owned(result["m-a"]) == []
