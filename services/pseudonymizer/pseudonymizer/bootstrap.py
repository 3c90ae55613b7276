"""The one place that builds the pseudonymizer's collaborators."""

from __future__ import annotations

from biostream.codec import AvroCodec
from biostream.envelopes import Envelopes, dead_letter_sealer
from biostream.holdback import HoldPolicy
from biostream.observability import ProcessorMetrics
from biostream.processor import HoldForReady, ProcessorConfig, TransactionalProcessor
from biostream.schemas import SchemaRegistry
from biostream.service import RunnableService
from biostream.topics import Topics
from prometheus_client import CollectorRegistry

from pseudonymizer.adapters.keys import KeyStore
from pseudonymizer.domain.policy import load_policies
from pseudonymizer.domain.release import Keyed
from pseudonymizer.handlers import SERVICE, PseudonymizerHandler, PseudonymizerMetrics
from pseudonymizer.settings import PseudonymizerSettings


def load_releases(settings: PseudonymizerSettings) -> list[Keyed]:
    """Every policy with its domain key. Raises PolicyError / KeyMaterialError naming the problem."""
    keys = KeyStore.load(settings.keys_dir, settings.pseudonym_keys)
    return [Keyed(policy, keys.key(policy.key_id)) for policy in load_policies(settings.policy_dir)]


def build(
    settings: PseudonymizerSettings, registry: CollectorRegistry | None = None
) -> RunnableService:
    registry = registry or CollectorRegistry()
    topics = Topics(settings.topic_prefix)
    codec = AvroCodec(SchemaRegistry())
    envelopes = Envelopes(SERVICE, settings.principal, codec, topics, dead_letter_sealer(settings))
    handler = PseudonymizerHandler(
        codec, topics, envelopes, load_releases(settings), PseudonymizerMetrics.create(registry)
    )
    processor = TransactionalProcessor(
        ProcessorConfig.for_service(
            settings,
            SERVICE,
            [topics.clinical_records, topics.link_decisions, topics.consent_events],
        ),
        handler,
        envelopes.failure_handler("PSEUDONYMIZER_INTERNAL_ERROR"),
        ProcessorMetrics.create(registry, SERVICE),
        audit_batching=envelopes.audit_batching(),
        hold=(
            HoldForReady(
                HoldPolicy(
                    frozenset({topics.clinical_records}), settings.hold_for_decision_ms / 1000
                ),
                handler.decision_known,
            )
            if settings.hold_for_decision_ms
            else None
        ),
    )
    return RunnableService(SERVICE, settings, registry, processor)
