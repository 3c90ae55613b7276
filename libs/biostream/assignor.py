"""Single writer: every input partition to one member of the group (D-linkage-3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)


class WriterStatus(Protocol):
    """What the assignor asks of its processor: does this member own the inputs now?"""

    holds_partitions: bool


class SingleWriterAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """D-linkage-3: every partition of every subscribed topic to one member: the current writer
    if there is one (sticky), else the smallest member id. The others get nothing and stand by."""

    name = "biostream-single-writer"
    version = 0
    processor: WriterStatus | None = None

    @classmethod
    def assign(
        cls, cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        current = sorted(m for m, meta in members.items() if meta.user_data == b"writer")
        writer = current[0] if current else min(members)
        topics = sorted({t for m in members.values() for t in m.subscription})
        owned = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {
            member: ConsumerProtocolMemberAssignment(
                cls.version, owned if member == writer else [], b""
            )
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        writer = cls.processor is not None and cls.processor.holds_partitions
        return ConsumerProtocolMemberMetadata(
            cls.version, list(topics), b"writer" if writer else b""
        )

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass
