"""GA4GH Passport visas (D47): who gets one and until when (the pure rule), the event it is, the
JWT verified with PyJWT against the published JWKS claim by claim, and the API and page that
hand it to the member, without a broker."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import replace
from typing import Any

import jwt
import pytest
from access import testing
from access.adapters.pages import AccessPages
from access.adapters.stream import CommandDesk
from access.adapters.visas import VISA_MEDIA_TYPE, VisaKeyError, VisaSigner
from access.adapters.web import AccessApi
from access.domain.application import Application, VisaIssued, evolve, replay
from access.domain.commands import AccessRules, CloseOut, Expire, IssueVisa, Refusal, Revoke
from access.domain.visas import visa_problem
from access.handlers import SERVICE, AccessHandler, AccessMetrics
from aiohttp.test_utils import TestClient, TestServer
from biostream.codec import default_codec
from biostream.contracts import AUDIT_EVENT
from biostream.envelopes import Envelopes
from biostream.topics import Topics
from biostream.web_auth import Sessions, hash_password
from prometheus_client import CollectorRegistry

NOW = testing.NOW
ISSUER = "https://access.test.example"
BOARD_URL = "https://drb.test.example"
PASSWORD = secrets.token_urlsafe(12)
CODEC = default_codec()


@pytest.fixture
def rules() -> AccessRules:
    return testing.rules()


def issue(rules: AccessRules, state: Application, account: str, at: dt.datetime) -> VisaIssued:
    outcome = rules.decide(state, IssueVisa(account, "visa-1"), at)
    assert not isinstance(outcome, Refusal), outcome
    [event] = outcome
    assert isinstance(event, VisaIssued)
    return event


def refusal(rules: AccessRules, state: Application, account: str, at: dt.datetime) -> str:
    outcome = rules.decide(state, IssueVisa(account, "visa-1"), at)
    assert isinstance(outcome, Refusal), outcome
    return outcome.code


def test_the_applicant_and_each_team_member_get_a_visa_until_the_end_date(
    rules: AccessRules,
) -> None:
    state = testing.approved(rules)
    assert state.valid_until is not None
    later = NOW + dt.timedelta(days=30)
    for account in (testing.APPLICANT, "analyst-1"):
        event = issue(rules, state, account, later)
        assert (event.subject, event.actor, event.jti) == (account, account, "visa-1")
        assert event.expires_at == state.valid_until  # exp is the approval's end, not longer
        assert event.sequence == state.sequence + 1
    # the event keeps the application approved, is kept in the state and replays
    after = evolve(state, issue(rules, state, "analyst-1", later))
    assert after.status == "approved" and [v.subject for v in after.visas] == ["analyst-1"]


def test_non_members_get_no_visa(rules: AccessRules) -> None:
    state = testing.approved(rules)
    for account in ("chair", "rev-a", "stranger"):  # board members decide, they get no data
        assert refusal(rules, state, account, NOW) == "NOT_MEMBER"


def test_no_visa_unless_the_approval_is_in_force(rules: AccessRules) -> None:
    approved = testing.approved(rules)
    assert approved.valid_until is not None
    # at or past its end date, even before the sweep has written the expiry
    assert refusal(rules, approved, testing.APPLICANT, approved.valid_until) == "APPROVAL_ENDED"
    expired = evolve(approved, _one(rules, approved, Expire(), approved.valid_until))
    revoked = evolve(approved, _one(rules, approved, Revoke("chair", "breach"), NOW))
    closed = evolve(revoked, _one(rules, revoked, CloseOut(testing.APPLICANT, "ef" * 32), NOW))
    for state in (expired, revoked, closed):
        assert refusal(rules, state, testing.APPLICANT, NOW) == "NOT_APPROVED"
    # not yet approved: under review
    under_review = replay(
        [e for e in _events(rules) if e.type not in ("approved",)]
    )  # the history up to the last vote
    assert under_review is not None and under_review.status == "under_review"
    assert refusal(rules, under_review, testing.APPLICANT, NOW) == "NOT_APPROVED"
    # a re-identification approval grants no dataset
    reid = replace(approved, kind="reidentification")
    assert visa_problem(reid, testing.APPLICANT, BOARD_URL, NOW) is not None
    assert visa_problem(reid, testing.APPLICANT, BOARD_URL, NOW).code == "NO_DATASET_GRANT"  # type: ignore[union-attr]


def test_a_board_without_a_url_issues_no_visa() -> None:
    state = testing.approved(testing.rules())
    assert visa_problem(state, testing.APPLICANT, None, NOW).code == "NO_BOARD_URL"  # type: ignore[union-attr]


def _one(rules: AccessRules, state: Application, command: Any, at: dt.datetime) -> Any:
    outcome = rules.decide(state, command, at)
    assert not isinstance(outcome, Refusal), outcome
    return outcome[0]


def _events(rules: AccessRules) -> list[Any]:
    state: Application | None = None
    events = []
    for command in testing.approval_commands("APP-1"):
        outcome = rules.decide(state, command, NOW)
        assert not isinstance(outcome, Refusal)
        for event in outcome:
            state = evolve(state, event)
            events.append(event)
    return events


def signer() -> VisaSigner:
    return VisaSigner.from_pem(testing.visa_key_pem(), ISSUER, BOARD_URL)


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a Passport Clearinghouse does: the key named by ``kid`` in the JWKS, EdDSA only,
    every registered claim required."""
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return jwt.decode(
        token, key, algorithms=["EdDSA"], issuer=ISSUER,
        options={"require": ["iss", "sub", "iat", "exp", "jti"]},
    )  # fmt: skip


def test_the_visa_verifies_against_the_jwks_claim_by_claim(rules: AccessRules) -> None:
    state = testing.approved(rules)
    assert state.approval is not None and state.valid_until is not None
    issued = issue(rules, state, "analyst-1", NOW + dt.timedelta(hours=1))
    visa_signer = signer()
    token = visa_signer.token(evolve(state, issued), issued)
    header = jwt.get_unverified_header(token)
    assert header == {
        "alg": "EdDSA", "typ": VISA_MEDIA_TYPE, "kid": visa_signer.key_id,
        "jku": ISSUER + "/.well-known/jwks.json",
    }  # fmt: skip
    claims = verify(token, visa_signer.jwks())
    assert claims == {
        "iss": ISSUER,
        "sub": "analyst-1",
        "iat": int(issued.at.timestamp()),
        "exp": int(state.valid_until.timestamp()),
        "jti": "visa-1",
        "ga4gh_visa_v1": {
            "type": "ControlledAccessGrants",
            "asserted": int(state.approval.at.timestamp()),
            "value": BOARD_URL + "/datasets/diabetes-cohort",
            "source": BOARD_URL,
            "by": "dac",
        },
    }
    # another key's JWKS does not verify it; a changed byte does not either
    with pytest.raises(jwt.InvalidSignatureError):
        verify(token, {"keys": [{**signer().jwks()["keys"][0], "kid": visa_signer.key_id}]})
    head, body, signature = token.split(".")
    tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
    with pytest.raises(jwt.InvalidTokenError):
        verify(tampered, visa_signer.jwks())


def test_the_jwks_holds_the_public_key_only() -> None:
    visa_signer = signer()
    [key] = visa_signer.jwks()["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # no "d": no private part
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


def test_unusable_keys_and_issuers_are_refused_without_quoting_the_key() -> None:
    pem = testing.visa_key_pem()
    with pytest.raises(VisaKeyError) as not_pem:
        VisaSigner.from_pem(b"not a key", ISSUER, BOARD_URL)
    assert "not a key" not in str(not_pem.value)
    with pytest.raises(VisaKeyError, match="visa_issuer"):
        VisaSigner.from_pem(pem, "http://plain.example", BOARD_URL)
    with pytest.raises(VisaKeyError, match="url"):
        VisaSigner.from_pem(pem, ISSUER, None)


# ------------------------------------------------------------------------ the API and the page


def approved_desk(writer: testing.RecordingWriter) -> CommandDesk:
    topics = Topics()
    handler = AccessHandler(
        testing.rules(), CODEC, topics, Envelopes(SERVICE, "User:svc-access", CODEC, topics),
        AccessMetrics.create(CollectorRegistry()),
    )  # fmt: skip
    handler.applied(_events(handler.rules))
    return CommandDesk(handler, writer)


async def served(command_desk: CommandDesk, visa_signer: VisaSigner) -> TestClient:  # type: ignore[type-arg]
    accounts = (testing.APPLICANT, "analyst-1", "rev-a", "outsider")
    users = {a: hash_password(PASSWORD) for a in accounts}
    sessions = Sessions(secrets.token_bytes(32), 3600)
    pages = AccessPages(command_desk, users, sessions, False, visas=visa_signer)
    api = AccessApi(
        command_desk, users, sessions, False, pages=pages.routes(), visas=visa_signer,
        clock=lambda: NOW + dt.timedelta(hours=1),
    )  # fmt: skip
    pages.clock = api.clock
    client: TestClient = TestClient(TestServer(api.app()))  # type: ignore[type-arg]
    await client.start_server()
    return client


async def login(client: TestClient, account: str) -> dict[str, str]:  # type: ignore[type-arg]
    response = await client.post("/login", json={"account": account, "password": PASSWORD})
    assert response.status == 200
    return {"X-CSRF-Token": (await response.json())["csrf"]}


async def test_the_api_issues_the_members_visa_and_records_it_first() -> None:
    writer = testing.RecordingWriter()
    command_desk, visa_signer = approved_desk(writer), signer()
    member, board_member, outsider = [await served(command_desk, visa_signer) for _ in range(3)]
    try:
        jwks = await (await outsider.get("/.well-known/jwks.json")).json()  # no session needed
        assert jwks == visa_signer.jwks()
        csrf = await login(member, "analyst-1")
        assert (await member.post("/api/applications/APP-1/visa")).status == 403  # no CSRF
        answer = await member.post("/api/applications/APP-1/visa", headers=csrf)
        assert answer.status == 200
        body = await answer.json()
        claims = verify(body["visa"], jwks)
        assert (claims["sub"], claims["jti"]) == ("analyst-1", body["jti"])
        # the event and its audit event were written before the token was handed out
        [transaction] = writer.transactions
        assert [m.topic for m in transaction] == ["access.events", "audit.events.svc-access"]
        audit = CODEC.decode(transaction[1].value, AUDIT_EVENT)
        assert audit["action"] == "access.visa_issued" and audit["dataset"] == "diabetes-cohort"
        assert body["visa"] not in repr(audit) and body["visa"] not in repr(transaction)
        shown = await (await member.get("/api/applications/APP-1")).json()
        assert [v["jti"] for v in shown["visas"]] == [body["jti"]]
        # a board member sees the application but gets no visa; an outsider does not see it
        refused = await board_member.post(
            "/api/applications/APP-1/visa", headers=await login(board_member, "rev-a")
        )
        assert refused.status == 409 and (await refused.json())["code"] == "NOT_MEMBER"
        hidden = await outsider.post(
            "/api/applications/APP-1/visa", headers=await login(outsider, "outsider")
        )
        assert hidden.status == 404
        assert len(writer.transactions) == 2  # the refusal's audit event; nothing for 404
    finally:
        for client in (member, board_member, outsider):
            await client.close()


async def test_the_page_shows_the_member_their_visa() -> None:
    writer = testing.RecordingWriter()
    command_desk, visa_signer = approved_desk(writer), signer()
    client = await served(command_desk, visa_signer)
    try:
        await client.post("/signin", data={"account": testing.APPLICANT, "password": PASSWORD})
        page = await (await client.get("/application?id=APP-1")).text()
        assert "id='get-visa'" in page
        csrf = re.findall(r"name='csrf' value='([^']+)'", page)[0]
        shown = await client.post("/act", data={"id": "APP-1", "command": "visa", "csrf": csrf})
        text = await shown.text()
        assert shown.status == 200 and shown.headers["Cache-Control"] == "no-store"
        [token] = re.findall(r"<pre id='visa-token'>([^<]+)</pre>", text)
        assert verify(token, visa_signer.jwks())["sub"] == testing.APPLICANT
        again = await (await client.get("/application?id=APP-1")).text()
        assert "Visas issued" in again and testing.APPLICANT in again
    finally:
        await client.close()
