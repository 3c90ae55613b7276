"""The consent desk (D32) without a broker: the rules of a request, the event they build, and
``ingest consent grant|withdraw``'s refusals and output (the writer replaced by a recorder)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from biostream.codec import default_codec
from biostream.contracts import CONSENT_EVENT
from ingest.__main__ import app
from ingest.domain.consent import (
    ConsentRefused,
    Subject,
    check_datasets,
    check_patient_number,
    consent_event,
    person_subject,
)
from ingest.handlers import patient_ref
from typer.testing import CliRunner

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
KEY = "k" * 64
MRN = "71000001"


def test_a_withdrawal_by_person_id_is_a_valid_consent_event() -> None:
    event = consent_event("withdraw", person_subject("P0a1b"), [], NOW, "consent-registry")
    assert event["kind"] == "WITHDRAWN"
    assert (event["person_id"], event["patient_ref"], event["datasets"]) == ("P0a1b", None, [])
    assert event["recorded_at"] == NOW
    decoded = default_codec().decode(default_codec().encode(CONSENT_EVENT, event), CONSENT_EVENT)
    assert decoded["event_id"] == event["event_id"]


def test_event_ids_differ_by_what_the_event_says_and_when() -> None:
    subject = person_subject("P1")
    ids = {
        consent_event("withdraw", subject, [], NOW, "consent-registry")["event_id"],
        consent_event("grant", subject, [], NOW, "consent-registry")["event_id"],
        consent_event("withdraw", subject, ["cohort-demo"], NOW, "consent-registry")["event_id"],
        consent_event("withdraw", person_subject("P2"), [], NOW, "consent-registry")["event_id"],
        consent_event(
            "withdraw", subject, [], NOW + dt.timedelta(milliseconds=1), "consent-registry"
        )["event_id"],
    }
    assert len(ids) == 5
    again = consent_event("withdraw", subject, [], NOW, "consent-registry")["event_id"]
    assert again in ids


@pytest.mark.parametrize(
    "person_id", ["", "p1", "P", "PXYZ", "P1\n", "850321-2012342", "8503212012342", "김서연", "P1 "]
)
def test_a_person_id_must_have_linkages_shape(person_id: str) -> None:
    with pytest.raises(ConsentRefused):
        person_subject(person_id)


@pytest.mark.parametrize(
    ("hospital", "mrn"),
    [("h001", MRN), ("", MRN), ("H001", ""), ("H001", "   "), ("H001", "71 000"),
     ("H001", "7100\x00"), ("H001", "9" * 65)],
)  # fmt: skip
def test_bad_hospital_codes_and_patient_numbers_are_refused_without_repeating_them(
    hospital: str, mrn: str
) -> None:
    with pytest.raises(ConsentRefused) as refused:
        check_patient_number(hospital, mrn)
    if mrn.strip():
        assert mrn.strip() not in str(refused.value)


def test_a_patient_number_is_trimmed_at_the_ends_only() -> None:
    assert check_patient_number("H001", " 71000001\n") == ("H001", "71000001")


def test_datasets_are_checked_and_deduplicated() -> None:
    assert check_datasets(["cohort-demo", "genome-b", "cohort-demo"]) == ["cohort-demo", "genome-b"]
    for bad in ("", "Cohort", "a b", "../x"):
        with pytest.raises(ConsentRefused):
            check_datasets([bad])


def test_an_event_names_exactly_one_participant_reference() -> None:
    with pytest.raises(ConsentRefused):
        consent_event("withdraw", Subject(), [], NOW, "consent-registry")
    with pytest.raises(ConsentRefused):
        consent_event("withdraw", Subject("P1", "pr_x"), [], NOW, "consent-registry")
    with pytest.raises(ConsentRefused):
        consent_event("revoke", person_subject("P1"), [], NOW, "consent-registry")
    with pytest.raises(ConsentRefused):
        consent_event("grant", person_subject("P1"), [], NOW, "two words")


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    async def record(
        kafka: Any, topics: Any, principal: str, event: Any, subject: Any, now: Any
    ) -> None:
        calls.append(
            {
                "principal": principal,
                "event": event,
                "subject": subject,
                "topic": topics.consent_events,
            }
        )

    monkeypatch.setattr("ingest.adapters.consent.record_consent", record)
    monkeypatch.setenv("BIOSTREAM_PRINCIPAL", "User:consent")
    monkeypatch.setenv("BIOSTREAM_TOPIC_PREFIX", "t.")
    monkeypatch.delenv("BIOSTREAM_PATIENT_REF_KEY_FILE", raising=False)
    return calls


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["consent", *args], env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_withdraw_by_hospital_patient_uses_ingests_patient_ref(
    recorded: list[dict[str, Any]],
) -> None:
    code, out, err = run(
        "withdraw", "--hospital", "H001", "--mrn", MRN, env={"BIOSTREAM_PATIENT_REF_KEY": KEY}
    )
    assert (code, err) == (0, "")
    [call] = recorded
    ref = patient_ref(KEY.encode(), "H001", MRN)
    assert call["event"]["patient_ref"] == ref and call["event"]["person_id"] is None
    assert call["event"]["kind"] == "WITHDRAWN"
    assert (call["principal"], call["topic"], call["subject"].hospital) == (
        "User:consent",
        "t.consent.events",
        "H001",
    )
    line = json.loads(out)
    assert (line["patient_ref"], line["event_id"]) == (ref, call["event"]["event_id"])
    assert MRN not in out


def test_the_patient_number_can_come_from_stdin(recorded: list[dict[str, Any]]) -> None:
    code, _, _ = run("grant", "--hospital", "H001", "--mrn", "-", "--dataset", "cohort-demo",
                       env={"BIOSTREAM_PATIENT_REF_KEY": KEY}, stdin=MRN + "\n")  # fmt: skip
    assert code == 0
    [call] = recorded
    assert call["event"]["patient_ref"] == patient_ref(KEY.encode(), "H001", MRN)
    assert (call["event"]["kind"], call["event"]["datasets"]) == ("GRANTED", ["cohort-demo"])


def test_grant_by_person_id_needs_no_patient_ref_key(recorded: list[dict[str, Any]]) -> None:
    code, out, _ = run("grant", "--person-id", "P1f")
    assert code == 0
    assert recorded[0]["event"]["person_id"] == "P1f"
    assert json.loads(out)["kind"] == "GRANTED"


@pytest.mark.parametrize(
    "args",
    [
        [],  # nobody named
        ["--person-id", "P1", "--hospital", "H001", "--mrn", MRN],  # both
        ["--hospital", "H001"],  # no patient number
        ["--mrn", MRN],  # no hospital
        ["--hospital", "h001", "--mrn", MRN],
        ["--hospital", "H001", "--mrn", "71 000 001"],
        ["--person-id", "850321-2012342"],
        ["--person-id", "P1", "--dataset", "Not A Dataset"],
    ],
)
def test_unusable_requests_exit_2_write_nothing_and_never_echo_the_patient_number(
    recorded: list[dict[str, Any]], args: list[str]
) -> None:
    code, out, err = run("withdraw", *args, env={"BIOSTREAM_PATIENT_REF_KEY": KEY})
    assert code == 2
    assert recorded == [] and out == ""
    assert err.startswith("error: ")
    for secret in (MRN, "71 000 001", "850321-2012342"):
        assert secret not in err


def test_a_missing_patient_ref_key_is_refused(
    recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BIOSTREAM_PATIENT_REF_KEY", raising=False)
    code, _, err = run("withdraw", "--hospital", "H001", "--mrn", MRN)
    assert code == 2 and recorded == []
    assert "patient_ref_key" in err and MRN not in err


def test_a_refusal_by_the_broker_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.errors import TopicAuthorizationFailedError

    async def refuse(*_args: Any) -> None:
        raise TopicAuthorizationFailedError()

    monkeypatch.setattr("ingest.adapters.consent.record_consent", refuse)
    monkeypatch.setenv("BIOSTREAM_PRINCIPAL", "User:hospital-h001")
    code, out, err = run(
        "withdraw", "--hospital", "H001", "--mrn", MRN, env={"BIOSTREAM_PATIENT_REF_KEY": KEY}
    )
    assert code == 1 and out == ""
    assert "TopicAuthorizationFailedError" in err and "User:hospital-h001" in err
    assert MRN not in err


# --- FHIR Consent in a hospital's feed -----------------------------------------------------------


def consent_bundle(*consents: dict[str, Any]) -> bytes:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": MRN}],
        "name": [{"text": "박지우"}],
        "gender": "female",
        "birthDate": "1979-05-02",
    }
    entries = [
        {"resource": patient},
        *({"resource": {"resourceType": "Consent", **c}} for c in consents),
    ]
    return json.dumps({"resourceType": "Bundle", "id": "C-1", "entry": entries}).encode()


@pytest.mark.parametrize(
    ("consent", "kind"),
    [
        ({"status": "active"}, "GRANTED"),
        ({"status": "active", "provision": {"type": "permit"}}, "GRANTED"),
        ({"status": "active", "provision": {"type": "deny"}}, "WITHDRAWN"),
        ({"status": "inactive"}, "WITHDRAWN"),
        ({"status": "rejected"}, "WITHDRAWN"),
    ],
)
def test_fhir_consent_status_and_provision_give_the_change(
    consent: dict[str, Any], kind: str
) -> None:
    from ingest.domain.fhir import parse_fhir

    [change] = parse_fhir(consent_bundle(consent), None, NOW.date()).consents
    assert (change.kind, change.datasets, change.recorded_at) == (kind, (), None)


def test_fhir_consent_datasets_and_time() -> None:
    from ingest.domain.fhir import parse_fhir

    consent = {
        "status": "inactive",
        "dateTime": "2026-02-27T10:15:00+09:00",
        "provision": {"purpose": [
            {"system": "urn:biostream:dataset", "code": "cohort-demo"},
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"},
        ]},
    }  # fmt: skip
    [change] = parse_fhir(consent_bundle(consent), None, NOW.date()).consents
    assert change.datasets == ("cohort-demo",)
    assert change.recorded_at == dt.datetime(2026, 2, 27, 1, 15, tzinfo=dt.UTC)


def test_undecided_fhir_consents_give_nothing_and_unknown_ones_reject_the_message() -> None:
    from ingest.domain.fhir import parse_fhir
    from ingest.domain.model import Rejected

    undecided = [{"status": s} for s in ("draft", "proposed", "entered-in-error")]
    assert parse_fhir(consent_bundle(*undecided), None, NOW.date()).consents == ()
    for bad in ({}, {"status": "revoked"}, {"status": "active", "provision": {"type": "maybe"}}):
        with pytest.raises(Rejected) as rejected:
            parse_fhir(consent_bundle(bad), None, NOW.date())
        assert rejected.value.reason_code == "FHIR_CONSENT_INVALID"
    with pytest.raises(Rejected) as rejected:
        parse_fhir(
            consent_bundle({"status": "inactive", "dateTime": "yesterday"}), None, NOW.date()
        )
    assert rejected.value.reason_code == "FHIR_DATE_INVALID"


def test_the_handler_writes_a_feeds_consent_for_the_messages_patient() -> None:
    from biostream.contract import Inbound
    from biostream.contracts import AUDIT_EVENT, IDENTITY_RECORD
    from biostream.envelopes import Envelopes
    from biostream.state import StateStore
    from biostream.topics import Topics
    from ingest.handlers import FeedMessageHandler, IngestMetrics
    from prometheus_client import CollectorRegistry

    codec, topics = default_codec(), Topics("u.")
    handler = FeedMessageHandler(
        codec, topics, Envelopes("ingest", "User:svc-ingest", codec, topics), KEY.encode(),
        IngestMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    value = consent_bundle({"status": "inactive"})
    headers = (("content-type", b"application/fhir+json"),)
    out = handler(Inbound(topics.feed("H001"), 0, 7, None, value, headers, 0), StateStore(), NOW)
    [event] = [
        codec.decode(o.value, CONSENT_EVENT) for o in out if o.topic == topics.consent_events
    ]
    ref = patient_ref(KEY.encode(), "H001", MRN)
    assert event == {
        "event_id": "H001/C-1/c0", "kind": "WITHDRAWN", "patient_ref": ref, "person_id": None,
        "datasets": [], "recorded_at": NOW, "source": "H001", "previous_patient_refs": [],
    }  # fmt: skip
    assert [o.key for o in out if o.topic == topics.consent_events] == [ref.encode()]
    [identity] = [
        codec.decode(o.value, IDENTITY_RECORD) for o in out if o.topic == topics.identity_records
    ]
    assert identity["patient_ref"] == ref
    [accepted] = [
        codec.decode(o.value, AUDIT_EVENT) for o in out if o.topic in topics.audit_event_topics
    ]
    assert accepted["outputs"] == ["H001/C-1/0", "H001/C-1/c0"]
    assert MRN not in json.dumps(event, default=str)
