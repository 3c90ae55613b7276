"""The end-to-end benchmark's matcher finds the feed message behind a curated record from its id
alone (it reads only ``curated_id``), and ignores anything else on the topic."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT, CURATED_RECORD
from biostream.schemas import SchemaRegistry
from biostream_harness.bench.e2e import CuratedMatcher, Feed
from biostream_harness.bench.ingest import HOSPITAL
from pseudonymizer.domain.pseudonyms import curated_id

CODEC = AvroCodec(SchemaRegistry())
KEY = b"k" * 32
CURATED: dict[str, Any] = {
    "curated_id": "c_0", "dataset": "cohort-demo", "policy_version": "cohort-demo@1",
    "approval_ref": "IRB-1", "pseudonym": "ps_0", "key_version": "k1", "hospital": "BENCH",
    "resource_type": "Condition", "event_date": None, "code_system": "urn:x", "code": "E11.9",
    "code_version": None, "value_number": None, "value_unit": None, "birth_year": 1970,
    "sex": "U", "province_code": "11", "released_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    "age_band": None, "postal_prefix": None, "district_code": None, "value_text": None,
    "specimen_ids": [], "event_date_handling": "shift",
}  # fmt: skip
AUDIT: dict[str, Any] = {
    "event_id": "e", "occurred_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "service": "ingest",
    "principal": "User:x", "action": "ingest.accepted", "purpose": None, "hospital": None,
    "dataset": None, "inputs": [], "outputs": [], "outcome": "ok", "reason_code": None,
}  # fmt: skip


def test_a_curated_record_maps_to_its_feed_message_and_other_records_to_none() -> None:
    messages = Feed().take(0, 3)
    matcher = CuratedMatcher(KEY)
    matcher.expect(messages, first_seq=10)
    second = messages[1].value.split(b"|")[9].decode()  # MSH-10, the message control id
    record = {**CURATED, "curated_id": curated_id(KEY, f"{HOSPITAL}/{second}/1")}
    assert matcher(SimpleNamespace(value=CODEC.encode(CURATED_RECORD, record))) == 11
    unknown = {**CURATED, "curated_id": "c_not-expected"}
    assert matcher(SimpleNamespace(value=CODEC.encode(CURATED_RECORD, unknown))) is None
    audit = CODEC.encode(AUDIT_EVENT, AUDIT)
    assert matcher(SimpleNamespace(value=audit)) is None
