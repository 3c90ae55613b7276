"""The one place that builds the pseudonymizer's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

from collections.abc import Callable

from biostream.holdback import HoldPolicy
from biostream.kit import Parts, stream_service
from biostream.processor import HoldForReady, Replay
from biostream.release_policies import TrustedBoardKeys, load_board_keys
from biostream.service import RunnableService
from biostream.settings import read_secret
from biostream.state import StateStore
from prometheus_client import CollectorRegistry

from pseudonymizer.adapters.broker_access import BrokerAccess
from pseudonymizer.adapters.keys import KeyStore
from pseudonymizer.approvals import KeySource
from pseudonymizer.domain.policy import load_policies
from pseudonymizer.domain.release import Keyed
from pseudonymizer.handlers import SERVICE, PseudonymizerHandler, PseudonymizerMetrics
from pseudonymizer.settings import PseudonymizerSettings


def load_keys(settings: PseudonymizerSettings) -> KeyStore:
    """The domain keys, and (D46) the root key that derives the keys of runtime approvals."""
    keys = KeyStore.load(settings.keys_dir, settings.pseudonym_keys)
    if settings.pseudonym_root_key is None and settings.pseudonym_root_key_file is None:
        return keys
    root = read_secret(
        settings.pseudonym_root_key, settings.pseudonym_root_key_file, "pseudonym root key"
    )
    return keys.with_root(root)


def load_releases(settings: PseudonymizerSettings) -> list[Keyed]:
    """Every policy file with its domain key (none if the directory has no policy file: the
    datasets then all come from the policy topic, D46). Raises PolicyError / KeyMaterialError
    naming the problem."""
    keys = load_keys(settings)
    topic_only = bool(settings.board_keys_dir or settings.board_keys)
    policies = load_policies(settings.policy_dir, allow_none=topic_only)
    return [Keyed(policy, keys.key(policy.key_id)) for policy in policies]


def load_board_keys_of(settings: PseudonymizerSettings) -> TrustedBoardKeys:
    """D46: the board keys that may sign policy versions. Raises BoardKeyError."""
    return load_board_keys(settings.board_keys_dir, settings.board_keys)


def build(
    settings: PseudonymizerSettings, registry: CollectorRegistry | None = None
) -> RunnableService:
    def handler(kit: Parts) -> PseudonymizerHandler:
        keys = load_keys(settings)
        return PseudonymizerHandler(
            kit.codec,
            kit.topics,
            kit.envelopes,
            load_releases(settings),
            PseudonymizerMetrics.create(kit.registry),
            load_board_keys_of(settings),
            KeySource(keys.has, keys.key),
        )

    def replay(kit: Parts, handler: PseudonymizerHandler) -> Replay:
        """D46: a dataset approved mid-stream receives the retained clinical records first."""
        return Replay(
            kit.topics.clinical_records,
            handler.replay_wanted,
            handler.replay,
            handler.replayed_to,
        )

    def hold(kit: Parts, handler: PseudonymizerHandler) -> HoldForReady | None:
        """D18: a clinical record waits in memory for its link decision, up to the setting."""
        if not settings.hold_for_decision_ms:
            return None
        seconds = settings.hold_for_decision_ms / 1000
        policy = HoldPolicy(frozenset({kit.topics.clinical_records}), seconds)
        return HoldForReady(policy, handler.decision_known)

    def on_commit(kit: Parts, handler: PseudonymizerHandler) -> Callable[[StateStore], None] | None:
        """D46: the project principals' ACLs follow the committed datasets."""
        if settings.acl_admin is None:
            return None
        access = BrokerAccess(settings.acl_admin, kit.topics)
        return lambda store: access.want(handler.committed(store))

    return stream_service(
        SERVICE,
        settings,
        handler,
        lambda topics: [
            topics.clinical_records,
            topics.link_decisions,
            topics.consent_events,
            topics.access_policies,
        ],
        registry,
        on_failure="PSEUDONYMIZER_INTERNAL_ERROR",
        hold=hold,
        on_idle=lambda handler: handler.on_idle,
        replay=replay,
        on_commit=on_commit,
    )
