"""The one place that builds the toolkit's collaborators from settings."""

from __future__ import annotations

from dataclasses import dataclass

from biostream.codec import default_codec
from biostream.topics import Topics

from biostream_consumer.adapters.source import DatasetSource, DatasetTopics
from biostream_consumer.adapters.store import LocalCopy
from biostream_consumer.settings import ConsumerSettings


@dataclass
class Consumer:
    store: LocalCopy
    source: DatasetSource

    def close(self) -> None:
        self.store.close()


def build(settings: ConsumerSettings) -> Consumer:
    topics = Topics(settings.topic_prefix)
    store = LocalCopy(settings.database)
    source = DatasetSource(
        settings.kafka_settings(),
        DatasetTopics(topics.curated(settings.dataset), topics.notices(settings.dataset)),
        default_codec(),
        store,
        client_id=settings.client_id,
        max_records=settings.max_records,
        read_timeout_s=settings.read_timeout_s,
    )
    return Consumer(store, source)
