"""The pseudonymizer's handler with in-memory state: join, corrections, k-anonymity, consent,
key rotation. No Kafka, no clock (time is an argument)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contract import Inbound, Outbound
from biostream.contracts import (
    AUDIT_EVENT,
    CLINICAL_RECORD,
    CONSENT_EVENT,
    CURATED_RECORD,
    DATASET_NOTICE,
    LINK_DECISION,
)
from biostream.envelopes import Envelopes
from biostream.schemas import SchemaRegistry
from biostream.state import StateStore
from biostream.topics import Topics
from prometheus_client import CollectorRegistry
from pseudonymizer.domain import notices as notices_module
from pseudonymizer.domain import release as release_module
from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.domain.pseudonyms import pseudonym
from pseudonymizer.domain.release import Keyed
from pseudonymizer.handlers import PseudonymizerHandler, PseudonymizerMetrics
from pseudonymizer.state import decode_released, encode_released

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
KEY_A, KEY_B = b"a" * 32, b"b" * 32


def policy(dataset: str = "proj-a", **changes: Any) -> ReleasePolicy:
    document: dict[str, Any] = {
        "dataset": dataset, "version": "1", "approval_ref": "DRB-1", "purpose": "test",
        "pseudonym_domain": dataset, "key_version": "k1",
        "record_types": ["Condition", "Observation"],
        "fields": ["hospital", "event_date", "code_system", "code", "code_version",
                   "value_number", "value_unit", "value_text", "specimen_ids"],
        "generalisation": {"birth": "age_band_5", "address": "province", "postal_digits": 2,
                           "event_date": {"method": "shift", "max_days": 10}},
        "free_text": "scrub",
    }  # fmt: skip
    document.update(changes)
    return ReleasePolicy.model_validate(document)


def handler(*releases: Keyed, registry: CollectorRegistry | None = None) -> PseudonymizerHandler:
    return PseudonymizerHandler(
        CODEC,
        TOPICS,
        Envelopes("pseudonymizer", "User:svc-pseudonymizer", CODEC, TOPICS),
        list(releases) or [Keyed(policy(), KEY_A)],
        PseudonymizerMetrics.create(registry or CollectorRegistry()),
    )


def inbound(topic: str, value: bytes, offset: int = 0) -> Inbound:
    return Inbound(topic, 0, offset, None, value, (), int(NOW.timestamp() * 1000))


def clinical(
    record_id: str,
    ref: str = "pr_a",
    resource_type: str = "Condition",
    text: str | None = None,
    day: int = 1,
) -> Inbound:
    record = {
        "record_id": record_id, "patient_ref": ref, "hospital": "H001", "message_id": "M",
        "source_format": "CSV", "received_at": NOW, "resource_type": resource_type,
        "event_date": dt.date(2026, 2, day), "code_system": "kcd", "code": "E11.9",
        "code_version": "9", "value_number": None, "value_unit": None, "value_text": text,
        "specimen_refs": ["BIOBANK-778", "FASTQ-H001-0042"], "quality_flags": [],
    }  # fmt: skip
    return inbound(TOPICS.clinical_records, CODEC.encode(CLINICAL_RECORD, record))


def decision(
    person_id: str,
    ref: str = "pr_a",
    sequence: int = 0,
    previous: str | None = None,
    outcome: str = "NEW_PERSON",
    province: str = "11",
    birth_year: int = 1990,
    district: str | None = None,
) -> Inbound:
    record = {
        "decision_id": f"{ref}/{sequence}", "patient_ref": ref, "record_id": "H001/M/0",
        "hospital": "H001", "person_id": person_id, "previous_person_id": previous,
        "outcome": outcome, "score": 0.0, "rule": "rrn-exact", "sequence": sequence,
        "decided_at": NOW, "birth_year": birth_year, "sex": "F", "province_code": province,
        "birth_month": 6, "postal_prefix": "481", "district_code": district,
    }  # fmt: skip
    return inbound(TOPICS.link_decisions, CODEC.encode(LINK_DECISION, record))


def consent(kind: str, person_id: str | None = None, ref: str | None = None) -> Inbound:
    record = {
        "event_id": f"c/{kind}/{person_id or ref}", "kind": kind, "patient_ref": ref,
        "person_id": person_id, "datasets": [], "recorded_at": NOW, "source": "registry",
    }  # fmt: skip
    return inbound(TOPICS.consent_events, CODEC.encode(CONSENT_EVENT, record))


def curated(out: list[Outbound], dataset: str = "proj-a") -> list[dict[str, Any]]:
    return [
        CODEC.decode(o.value, CURATED_RECORD) for o in out if o.topic == TOPICS.curated(dataset)
    ]


def notices(out: list[Outbound], dataset: str = "proj-a") -> list[dict[str, Any]]:
    return [
        CODEC.decode(o.value, DATASET_NOTICE) for o in out if o.topic == TOPICS.notices(dataset)
    ]


def all_audits(out: list[Outbound]) -> list[dict[str, Any]]:
    return [
        CODEC.decode(o.value, AUDIT_EVENT)
        for o in out
        if o.topic == TOPICS.audit_events_of("svc-pseudonymizer")
    ]


def audits(out: list[Outbound]) -> list[dict[str, Any]]:
    """The record-level events (the policy announcements of D23c are tested on their own)."""
    return [a for a in all_audits(out) if a["action"] != "pseudonymizer.policy_in_force"]


def announced(out: list[Outbound]) -> list[dict[str, Any]]:
    return [a for a in all_audits(out) if a["action"] == "pseudonymizer.policy_in_force"]


def restored_from(state: StateStore) -> StateStore:
    """The state another instance restores from the changelog (every key the store holds)."""
    restored = StateStore()
    for key in list(state.keys_with_prefix("")):
        restored.restore(key, state.get(key))
    return restored


# --- the join --------------------------------------------------------------------------------------


def test_a_record_waits_for_its_late_link_decision_and_is_released_with_it() -> None:
    h, state = handler(), StateStore()
    held = h(clinical("H001/M/1"), state, NOW)
    assert curated(held) == []
    assert [a["reason_code"] for a in audits(held)] == ["AWAITING_LINK_DECISION"]
    [released] = curated(h(decision("P1"), state, NOW))
    assert released["pseudonym"] == pseudonym(KEY_A, "P1")
    assert released["key_version"] == "k1"
    assert state.get("wait:pr_a") is None


def test_a_released_record_carries_only_generalised_quasi_identifiers() -> None:
    h, state = handler(), StateStore()
    h(decision("P1"), state, NOW)
    [record] = curated(h(clinical("H001/M/1", text="환자 김서연 010-3141-5926 재검"), state, NOW))
    assert record["age_band"] == "35-39"  # born 1990-06, event 2026-02
    assert record["birth_year"] is None
    assert record["province_code"] == "11"
    assert record["postal_prefix"] == "48"
    assert record["event_date_handling"] == "shift"
    assert abs((record["event_date"] - dt.date(2026, 2, 1)).days) <= 10
    assert record["value_text"] == "환자 [NAME] [PHONE] 재검"
    assert len(record["specimen_ids"]) == 2
    text = json.dumps(record, default=str, ensure_ascii=False)
    for canary in ("P1", "BIOBANK-778", "FASTQ-H001-0042", "pr_a", "김서연", "3141"):
        assert canary not in text


def test_every_event_of_a_person_moves_by_the_same_date_offset() -> None:
    h, state = handler(), StateStore()
    h(decision("P1"), state, NOW)
    [a] = curated(h(clinical("H001/M/1", day=1), state, NOW))
    [b] = curated(h(clinical("H001/M/2", day=20), state, NOW))
    assert (b["event_date"] - a["event_date"]).days == 19


def test_unapproved_record_types_and_fields_are_withheld_or_dropped() -> None:
    narrow = policy(fields=["code"], free_text="drop", record_types=["Condition"])
    h, state = handler(Keyed(narrow, KEY_A)), StateStore()
    h(decision("P1"), state, NOW)
    out = h(clinical("H001/M/3", resource_type="Observation"), state, NOW)
    assert curated(out) == []
    assert audits(out)[0]["reason_code"] == "RESOURCE_TYPE_NOT_APPROVED"
    [record] = curated(h(clinical("H001/M/4", text="note"), state, NOW))
    assert record["event_date"] is None and record["value_text"] is None
    assert record["specimen_ids"] == [] and record["hospital"] == ""


def test_two_projects_see_the_same_person_under_unrelated_pseudonyms() -> None:
    h = handler(Keyed(policy("proj-a"), KEY_A), Keyed(policy("proj-b"), KEY_B))
    state = StateStore()
    h(decision("P1"), state, NOW)
    out = h(clinical("H001/M/1"), state, NOW)
    [a], [b] = curated(out, "proj-a"), curated(out, "proj-b")
    assert a["pseudonym"] != b["pseudonym"]
    assert a["curated_id"] != b["curated_id"]
    assert set(a["specimen_ids"]).isdisjoint(b["specimen_ids"])


def test_the_same_person_keeps_one_pseudonym_across_hospitals_and_a_state_restore() -> None:
    h, state = handler(), StateStore()
    h(decision("P1", ref="pr_h1"), state, NOW)
    h(decision("P1", ref="pr_h2"), state, NOW)
    [one] = curated(h(clinical("H001/M/1", ref="pr_h1"), state, NOW))
    restored = StateStore()
    for key, value in state.drain_changes().items():
        restored.restore(key, value)
    [two] = curated(handler()(clinical("H002/M/1", ref="pr_h2"), restored, NOW))
    assert one["pseudonym"] == two["pseudonym"]


# --- corrections -----------------------------------------------------------------------------------


def test_a_merge_upstream_sends_a_correction_to_every_affected_dataset() -> None:
    h = handler(Keyed(policy("proj-a"), KEY_A), Keyed(policy("proj-b"), KEY_B))
    state = StateStore()
    h(decision("P2", ref="pr_b"), state, NOW)
    moved = curated(h(clinical("H002/M/1", ref="pr_b"), state, NOW), "proj-a")
    merge = h(decision("P1", ref="pr_b", sequence=1, previous="P2", outcome="MERGED"), state, NOW)
    for dataset, key in (("proj-a", KEY_A), ("proj-b", KEY_B)):
        [notice] = notices(merge, dataset)
        assert notice["kind"] == "CORRECTION"
        assert notice["reason"] == "MERGED"
        assert notice["pseudonym"] == pseudonym(key, "P2")
        assert notice["new_pseudonym"] == pseudonym(key, "P1")
        assert notice["date_offset_change_days"] is not None
    assert notices(merge, "proj-a")[0]["curated_ids"] == [moved[0]["curated_id"]]
    assert {a["action"] for a in audits(merge)} == {"pseudonymizer.notice"}
    [after] = curated(h(clinical("H002/M/2", ref="pr_b"), state, NOW), "proj-a")
    assert after["pseudonym"] == pseudonym(KEY_A, "P1")
    # A replayed (older or equal) decision changes nothing.
    assert h(decision("P2", ref="pr_b", sequence=0), state, NOW) == []


def test_a_relink_of_a_patient_with_nothing_released_sends_no_notice() -> None:
    h, state = handler(), StateStore()
    h(decision("P2"), state, NOW)
    assert notices(h(decision("P1", sequence=1, previous="P2", outcome="SPLIT"), state, NOW)) == []


def test_key_rotation_moves_released_records_to_the_new_pseudonym() -> None:
    state = StateStore()
    old = handler(Keyed(policy(), KEY_A))
    old(decision("P1"), state, NOW)
    [before] = curated(old(clinical("H001/M/1"), state, NOW))
    rotated = handler(Keyed(policy(version="2", key_version="k2"), b"r" * 32))
    out = rotated(clinical("H001/M/2"), state, NOW)
    [after] = curated(out)
    [notice] = notices(out)
    assert after["key_version"] == "k2" and before["key_version"] == "k1"
    assert notice["reason"] == "KEY_ROTATED"
    assert (notice["pseudonym"], notice["new_pseudonym"]) == (
        before["pseudonym"],
        after["pseudonym"],
    )
    assert notice["curated_ids"] == [before["curated_id"]]


def test_a_long_history_is_kept_in_chunks_and_corrected_in_several_notices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A patient with many released records (vital signs every minute): each release rewrites at
    most a chunk of ids, and a relink moves every record in notices of bounded size."""
    monkeypatch.setattr(release_module, "RELEASED_CHUNK", 50)
    monkeypatch.setattr(notices_module, "NOTICE_MAX_IDS", 80)
    h, state = handler(), StateStore()
    h(decision("P2"), state, NOW)
    released = [
        c["curated_id"] for n in range(137) for c in curated(h(clinical(f"H001/M/{n}"), state, NOW))
    ]
    entry = json.loads(state.get("rel:proj-a:pr_a") or b"")
    assert len(entry[3]) == 37 and entry[4] == 2  # 2 chunks of 50 stored apart, 37 newest here
    # The chunks are ordinary state: a restarted handler sees the same history.
    restored = StateStore()
    for key in list(state.keys_with_prefix("")):
        restored.restore(key, state.get(key))
    merge = handler()(decision("P1", sequence=1, previous="P2", outcome="MERGED"), restored, NOW)
    parts = notices(merge)
    assert [len(n["curated_ids"]) for n in parts] == [80, 57]
    assert [i for n in parts for i in n["curated_ids"]] == released
    assert len({n["notice_id"] for n in parts}) == 2
    assert {(n["pseudonym"], n["new_pseudonym"]) for n in parts} == {
        (pseudonym(KEY_A, "P2"), pseudonym(KEY_A, "P1"))
    }


def test_a_released_entry_without_chunks_keeps_the_layout_written_before_chunks() -> None:
    old_layout = json.dumps(["ps_x", "k1", 3, ["c_1", "c_2"]]).encode()
    entry = decode_released(old_layout)
    assert (entry.curated_ids, entry.chunks) == (["c_1", "c_2"], 0)
    assert encode_released(entry) == old_layout


# --- k-anonymity -----------------------------------------------------------------------------------


def k_handler(registry: CollectorRegistry | None = None) -> PseudonymizerHandler:
    strict = policy(k_anonymity={"min_k": 3, "max_hold_hours": 24})
    return handler(Keyed(strict, KEY_A), registry=registry)


def test_records_of_a_class_below_k_wait_until_k_persons_are_in_it() -> None:
    h, state = k_handler(), StateStore()
    out: list[Outbound] = []
    for n in (1, 2):
        h(decision(f"P{n}", ref=f"pr_{n}"), state, NOW)
        out += h(clinical(f"H001/M/{n}", ref=f"pr_{n}"), state, NOW)
    out += h(clinical("H001/M/2b", ref="pr_2"), state, NOW)  # same person again: still 2 persons
    assert curated(out) == []
    assert {a["reason_code"] for a in audits(out)} == {"BELOW_K"}
    h(decision("P3", ref="pr_3"), state, NOW)
    released = curated(h(clinical("H001/M/3", ref="pr_3"), state, NOW))
    assert len(released) == 4
    assert len({r["pseudonym"] for r in released}) == 3
    assert (
        len({(r["age_band"], r["sex"], r["province_code"], r["postal_prefix"]) for r in released})
        == 1
    )
    h(decision("P4", ref="pr_4"), state, NOW)
    assert len(curated(h(clinical("H001/M/4", ref="pr_4"), state, NOW))) == 1
    # Another class (another province) starts again from zero.
    h(decision("P5", ref="pr_5", province="26"), state, NOW)
    assert curated(h(clinical("H001/M/5", ref="pr_5"), state, NOW)) == []


def district_handler(min_k: int = 1) -> PseudonymizerHandler:
    generalisation = {"birth": "age_band_5", "address": "district", "postal_digits": 0}
    by_district = policy(generalisation=generalisation, k_anonymity={"min_k": min_k})
    return handler(Keyed(by_district, KEY_A))


def test_a_district_policy_releases_the_district_and_falls_back_to_the_province() -> None:
    h, state = district_handler(), StateStore()
    h(decision("P1", ref="pr_1", district="11110"), state, NOW)
    h(decision("P2", ref="pr_2", district=None), state, NOW)
    [known] = curated(h(clinical("H001/M/1", ref="pr_1"), state, NOW))
    [unknown] = curated(h(clinical("H001/M/2", ref="pr_2"), state, NOW))
    assert (known["district_code"], known["province_code"]) == ("11110", None)
    assert (unknown["district_code"], unknown["province_code"]) == (None, "11")


def test_k_anonymity_classes_are_per_district() -> None:
    h, state = district_handler(min_k=2), StateStore()
    for n, district in ((1, "11110"), (2, "11140"), (3, None)):
        h(decision(f"P{n}", ref=f"pr_{n}", district=district), state, NOW)
        # Three persons of one province, each in a class of their own: nothing opens.
        assert curated(h(clinical(f"H001/M/{n}", ref=f"pr_{n}"), state, NOW)) == []
    h(decision("P4", ref="pr_4", district="11140"), state, NOW)
    released = curated(h(clinical("H001/M/4", ref="pr_4"), state, NOW))
    assert sorted(r["pseudonym"] for r in released) == sorted(
        pseudonym(KEY_A, p) for p in ("P2", "P4")
    )
    assert {r["district_code"] for r in released} == {"11140"}


def test_records_held_longer_than_the_limit_are_suppressed_and_counted() -> None:
    registry = CollectorRegistry()
    h, state = k_handler(registry), StateStore()
    h(decision("P1"), state, NOW)
    h(clinical("H001/M/1"), state, NOW)
    later = NOW + dt.timedelta(hours=25)
    out = h(decision("P9", ref="pr_9", province="50"), state, later)
    [suppressed] = [a for a in audits(out) if a["action"] == "pseudonymizer.suppressed"]
    assert suppressed["inputs"] == ["H001/M/1"]
    assert suppressed["reason_code"] == "K_HOLD_EXPIRED"
    value = registry.get_sample_value(
        "biostream_pseudonymizer_suppressed_records_total", {"dataset": "proj-a"}
    )
    assert value == 1
    assert list(state.keys_with_prefix("kh:")) == []


def test_the_gauges_start_from_the_restored_state() -> None:
    h, state = k_handler(), StateStore()
    h(clinical("H001/M/0", ref="pr_waiting"), state, NOW)
    h(decision("P1"), state, NOW)
    h(clinical("H001/M/1"), state, NOW)
    restored = StateStore()
    for key, value in state.drain_changes().items():
        restored.restore(key, value)
    registry = CollectorRegistry()
    k_handler(registry)(consent("GRANTED", person_id="P7"), restored, NOW)
    assert registry.get_sample_value("biostream_pseudonymizer_waiting_patients") == 1
    held = registry.get_sample_value(
        "biostream_pseudonymizer_k_held_records", {"dataset": "proj-a"}
    )
    assert held == 1


# --- consent ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["person_id", "patient_ref"])
def test_a_withdrawal_stops_releases_and_tells_every_affected_dataset(by: str) -> None:
    h = handler(Keyed(policy("proj-a"), KEY_A), Keyed(policy("proj-b"), KEY_B))
    state = StateStore()
    h(decision("P1", ref="pr_h1"), state, NOW)
    h(decision("P1", ref="pr_h2"), state, NOW)
    h(clinical("H001/M/1", ref="pr_h1"), state, NOW)
    event = (
        consent("WITHDRAWN", person_id="P1")
        if by == "person_id"
        else consent("WITHDRAWN", ref="pr_h2")
    )
    out = h(event, state, NOW)
    for dataset, key in (("proj-a", KEY_A), ("proj-b", KEY_B)):
        [notice] = notices(out, dataset)
        assert notice["kind"] == "WITHDRAWAL"
        assert notice["pseudonym"] == pseudonym(key, "P1")
    after = h(clinical("H002/M/2", ref="pr_h2"), state, NOW)
    assert curated(after, "proj-a") == curated(after, "proj-b") == []
    assert {a["reason_code"] for a in audits(after)} == {"CONSENT_WITHDRAWN"}


def test_a_withdrawal_before_the_link_decision_applies_when_it_arrives() -> None:
    h, state = handler(), StateStore()
    h(clinical("H001/M/1"), state, NOW)
    h(consent("WITHDRAWN", ref="pr_a"), state, NOW)
    out = h(decision("P1"), state, NOW)
    assert curated(out) == []
    assert [a["reason_code"] for a in audits(out)] == ["CONSENT_WITHDRAWN"]


def test_a_dataset_requiring_consent_releases_only_consenting_persons() -> None:
    h, state = handler(Keyed(policy(consent_required=True), KEY_A)), StateStore()
    h(decision("P1"), state, NOW)
    out = h(clinical("H001/M/1"), state, NOW)
    assert curated(out) == [] and audits(out)[0]["reason_code"] == "NO_CONSENT"
    h(consent("GRANTED", person_id="P1"), state, NOW)
    assert len(curated(h(clinical("H001/M/2"), state, NOW))) == 1


# --- the policy in force, in the ledger (D23c) -----------------------------------------------------


def test_the_first_message_announces_every_policy_before_anything_is_released_under_it() -> None:
    h = handler(Keyed(policy(), KEY_A), Keyed(policy("proj-b"), KEY_B))
    out = h(clinical("H001/M/1"), StateStore(), NOW)  # held: waits for its link decision
    events = all_audits(out)
    assert [e["action"] for e in events][:2] == ["pseudonymizer.policy_in_force"] * 2
    first = events[0]
    assert first["dataset"] == "proj-a" and first["purpose"] == "proj-a@1"
    assert first["reason_code"] == "POLICY_LOADED" and first["outcome"] == "ok"
    assert first["policy"] == {
        "policy_version": "proj-a@1",
        "digest": first["policy"]["digest"],
        "approval_ref": "DRB-1",
        "purpose": "test",
        "record_types": ["Condition", "Observation"],
        "fields": sorted(policy().fields),
    }
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first["policy"]["digest"])
    assert first["inputs"] == [f"policy:proj-a@1/{first['policy']['digest']}"]
    # Every other event of the pseudonymizer carries no policy.
    assert [e["action"] for e in events[2:]] == ["pseudonymizer.held"]
    assert events[2]["policy"] is None


def test_a_policy_is_announced_once_in_the_same_transaction_as_the_first_release() -> None:
    h, state = handler(), StateStore()
    h(decision("P1"), state, NOW)
    out = h(clinical("H001/M/1"), state, NOW)
    assert announced(out) == [] and len(curated(out)) == 1
    # A restart with the same policy (the state restored from its changelog) announces nothing.
    again = handler()(clinical("H001/M/2"), restored_from(state), NOW)
    assert announced(again) == [] and len(curated(again)) == 1


def test_a_new_policy_version_or_an_edit_without_one_is_announced_as_a_change() -> None:
    h, state = handler(), StateStore()
    h(decision("P1"), state, NOW)
    v2 = handler(Keyed(policy(version="2", record_types=["Condition"]), KEY_A))
    state = restored_from(state)
    out = v2(clinical("H001/M/1"), state, NOW)
    [change] = announced(out)
    assert change["reason_code"] == "POLICY_CHANGED" and change["purpose"] == "proj-a@2"
    assert change["policy"]["record_types"] == ["Condition"]
    # Releases follow the announcement in the same output, under the version announced.
    events = all_audits(out)
    assert events[0] == change
    assert [e["purpose"] for e in events if e["action"] == "pseudonymizer.released"] == ["proj-a@2"]
    # Same version, other content (k raised): a new digest, announced.
    edited = handler(Keyed(policy(version="2", record_types=["Condition"],
                                  k_anonymity={"min_k": 2}), KEY_A))  # fmt: skip
    [edit] = announced(edited(consent("GRANTED", person_id="P9"), restored_from(state), NOW))
    assert edit["reason_code"] == "POLICY_CHANGED" and edit["purpose"] == "proj-a@2"
    assert edit["policy"]["digest"] != change["policy"]["digest"]


def test_the_policy_digest_ignores_layout_and_order_of_the_policy_file() -> None:
    from pseudonymizer.domain.in_force import policy_digest

    a = policy(record_types=["Condition", "Observation"])
    b = policy(record_types=["Observation", "Condition"], consent_required=False)
    assert policy_digest(a) == policy_digest(b)
    assert policy_digest(a) != policy_digest(policy(purpose="another purpose"))
