"""D48 on the access side: a submission asks for the disclosure-risk report with the board's
variants; the report is folded into the application once (a report sent twice, for an unknown
request or an older one changes nothing); the reviewer's page and the JSON view show it."""

from __future__ import annotations

import json
import re
import secrets

from access import testing
from access.adapters.pages import AccessPages
from access.adapters.stream import CommandDesk
from access.adapters.web import AccessApi
from access.domain.commands import Create, Submit
from access.domain.forms import RequestedData
from access.domain.risk import board_variants
from access.handlers import SERVICE, AccessHandler, AccessMetrics, application_view
from aiohttp.test_utils import TestClient, TestServer
from biostream.codec import default_codec
from biostream.contracts import AUDIT_EVENT, RISK_REPORT, RISK_REQUEST, RiskReport
from biostream.envelopes import Envelopes
from biostream.topics import Topics
from biostream.web_auth import Sessions, hash_password
from prometheus_client import CollectorRegistry

CODEC = default_codec()
TOPICS = Topics()
PASSWORD = secrets.token_urlsafe(12)


def handler() -> AccessHandler:
    return AccessHandler(
        testing.rules(), CODEC, TOPICS, Envelopes(SERVICE, "User:svc-access", CODEC, TOPICS),
        AccessMetrics.create(CollectorRegistry()),
    )  # fmt: skip


def submitted(h: AccessHandler) -> list[bytes]:
    decided = h.decide_all(
        "APP-1",
        [Create("APP-1", testing.APPLICANT, "dataset", testing.form()), Submit(testing.APPLICANT)],
        testing.NOW,
    )
    h.applied(decided.events)
    return [m.value or b"" for m in decided.messages if m.topic == TOPICS.risk_requests]


FIGURES = {
    "awaiting_link_decision": 3,
    "requested": {
        "k": 5, "persons": 40, "records": 90, "classes": 6, "appearances": 41,
        "min_class_size": 1, "median_class_size": 6.5,
        "histogram": [
            {"label": label, "classes": c, "persons": c * 3, "records": c * 7}
            for label, c in [("1", 1), ("2", 1), ("3-4", 0), ("5-9", 2), ("10-19", 2),
                             ("20-49", 0), ("50+", 0)]
        ],
        "classes_below_k": 2, "records_below_k": 5, "persons_below_k": 3,
        "share_records_below_k": 5 / 90, "share_persons_below_k": 3 / 40,
        "max_risk": 1.0, "average_risk": 6 / 41, "withheld": {"NO_CONSENT": 4},
    },
    "variants": [],
}  # fmt: skip


def report(request_id: str = "APP-1/risk/1", **changes: object) -> bytes:
    wire: RiskReport = {
        "request_id": request_id, "application_id": "APP-1", "computed_at": testing.NOW,
        "outcome": "COMPUTED", "error_reason": None, "records_read": 93,
        "figures_json": json.dumps(FIGURES),
    }  # fmt: skip
    wire.update(changes)  # type: ignore[typeddict-item]
    return CODEC.encode(RISK_REPORT, wire)


def test_a_submission_asks_for_the_report_with_the_boards_variants() -> None:
    h = handler()
    (raw,) = submitted(h)
    request = CODEC.decode(raw, RISK_REQUEST)
    assert request["request_id"] == "APP-1/risk/1" and request["requested_by"] == "system"
    draft = json.loads(request["draft_policy_json"])
    requested = testing.form().requested
    assert requested is not None
    assert draft["dataset"] == requested.dataset
    assert draft["k_anonymity"] == {"min_k": requested.min_k}
    assert json.loads(request["variants_json"]) == board_variants(requested)
    assert h.applications["APP-1"].risk_requests == ("APP-1/risk/1",)


def test_board_variants_change_only_what_the_draft_does_not_already_do() -> None:
    coarse = RequestedData.model_validate(
        {"dataset": "d-1", "record_types": ["Observation"], "fields": ["code"], "min_k": 10,
         "generalisation": {"birth": "age_band_5", "sex": "drop", "address": "province"}}
    )  # fmt: skip
    assert board_variants(coarse) == {}
    fine = coarse.model_copy(
        update={"min_k": 2, "generalisation": coarse.generalisation.model_copy(
            update={"birth": "year", "address": "district", "postal_digits": 2}
        )}
    )  # fmt: skip
    variants = board_variants(fine)
    assert variants["k raised to 10"] == {"min_k": 10}
    assert variants["all of these"] == {
        "min_k": 10, "birth": "age_band_5", "address": "province", "postal_digits": 0,
    }  # fmt: skip


def test_a_report_is_folded_once_and_audited() -> None:
    h = handler()
    submitted(h)
    decided = h.receive_risk_report(report(), testing.NOW)
    assert [e.type for e in decided.events] == ["risk_report_received"]
    audit = CODEC.decode(decided.messages[1].value, AUDIT_EVENT)
    assert audit["action"] == "access.risk_report_received"
    h.applied(decided.events)
    kept = h.applications["APP-1"].risk_report
    assert kept is not None and kept.figures == FIGURES
    assert h.receive_risk_report(report(), testing.NOW).messages == []  # sent twice
    assert h.receive_risk_report(report("APP-1/risk/9"), testing.NOW).messages == []
    assert h.receive_risk_report(b"garbage", testing.NOW).messages == []
    view = application_view(h.applications["APP-1"], h.rules)
    assert view["risk_report"]["figures"]["requested"]["persons"] == 40


async def test_a_board_member_reads_the_report_before_the_decision_the_applicant_does_not() -> None:
    h = handler()
    submitted(h)
    desk = CommandDesk(h, testing.RecordingWriter())
    users = {a: hash_password(PASSWORD) for a in (testing.APPLICANT, "chair", "rev-a")}
    sessions = Sessions(secrets.token_bytes(32), 3600)
    pages = AccessPages(desk, users, sessions, False)
    client: TestClient = TestClient(  # type: ignore[type-arg]
        TestServer(AccessApi(desk, users, sessions, False, pages=pages.routes()).app())
    )
    await client.start_server()
    try:
        await client.post("/signin", data={"account": "chair", "password": PASSWORD})
        page = await (await client.get("/application?id=APP-1")).text()
        assert "id='risk-pending'" in page
        await desk.run(lambda handler: handler.receive_risk_report(report(), testing.NOW))
        page = await (await client.get("/application?id=APP-1")).text()
        assert page.index("id='risk-table'") < page.index("id='decide'")
        assert "Share of records below k</th><td>5.6%" in page
        assert re.search(r"<th>5-9</th>.*?2 classes", page)
    finally:
        await client.close()
    applicant: TestClient = TestClient(  # type: ignore[type-arg]
        TestServer(AccessApi(desk, users, sessions, False, pages=pages.routes()).app())
    )
    await applicant.start_server()
    try:
        await applicant.post("/signin", data={"account": testing.APPLICANT, "password": PASSWORD})
        page = await (await applicant.get("/application?id=APP-1")).text()
        assert "risk-report" not in page
    finally:
        await applicant.close()


def test_a_report_that_could_not_be_computed_shows_its_reason() -> None:
    from access.adapters.risk_page import risk_section

    h = handler()
    submitted(h)
    bad = report(
        outcome="READ_STALLED", error_reason="clinical.records not read", figures_json=None
    )
    h.applied(h.receive_risk_report(bad, testing.NOW).events)
    assert "Not computed (READ_STALLED)" in risk_section(h.applications["APP-1"])
