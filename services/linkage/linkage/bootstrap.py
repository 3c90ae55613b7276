"""The one place that builds linkage's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

from biostream.keyfiles import load_key_ring
from biostream.keyring import PERSON_KEY, RRN_KEY
from biostream.kit import Parts, stream_service
from biostream.sealing import SealingKeys
from biostream.service import RunnableService
from prometheus_client import CollectorRegistry

from linkage.domain.weights import Params, default_params
from linkage.handlers import SERVICE, LinkageHandler, LinkageMetrics
from linkage.settings import LinkageSettings


def build(settings: LinkageSettings, registry: CollectorRegistry | None = None) -> RunnableService:
    def handler(kit: Parts) -> LinkageHandler:
        key = load_key_ring(
            PERSON_KEY, settings.person_keys_dir, settings.person_key, settings.person_key_file
        )
        params = (
            Params.from_json(settings.params_file.read_text(encoding="utf-8"))
            if settings.params_file
            else default_params()
        )
        rrn_sealer = SealingKeys(
            load_key_ring(RRN_KEY, settings.rrn_keys_dir, settings.rrn_key, settings.rrn_key_file)
        )
        metrics = LinkageMetrics.create(kit.registry)
        return LinkageHandler(
            kit.codec, kit.topics, kit.envelopes, key, params, metrics, rrn_sealer
        )

    return stream_service(
        SERVICE,
        settings,
        handler,
        # D41: linkage.params, so a version activated there applies without a restart, in the
        # transaction of the batch it first applies to.
        lambda topics: [
            topics.identity_records,
            topics.patient_merges,
            topics.review_decisions,
            topics.linkage_params,
        ],
        registry,
        on_failure="LINKAGE_INTERNAL_ERROR",
        # One person index, one writer: further instances are hot standbys (D-linkage-3).
        single_writer=True,
    )
