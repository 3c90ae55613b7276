"""D33 in the pseudonymizer: after the patient-ref key rotated, a record (or a withdrawal) under a
new ref with no decision yet is placed by its patient's decision under an older ref: same person,
same pseudonym, no waiting forever for a patient who only sends clinical data."""

from __future__ import annotations

import datetime as dt
from typing import Any

from biostream.codec import AvroCodec
from biostream.contract import PREVIOUS_REFS_HEADER, Headers, Inbound, Outbound
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
from pseudonymizer.domain.policy import ReleasePolicy
from pseudonymizer.domain.pseudonyms import pseudonym
from pseudonymizer.domain.release import Keyed
from pseudonymizer.domain.rotation import deciding_ref
from pseudonymizer.handlers import PseudonymizerHandler, PseudonymizerMetrics
from pseudonymizer.state import PseudonymizerState

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("u.")
CODEC = AvroCodec(SchemaRegistry())
DATASET = "proj-a"


def handler(min_k: int = 1) -> PseudonymizerHandler:
    policy = ReleasePolicy.model_validate(
        {
            "k_anonymity": {"min_k": min_k, "max_hold_hours": 24},
            "dataset": DATASET, "version": "1", "approval_ref": "DRB-1", "purpose": "test",
            "pseudonym_domain": DATASET, "key_version": "k1",
            "record_types": ["Condition"], "fields": ["hospital", "code_system", "code"],
            "generalisation": {"birth": "year", "address": "province", "postal_digits": 0,
                               "event_date": {"method": "drop"}},
            "free_text": "drop",
        }
    )  # fmt: skip
    return PseudonymizerHandler(
        CODEC, TOPICS, Envelopes("pseudonymizer", "User:svc-pseudonymizer", CODEC, TOPICS),
        [Keyed(policy, b"a" * 32)], PseudonymizerMetrics.create(CollectorRegistry()),
    )  # fmt: skip


def inbound(topic: str, value: bytes, key: str | None = None, headers: Headers = ()) -> Inbound:
    encoded = key.encode() if key else None
    return Inbound(topic, 0, 0, encoded, value, headers, int(NOW.timestamp() * 1000))


def clinical(record_id: str, ref: str, older: list[str]) -> Inbound:
    record = {
        "record_id": record_id, "patient_ref": ref, "hospital": "H001", "message_id": "M",
        "source_format": "CSV", "received_at": NOW, "resource_type": "Condition",
        "event_date": dt.date(2026, 2, 1), "code_system": "kcd", "code": "E11.9",
        "code_version": "9", "value_number": None, "value_unit": None, "value_text": None,
        "specimen_refs": [], "quality_flags": [], "previous_patient_refs": older,
    }  # fmt: skip
    # As ingest writes it: the older refs repeated in a header for the hold-back (D33).
    hint = ((PREVIOUS_REFS_HEADER, ",".join(older).encode()),) if older else ()
    return inbound(TOPICS.clinical_records, CODEC.encode(CLINICAL_RECORD, record), ref, hint)


def decision(person_id: str, ref: str, sequence: int = 0) -> Inbound:
    record = {
        "decision_id": f"{ref}/{sequence}", "patient_ref": ref, "record_id": "H001/M/0",
        "hospital": "H001", "person_id": person_id, "previous_person_id": None,
        "outcome": "NEW_PERSON" if sequence == 0 else "MATCH", "score": 0.0,
        "rule": "fellegi-sunter", "sequence": sequence, "decided_at": NOW, "birth_year": 1990,
        "sex": "F", "province_code": "11",
    }  # fmt: skip
    return inbound(TOPICS.link_decisions, CODEC.encode(LINK_DECISION, record), ref)


def withdrawal(ref: str, older: list[str]) -> Inbound:
    record = {
        "event_id": f"c/{ref}", "kind": "WITHDRAWN", "patient_ref": ref, "person_id": None,
        "datasets": [], "recorded_at": NOW, "source": "consent-registry",
        "previous_patient_refs": older,
    }  # fmt: skip
    return inbound(TOPICS.consent_events, CODEC.encode(CONSENT_EVENT, record), ref)


def curated(out: list[Outbound]) -> list[dict[str, Any]]:
    return [
        CODEC.decode(o.value, CURATED_RECORD) for o in out if o.topic == TOPICS.curated(DATASET)
    ]


def notices(out: list[Outbound]) -> list[dict[str, Any]]:
    return [
        CODEC.decode(o.value, DATASET_NOTICE) for o in out if o.topic == TOPICS.notices(DATASET)
    ]


def reasons(out: list[Outbound]) -> list[str]:
    return [
        CODEC.decode(o.value, AUDIT_EVENT)["reason_code"]
        for o in out
        if o.topic == TOPICS.audit_events_of("svc-pseudonymizer")
    ]


def test_the_deciding_ref_is_the_own_one_else_the_newest_decided_older_one() -> None:
    decided = {"pr_k1", "pr_k2"}.__contains__
    assert deciding_ref("pr_k3", ["pr_k2", "pr_k1"], decided) == "pr_k2"
    assert deciding_ref("pr_k3", ["pr_x", "pr_k1"], decided) == "pr_k1"
    assert deciding_ref("pr_k1", ["pr_k0"], decided) == "pr_k1"
    assert deciding_ref("pr_k3", ["pr_x"], decided) is None
    assert deciding_ref("pr_k3", [], decided) is None


def test_a_clinical_only_patient_after_the_rotation_keeps_their_pseudonym() -> None:
    pseudo, state = handler(), StateStore()
    pseudo(decision("P1", "pr_old"), state, NOW)
    [before] = curated(pseudo(clinical("H001/M1/1", "pr_old", []), state, NOW))
    message = clinical("H001/M2/1", "pr_new", ["pr_old"])
    assert pseudo.decision_known(message, state)  # the hold-back need not wait
    # The header is only a hint: without it the record waits in the hold-back (at most its
    # limit), and the handler still places it by the field.
    assert not pseudo.decision_known(message._replace(headers=()), state)
    [after] = curated(pseudo(message, state, NOW))
    assert after["pseudonym"] == before["pseudonym"]
    # Kept under the older ref, so the corrections of its later decisions move it too.
    released = PseudonymizerState(state).released(DATASET, "pr_old")
    assert released is not None and after["curated_id"] in released.curated_ids

    # Linkage later learns the new ref (same person): nothing moves, later records stay put.
    assert notices(pseudo(decision("P1", "pr_new"), state, NOW)) == []
    [later] = curated(pseudo(clinical("H001/M3/1", "pr_new", ["pr_old"]), state, NOW))
    assert later["pseudonym"] == before["pseudonym"]


def test_a_new_ref_record_before_the_older_refs_decision_is_released_by_it() -> None:
    pseudo, state = handler(), StateStore()
    message = clinical("H001/M2/1", "pr_new", ["pr_old"])
    assert not pseudo.decision_known(message, state)
    out = pseudo(message, state, NOW)
    assert curated(out) == [] and "AWAITING_LINK_DECISION" in reasons(out)
    [released] = curated(pseudo(decision("P1", "pr_old"), state, NOW))
    assert released["pseudonym"] == pseudonym(b"a" * 32, "P1")
    assert PseudonymizerState(state).take_waiting("pr_new") is None


def test_a_withdrawal_by_the_new_ref_finds_the_patient_by_the_older_ref() -> None:
    pseudo, state = handler(), StateStore()
    pseudo(decision("P1", "pr_old"), state, NOW)
    [before] = curated(pseudo(clinical("H001/M1/1", "pr_old", []), state, NOW))
    [notice] = notices(pseudo(withdrawal("pr_new", ["pr_old"]), state, NOW))
    assert (notice["kind"], notice["pseudonym"]) == ("WITHDRAWAL", before["pseudonym"])
    out = pseudo(clinical("H001/M2/1", "pr_new", ["pr_old"]), state, NOW)
    assert curated(out) == [] and "CONSENT_WITHDRAWN" in reasons(out)


def test_a_withdrawal_by_the_new_ref_before_any_decision_applies_with_the_older_refs() -> None:
    pseudo, state = handler(), StateStore()
    pseudo(withdrawal("pr_new", ["pr_old"]), state, NOW)
    pseudo(decision("P1", "pr_old"), state, NOW)
    out = pseudo(clinical("H001/M1/1", "pr_old", []), state, NOW)
    assert curated(out) == [] and "CONSENT_WITHDRAWN" in reasons(out)


def test_a_record_held_below_k_under_a_new_ref_is_released_under_its_patients_person() -> None:
    pseudo, state = handler(min_k=2), StateStore()
    pseudo(decision("P1", "pr_old"), state, NOW)
    held = pseudo(clinical("H001/M1/1", "pr_new", ["pr_old"]), state, NOW)
    assert curated(held) == [] and "BELOW_K" in reasons(held)
    pseudo(decision("P2", "pr_other"), state, NOW)
    released = curated(pseudo(clinical("H001/M2/1", "pr_other", []), state, NOW))
    assert {r["pseudonym"] for r in released} == {pseudonym(b"a" * 32, p) for p in ("P1", "P2")}
