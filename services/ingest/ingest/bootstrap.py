"""The one place that builds ingest's collaborators (through ``biostream.kit``)."""

from __future__ import annotations

from biostream.keyfiles import load_key_ring
from biostream.keyring import PATIENT_REF_KEY, RRN_KEY
from biostream.kit import Parts, stream_service
from biostream.sealing import SealingKeys
from biostream.service import RunnableService
from prometheus_client import CollectorRegistry

from ingest.adapters.fhir_gateway import FhirGateway
from ingest.adapters.mappings import CsvMappingDirectory, quiet_parser_logs
from ingest.adapters.mllp_listener import MllpListener
from ingest.handlers import SERVICE, FeedMessageHandler, IngestMetrics
from ingest.settings import FhirGatewaySettings, IngestSettings, MllpSettings
from ingest.state import SeenMessages


def build(settings: IngestSettings, registry: CollectorRegistry | None = None) -> RunnableService:
    def handler(kit: Parts) -> FeedMessageHandler:
        # D33: every version of the patient-ref key (the single key of before is k1).
        key = load_key_ring(
            PATIENT_REF_KEY,
            settings.patient_ref_keys_dir,
            settings.patient_ref_key,
            settings.patient_ref_key_file,
        )
        quiet_parser_logs()
        return FeedMessageHandler(
            kit.codec,
            kit.topics,
            kit.envelopes,
            key,
            IngestMetrics.create(kit.registry),
            CsvMappingDirectory(settings.csv_mapping_dir),
            SealingKeys(
                load_key_ring(
                    RRN_KEY, settings.rrn_keys_dir, settings.rrn_key, settings.rrn_key_file
                )
            ),
            SeenMessages(settings.dedup_window_days),
        )

    return stream_service(
        SERVICE,
        settings,
        handler,
        lambda topics: [],
        registry,
        input_pattern=lambda topics: topics.feed_pattern,
        on_failure=lambda kit: kit.envelopes.failure_handler(
            "INGEST_INTERNAL_ERROR", kit.topics.hospital_of_feed
        ),
        on_idle=lambda feeds: feeds.on_idle,
    )


def build_mllp(settings: MllpSettings, registry: CollectorRegistry | None = None) -> MllpListener:
    """``ingest mllp``: one hospital's MLLP listener (D37)."""
    return MllpListener(settings, registry or CollectorRegistry())


def build_fhir_gateway(
    settings: FhirGatewaySettings, registry: CollectorRegistry | None = None
) -> FhirGateway:
    """``ingest fhir``: one hospital's FHIR REST intake (D38)."""
    return FhirGateway(settings, registry or CollectorRegistry())
