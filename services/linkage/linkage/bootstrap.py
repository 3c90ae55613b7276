"""The one place that builds linkage's collaborators."""

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

from linkage.domain.weights import Params, default_params
from linkage.handlers import SERVICE, LinkageHandler, LinkageMetrics
from linkage.settings import LinkageSettings


def build(settings: LinkageSettings, registry: CollectorRegistry | None = None) -> RunnableService:
    registry = registry or CollectorRegistry()
    topics = Topics(settings.topic_prefix)
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes(SERVICE, settings.principal, codec, topics, dead_letter_sealer(settings))
    key = read_secret(settings.person_key, settings.person_key_file, "person_key")
    params = (
        Params.from_json(settings.params_file.read_text(encoding="utf-8"))
        if settings.params_file
        else default_params()
    )
    rrn_sealer = Sealer(read_secret(settings.rrn_key, settings.rrn_key_file, "rrn_key"))
    handler = LinkageHandler(
        codec, topics, envelopes, key, params, LinkageMetrics.create(registry), rrn_sealer
    )
    processor = TransactionalProcessor(
        ProcessorConfig.for_service(
            settings,
            SERVICE,
            [topics.identity_records, topics.patient_merges, topics.review_decisions],
            # One person index, one writer: further instances are hot standbys (D-linkage-3).
            single_writer=True,
        ),
        handler,
        envelopes.failure_handler("LINKAGE_INTERNAL_ERROR"),
        ProcessorMetrics.create(registry, SERVICE),
        audit_batching=envelopes.audit_batching(),
    )
    return RunnableService(SERVICE, settings, registry, processor)
