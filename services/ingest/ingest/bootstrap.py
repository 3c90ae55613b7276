"""The one place that builds ingest's collaborators."""

from __future__ import annotations

from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes, dead_letter_sealer
from biostream.observability import ProcessorMetrics
from biostream.processor import ProcessorConfig, TransactionalProcessor
from biostream.schemas import SchemaRegistry
from biostream.sealing import Sealer
from biostream.service import RunnableService
from biostream.settings import read_secret
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

from ingest.adapters.mappings import CsvMappingDirectory, quiet_parser_logs
from ingest.handlers import SERVICE, FeedMessageHandler, IngestMetrics
from ingest.settings import IngestSettings
from ingest.state import SeenMessages


def build(settings: IngestSettings, registry: CollectorRegistry | None = None) -> RunnableService:
    registry = registry or CollectorRegistry()
    topics = Topics(settings.topic_prefix)
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes(SERVICE, settings.principal, codec, topics, dead_letter_sealer(settings))
    key = read_secret(settings.patient_ref_key, settings.patient_ref_key_file, "patient_ref_key")
    quiet_parser_logs()
    handler = FeedMessageHandler(
        codec,
        topics,
        envelopes,
        key,
        IngestMetrics.create(registry),
        CsvMappingDirectory(settings.csv_mapping_dir),
        Sealer(read_secret(settings.rrn_key, settings.rrn_key_file, "rrn_key")),
        SeenMessages(settings.dedup_window_days),
    )

    processor = TransactionalProcessor(
        ProcessorConfig.for_service(settings, SERVICE, [], input_pattern=topics.feed_pattern),
        handler,
        envelopes.failure_handler("INGEST_INTERNAL_ERROR", topics.hospital_of_feed),
        ProcessorMetrics.create(registry, SERVICE),
        on_idle=handler.on_idle,
        audit_batching=envelopes.audit_batching(),
    )
    return RunnableService(SERVICE, settings, registry, processor)
