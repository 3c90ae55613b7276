"""The one place that builds the audit service's collaborators."""

from __future__ import annotations

from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes, dead_letter_sealer
from biostream.observability import ProcessorMetrics
from biostream.processor import ProcessorConfig, TransactionalProcessor
from biostream.schemas import SchemaRegistry
from biostream.service import RunnableService
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

from audit.domain.checkpoint import Signer, private_key_from_secret
from audit.domain.ledger import CheckpointPolicy
from audit.handlers import SERVICE, AuditMetrics, LedgerAppendHandler
from audit.settings import AuditSettings


def build(settings: AuditSettings, registry: CollectorRegistry | None = None) -> RunnableService:
    registry = registry or CollectorRegistry()
    topics = Topics(settings.topic_prefix)
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes(SERVICE, settings.principal, codec, topics, dead_letter_sealer(settings))
    handler = LedgerAppendHandler(
        codec,
        topics,
        envelopes,
        AuditMetrics.create(registry),
        Signer(private_key_from_secret(settings.signing_key())),
        CheckpointPolicy(settings.checkpoint_every_entries, settings.checkpoint_every_seconds),
    )

    processor = TransactionalProcessor(
        ProcessorConfig.for_service(settings, SERVICE, [topics.audit_events]),
        handler,
        # A failure must not write an audit event about itself into the stream it is chaining.
        lambda message, error, now: [
            envelopes.dead_letter(
                message, "AUDIT_INTERNAL_ERROR", f"unexpected {type(error).__name__}", now
            )
        ],
        ProcessorMetrics.create(registry, SERVICE),
        on_idle=handler.tick,
    )
    return RunnableService(SERVICE, settings, registry, processor)
