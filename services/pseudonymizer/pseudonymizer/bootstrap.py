"""The one place that builds the pseudonymizer's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

from biostream.holdback import HoldPolicy
from biostream.kit import Parts, stream_service
from biostream.processor import HoldForReady
from biostream.service import RunnableService
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
    def handler(kit: Parts) -> PseudonymizerHandler:
        return PseudonymizerHandler(
            kit.codec,
            kit.topics,
            kit.envelopes,
            load_releases(settings),
            PseudonymizerMetrics.create(kit.registry),
        )

    def hold(kit: Parts, handler: PseudonymizerHandler) -> HoldForReady | None:
        """D18: a clinical record waits in memory for its link decision, up to the setting."""
        if not settings.hold_for_decision_ms:
            return None
        seconds = settings.hold_for_decision_ms / 1000
        policy = HoldPolicy(frozenset({kit.topics.clinical_records}), seconds)
        return HoldForReady(policy, handler.decision_known)

    return stream_service(
        SERVICE,
        settings,
        handler,
        lambda topics: [topics.clinical_records, topics.link_decisions, topics.consent_events],
        registry,
        on_failure="PSEUDONYMIZER_INTERNAL_ERROR",
        hold=hold,
    )
