"""Watches the pipeline's topics from outside (read_committed, no consumer group) and counts.

Used by the demo to know when everything has flowed through, without a fixed sleep, and by the
tests to check what reached each topic.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import AIOKafkaConsumer
from biostream.codec import AvroCodec, default_codec
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    CURATED_RECORD,
    DATASET_NOTICE,
    DEAD_LETTER,
    IDENTITY_RECORD,
    LEDGER_CHECKPOINT,
    LEDGER_ENTRY,
    LINK_DECISION,
)
from biostream.envelopes import audit_events_in, ledger_events
from biostream.kafka import reader, topic_partitions
from biostream.settings import KafkaSettings
from biostream.topics import Topics


@dataclass
class PipelineView:
    """Everything read so far, decoded. Small demo and test feeds fit in memory comfortably."""

    identity: list[dict[str, Any]] = field(default_factory=list)
    clinical: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    curated: list[dict[str, Any]] = field(default_factory=list)
    audit_events: list[dict[str, Any]] = field(default_factory=list)
    audit_messages: int = 0  # messages on the audit topic: single events or a batch of them
    ledger: list[dict[str, Any]] = field(default_factory=list)
    raw_curated: list[bytes] = field(default_factory=list)  # curated and notice topics, raw
    notices: list[dict[str, Any]] = field(default_factory=list)
    datasets: int = 1
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    def ledger_event_ids(self) -> Counter[str]:
        """The ids of the audit events inside the ledger's entries (an entry holds one event or
        a service transaction's batch of them), each with how often it was chained."""
        codec = default_codec()
        return Counter(event["event_id"] for _, event in ledger_events(codec, self.ledger))

    def audit_actions(self) -> Counter[str]:
        return Counter(event["action"] for event in self.audit_events)

    def ingest_processed(self) -> int:
        actions = self.audit_actions()
        return sum(
            actions[a]
            for a in ("ingest.accepted", "ingest.rejected", "ingest.duplicate", "ingest.failed")
        )

    def linkage_processed(self) -> int:
        actions = self.audit_actions()
        return sum(
            actions[a]
            for a in ("linkage.linked", "linkage.confirmed", "linkage.rejected", "linkage.failed")
        )

    def clinical_settled(self) -> int:
        """(clinical record, dataset) pairs released, withheld, suppressed or held for
        k-anonymity (a documented state that may last); records awaiting a link decision are not
        settled yet."""
        settled = set()
        for event in self.audit_events:
            action = event["action"]
            if action in TERMINAL_ACTIONS or (
                action == "pseudonymizer.held" and event["reason_code"] == "BELOW_K"
            ):
                settled.add((event["inputs"][0], event["dataset"]))
        return len(settled)

    def persons(self) -> int:
        latest: dict[str, tuple[int, str]] = {}
        for decision in self.decisions:
            ref = decision["patient_ref"]
            if ref not in latest or decision["sequence"] > latest[ref][0]:
                latest[ref] = (decision["sequence"], decision["person_id"])
        return len({person for _, person in latest.values()})

    def settled(self, published: int) -> bool:
        return (
            self.ingest_processed() >= published
            and self.linkage_processed() >= len(self.identity)
            and self.clinical_settled() >= len(self.clinical) * self.datasets
            and len(self.ledger) >= self.audit_messages
        )

    def progress(self, published: int) -> str:
        return (
            f"ingest {self.ingest_processed()}/{published} | linkage {self.linkage_processed()}/"
            f"{len(self.identity)} | released {self.clinical_settled()}/"
            f"{len(self.clinical) * self.datasets} | "
            f"ledger {len(self.ledger)}/{self.audit_messages}"
        )


TERMINAL_ACTIONS = frozenset(
    {"pseudonymizer.released", "pseudonymizer.withheld", "pseudonymizer.suppressed"}
)


class Interrupted(Exception):
    """The user asked to stop (SIGINT or SIGTERM)."""


class PipelineObserver:
    def __init__(
        self, kafka: KafkaSettings, topics: Topics, codec: AvroCodec, datasets: list[str]
    ) -> None:
        self.codec = codec
        self.view = PipelineView()
        self._audit_topics = set(topics.audit_event_topics)
        self._kafka = kafka
        self._consumer: AIOKafkaConsumer = reader(kafka, "biostream-observer")
        self._routes: dict[str, tuple[str, list[dict[str, Any]]]] = {
            topics.identity_records: (IDENTITY_RECORD, self.view.identity),
            topics.clinical_records: (CLINICAL_RECORD, self.view.clinical),
            topics.dead_letters: (DEAD_LETTER, self.view.dead_letters),
            topics.link_decisions: (LINK_DECISION, self.view.decisions),
            **{t: (AUDIT_EVENT, self.view.audit_events) for t in topics.audit_event_topics},
            topics.audit_ledger: (LEDGER_ENTRY, self.view.ledger),
            topics.audit_checkpoints: (LEDGER_CHECKPOINT, self.view.checkpoints),
        }
        self._curated_topics = {topics.curated(d) for d in datasets}
        for name in self._curated_topics:
            self._routes[name] = (CURATED_RECORD, self.view.curated)
        for dataset in datasets:
            self._routes[topics.notices(dataset)] = (DATASET_NOTICE, self.view.notices)
            self._curated_topics.add(topics.notices(dataset))
        self.view.datasets = max(1, len(datasets))

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await topic_partitions(self._kafka, list(self._routes))
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = 500) -> int:
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        count = 0
        for tp, records in batch.items():
            contract, sink = self._routes[tp.topic]
            if tp.topic in self._audit_topics:
                for record in records:
                    sink.extend(
                        cast(list[dict[str, Any]], audit_events_in(self.codec, record.value or b""))
                    )
                    self.view.audit_messages += 1
                count += len(records)
                continue
            for record in records:
                sink.append(self.codec.decode(record.value, contract))
                if tp.topic in self._curated_topics:
                    self.view.raw_curated.append(record.value)
                count += 1
        return count

    async def wait_until_settled(
        self,
        published: int,
        timeout_s: float,
        on_progress: Any = None,
        stop: asyncio.Event | None = None,
    ) -> PipelineView:
        """Polls until every published message is accounted for at every stage, twice in a row.

        ``stop`` ends the wait early (Ctrl-C): task cancellation alone is not enough, because the
        Kafka client swallows CancelledError in places while it fetches.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        stable = 0
        while loop.time() < deadline:
            if stop is not None and stop.is_set():
                raise Interrupted("stopped while waiting for the pipeline to settle")
            got = await self.poll()
            if on_progress is not None:
                on_progress(self.view.progress(published))
            stable = stable + 1 if got == 0 and self.view.settled(published) else 0
            if stable >= 2:
                return self.view
        raise TimeoutError(
            f"pipeline did not settle in {timeout_s:.0f}s: {self.view.progress(published)}"
        )
