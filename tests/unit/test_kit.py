"""The service kit: one call builds a stream service; one helper reads an input or rejects it."""

from __future__ import annotations

import datetime as dt

import pytest
from biostream.codec import DecodeError, default_codec
from biostream.contract import Inbound, Outbound
from biostream.contracts import AUDIT_EVENT, DEAD_LETTER, IDENTITY_RECORD
from biostream.envelopes import Envelopes, Rejected, Unreadable
from biostream.kit import Parts, service_principal, stream_service
from biostream.settings import ServiceSettings
from biostream.state import StateStore
from biostream.testing import inbound
from biostream.topics import Topics
from pydantic import SecretStr

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
CODEC = default_codec()
TOPICS = Topics("k.")
ENVELOPES = Envelopes("linkage", "User:svc-linkage", CODEC, TOPICS)
GARBAGE = inbound(TOPICS.identity_records, b"not avro", offset=7)


def test_a_readable_input_is_decoded() -> None:
    event = Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS).audit(
        "ingest.accepted", ["a"], [], NOW
    )
    message = inbound(TOPICS.audit_events_of("svc-ingest"), event.value)
    record = ENVELOPES.decode_or_reject(message, AUDIT_EVENT, NOW)
    assert not isinstance(record, Rejected)
    assert record["action"] == "ingest.accepted"


def test_an_unreadable_input_becomes_a_dead_letter_and_a_rejected_audit_event() -> None:
    rejected = ENVELOPES.decode_or_reject(GARBAGE, IDENTITY_RECORD, NOW)
    assert isinstance(rejected, Rejected)
    assert rejected.error.reason_code == "NOT_SINGLE_OBJECT_AVRO"
    dead, audit = rejected.outputs
    letter = CODEC.decode(dead.value, DEAD_LETTER)
    assert (dead.topic, letter["reason_code"]) == (TOPICS.dead_letters, "NOT_SINGLE_OBJECT_AVRO")
    assert letter["dead_letter_id"] == f"linkage/{GARBAGE.source_ref}"
    event = CODEC.decode(audit.value, AUDIT_EVENT)
    assert (event["action"], event["outcome"]) == ("linkage.rejected", "rejected")
    assert event["inputs"] == [GARBAGE.source_ref]


def test_the_audit_service_only_dead_letters_and_a_reader_only_skips() -> None:
    dead_only = ENVELOPES.decode_or_reject(GARBAGE, IDENTITY_RECORD, NOW, Unreadable.DEAD_LETTER)
    assert isinstance(dead_only, Rejected)
    assert [out.topic for out in dead_only.outputs] == [TOPICS.dead_letters]
    skipped = ENVELOPES.decode_or_reject(GARBAGE, IDENTITY_RECORD, NOW, Unreadable.SKIP)
    assert isinstance(skipped, Rejected) and skipped.outputs == []


def test_a_reader_function_is_read_through_the_same_helper() -> None:
    def read(value: bytes | None) -> int:
        if value != b"42":
            raise DecodeError("NOT_42", "expected 42")
        return 42

    assert ENVELOPES.decode_or_reject(inbound("t", b"42"), read, NOW) == 42
    rejected = ENVELOPES.decode_or_reject(inbound("t", b"41"), read, NOW)
    assert isinstance(rejected, Rejected) and rejected.error.reason_code == "NOT_42"


class Echo:
    def __call__(self, message: Inbound, state: StateStore, now: dt.datetime) -> list[Outbound]:
        return []

    def tick(self, state: StateStore, now: dt.datetime) -> list[Outbound]:
        return []


def test_one_call_builds_a_stream_service() -> None:
    settings = ServiceSettings(
        topic_prefix="k.", dead_letter_key=SecretStr("ab" * 32), principal="User:k.svc-linkage"
    )
    seen: list[Parts] = []

    def handler(kit: Parts) -> Echo:
        seen.append(kit)
        return Echo()

    service = stream_service(
        "kitted", settings, handler, lambda topics: [topics.identity_records],
        on_failure="KITTED_INTERNAL_ERROR", single_writer=True, on_idle=lambda echo: echo.tick,
    )  # fmt: skip
    [kit] = seen
    processor = service.processor
    assert service.registry is kit.registry and kit.envelopes.sealer is not None
    assert processor.config.app_id == "k.kitted" and processor.config.single_writer
    assert processor.config.input_topics == ["k.identity.records"]
    assert processor.config.changelog_topic == TOPICS.state("kitted")
    assert processor.audit_batching is not None and processor.hold is None
    assert processor.audit_batching.topic == TOPICS.audit_events_of("svc-linkage")
    failed = processor.on_failure(GARBAGE, RuntimeError("boom"), NOW)
    assert CODEC.decode(failed[0].value, DEAD_LETTER)["reason_code"] == "KITTED_INTERNAL_ERROR"


def test_a_service_without_a_dead_letter_key_is_refused() -> None:
    with pytest.raises(ValueError, match="dead_letter_key"):
        stream_service(
            "kitted", ServiceSettings(), lambda kit: Echo(), lambda topics: [], on_failure="X"
        )


def test_a_service_names_the_principal_its_credentials_authenticate() -> None:
    """D31: with SCRAM credentials the principal is the user's; a different claim is refused."""
    kafka = {"sasl_username": "k.svc-ingest", "sasl_password": SecretStr("x")}
    own = ServiceSettings.model_validate({"topic_prefix": "k.", "kafka": kafka})
    assert service_principal("ingest", own, TOPICS) == "User:k.svc-ingest"
    claiming = own.model_copy(update={"principal": "User:k.svc-linkage"})
    with pytest.raises(ValueError, match=r"not User:k\.svc-ingest"):
        service_principal("ingest", claiming, TOPICS)
    stranger = ServiceSettings.model_validate({"topic_prefix": "k.", "principal": "User:bob"})
    with pytest.raises(ValueError, match="no audit topic"):
        service_principal("ingest", stranger, TOPICS)
    assert service_principal("ingest", ServiceSettings(topic_prefix="k."), TOPICS) == (
        "User:k.svc-ingest"
    )
