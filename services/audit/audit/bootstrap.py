"""The one place that builds the audit service's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

from biostream.contract import FailureHandler
from biostream.kit import Parts, stream_service
from biostream.service import RunnableService
from prometheus_client import CollectorRegistry

from audit.adapters.signing_keys import load_keyring
from audit.domain.ledger import CheckpointPolicy
from audit.handlers import SERVICE, AuditMetrics, LedgerAppendHandler
from audit.settings import AuditSettings


def build(settings: AuditSettings, registry: CollectorRegistry | None = None) -> RunnableService:
    def handler(kit: Parts) -> LedgerAppendHandler:
        return LedgerAppendHandler(
            kit.codec,
            kit.topics,
            kit.envelopes,
            AuditMetrics.create(kit.registry),
            load_keyring(settings),
            CheckpointPolicy(settings.checkpoint_every_entries, settings.checkpoint_every_seconds),
        )

    def dead_letter_only(kit: Parts) -> FailureHandler:
        # A failure must not write an audit event about itself into the stream it is chaining.
        return lambda message, error, now: [
            kit.envelopes.dead_letter(
                message, "AUDIT_INTERNAL_ERROR", f"unexpected {type(error).__name__}", now
            )
        ]

    return stream_service(
        SERVICE,
        settings,
        handler,
        lambda topics: topics.audit_event_topics,
        registry,
        on_failure=dead_letter_only,
        # One ledger, one writer: every principal's audit topic goes to the same member (D31).
        single_writer=True,
        on_idle=lambda ledger: ledger.tick,
        batch_audit=False,  # the ledger appends audit events; it writes none of its own
    )
