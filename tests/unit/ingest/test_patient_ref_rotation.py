"""D33 in ingest: the patient-ref key rotates; each record's ref follows the feed message's Kafka
time, and carries the refs under every older version held, newest first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contract import PREVIOUS_REFS_HEADER, Inbound, Outbound
from biostream.contracts import CLINICAL_RECORD, IDENTITY_RECORD, PATIENT_MERGE
from biostream.envelopes import Envelopes
from biostream.keyring import PATIENT_REF_KEY, KeyRing, KeyVersion
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from ingest.__main__ import app
from ingest.domain.patient_refs import PatientRefs, patient_ref, patient_refs
from ingest.handlers import FeedMessageHandler, IngestMetrics
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

NOW = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
ROTATION_MS = 1_800_000_000_000
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
K1, K2, K3 = b"1" * 64, b"2" * 64, b"3" * 64
HL7 = (("content-type", b"x-application/hl7-v2+er7"),)
A01 = (
    "MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260301093000||ADT^A01|A01-1|P|2.5\r"
    "PID|1||00012345^^^H009^MR||홍^길동||19971013|M\r"
    "DG1|1||E11.9^^KCD-9||20260301\r"
).encode()
A40 = (
    "MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260302093000||ADT^A40|A40-1|P|2.5\r"
    "PID|1||00012345^^^H009^MR||홍^길동\r"
    "MRG|00099999^^^H009^MR\r"
).encode()


def refs_at(keys: KeyRing, timestamp_ms: int, hospital: str, number: str) -> PatientRefs:
    return patient_refs(keys.in_use_at(timestamp_ms), hospital, number)


def ring(*versions: tuple[bytes, int]) -> KeyRing:
    return KeyRing(
        PATIENT_REF_KEY,
        [KeyVersion(f"k{n}", key, at) for n, (key, at) in enumerate(versions, start=1)],
    )


def test_one_version_gives_the_ref_of_before_and_no_previous_refs() -> None:
    refs = refs_at(ring((K1, 0)), ROTATION_MS, "H009", "00012345")
    assert refs.current == patient_ref(K1, "H009", "00012345")
    assert refs.previous == []


def test_the_records_time_chooses_the_version_and_older_versions_are_previous_refs() -> None:
    keys = ring((K1, 0), (K2, ROTATION_MS))
    before = refs_at(keys, ROTATION_MS - 1, "H009", "7")
    at = refs_at(keys, ROTATION_MS, "H009", "7")
    assert (before.current, before.previous) == (patient_ref(K1, "H009", "7"), [])
    assert (at.current, at.previous) == (patient_ref(K2, "H009", "7"), [before.current])


def test_previous_refs_are_newest_first_and_a_staged_version_is_not_used() -> None:
    keys = ring((K1, 0), (K2, ROTATION_MS), (K3, ROTATION_MS * 2))
    refs = refs_at(keys, ROTATION_MS * 2, "H009", "7")
    assert refs.previous == [patient_ref(K2, "H009", "7"), patient_ref(K1, "H009", "7")]
    staged = refs_at(keys, ROTATION_MS + 5, "H009", "7")
    assert staged.current == patient_ref(K2, "H009", "7")
    assert patient_ref(K3, "H009", "7") not in staged.previous


def handle(keys: KeyRing, value: bytes, timestamp_ms: int) -> list[Outbound]:
    handler = FeedMessageHandler(
        CODEC, TOPICS, Envelopes("ingest", "User:svc-ingest", CODEC, TOPICS), keys,
        IngestMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    message = Inbound(TOPICS.feed("H009"), 0, 0, None, value, HL7, timestamp_ms)
    return handler(message, StateStore(), NOW)


def on(out: list[Outbound], topic: str, contract: str) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value, contract) for o in out if o.topic == topic]


def test_the_feed_messages_kafka_time_decides_every_record_of_the_message() -> None:
    keys = ring((K1, 0), (K2, ROTATION_MS))
    old = handle(keys, A01, ROTATION_MS - 1)
    new = handle(keys, A01, ROTATION_MS + 1)
    r1, r2 = patient_ref(K1, "H009", "00012345"), patient_ref(K2, "H009", "00012345")
    [identity] = on(old, TOPICS.identity_records, IDENTITY_RECORD)
    assert (identity["patient_ref"], identity["previous_patient_refs"]) == (r1, [])
    [identity] = on(new, TOPICS.identity_records, IDENTITY_RECORD)
    [clinical] = on(new, TOPICS.clinical_records, CLINICAL_RECORD)
    assert (identity["patient_ref"], identity["previous_patient_refs"]) == (r2, [r1])
    assert (clinical["patient_ref"], clinical["previous_patient_refs"]) == (r2, [r1])
    records = (TOPICS.identity_records, TOPICS.clinical_records)
    assert {o.key for o in new if o.topic in records} == {r2.encode()}
    # The older refs repeated as a header of clinical records, for the pseudonymizer's hold-back.
    [clinical_out] = [o for o in new if o.topic == TOPICS.clinical_records]
    assert clinical_out.headers == ((PREVIOUS_REFS_HEADER, r1.encode()),)
    assert [o.headers for o in old if o.topic == TOPICS.clinical_records] == [()]


def test_a_merge_carries_both_sides_previous_refs() -> None:
    keys = ring((K1, 0), (K2, ROTATION_MS))
    [merge] = on(handle(keys, A40, ROTATION_MS), TOPICS.patient_merges, PATIENT_MERGE)
    assert merge["surviving_patient_ref"] == patient_ref(K2, "H009", "00012345")
    assert merge["previous_surviving_patient_refs"] == [patient_ref(K1, "H009", "00012345")]
    assert merge["retired_patient_ref"] == patient_ref(K2, "H009", "00099999")
    assert merge["previous_retired_patient_refs"] == [patient_ref(K1, "H009", "00099999")]


def test_the_consent_desk_names_the_patient_under_every_held_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Any] = []

    async def record(*args: Any) -> None:
        calls.append(args[3])

    monkeypatch.setattr("ingest.adapters.consent.record_consent", record)
    for name in ("BIOSTREAM_PATIENT_REF_KEY", "BIOSTREAM_PATIENT_REF_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for version, key in (("k1", K1), ("k2", K2)):
        path = tmp_path / f"patient-ref.{version}.key"
        path.write_bytes(key)
        path.chmod(0o600)
    # k2 is in force since 2020; the desk uses the recording time (the clock) to choose.
    (tmp_path / "patient-ref.k2.activates").write_text("2020-01-01T00:00:00+09:00")
    env = {"BIOSTREAM_PRINCIPAL": "User:consent", "BIOSTREAM_TOPIC_PREFIX": "t.",
           "BIOSTREAM_PATIENT_REF_KEYS_DIR": str(tmp_path)}  # fmt: skip
    result = CliRunner().invoke(
        app, ["consent", "withdraw", "--hospital", "H001", "--mrn", "71000001"], env=env
    )
    assert result.exit_code == 0, result.stderr
    [event] = calls
    assert event["patient_ref"] == patient_ref(K2, "H001", "71000001")
    assert event["previous_patient_refs"] == [patient_ref(K1, "H001", "71000001")]
    assert "71000001" not in result.stdout
