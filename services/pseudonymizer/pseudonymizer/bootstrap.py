"""The one place that builds the pseudonymizer's collaborators."""

from __future__ import annotations

from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes
from biostream.observability import ProcessorMetrics
from biostream.processor import ProcessorConfig, TransactionalProcessor
from biostream.schemas import SchemaRegistry
from biostream.service import RunnableService
from biostream.settings import read_secret
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

from pseudonymizer.domain.policy import load_policy
from pseudonymizer.handlers import SERVICE, JoinHandler, PseudonymizerMetrics
from pseudonymizer.settings import PseudonymizerSettings


def build(
    settings: PseudonymizerSettings, registry: CollectorRegistry | None = None
) -> RunnableService:
    registry = registry or CollectorRegistry()
    topics = Topics(settings.topic_prefix)
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes(SERVICE, settings.principal, codec, topics)
    policy = load_policy(settings.policy_file)
    key = read_secret(settings.pseudonym_key, settings.pseudonym_key_file, "pseudonym_key")
    handler = JoinHandler(
        codec, topics, envelopes, policy, key, PseudonymizerMetrics.create(registry)
    )
    processor = TransactionalProcessor(
        ProcessorConfig(
            kafka=settings.kafka,
            app_id=f"{settings.topic_prefix}{SERVICE}",
            instance_id=settings.instance_id,
            input_topics=[topics.clinical_records, topics.link_decisions],
            changelog_topic=topics.state(SERVICE),
            max_records=settings.batch_max_records,
            poll_timeout_ms=settings.poll_timeout_ms,
        ),
        handler,
        envelopes.failure_handler("PSEUDONYMIZER_INTERNAL_ERROR"),
        ProcessorMetrics.create(registry, SERVICE),
    )
    return RunnableService(SERVICE, settings, registry, processor)
