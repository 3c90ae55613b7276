"""The steward's command line (D35): its identity is the principal its Kafka credentials
authenticate, only the steward role acts there, no flag names a reviewer, a case reference has a
shape, and an unsealing's audit event names the letter, the case and the steward, never the bytes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from biostream.codec import default_codec
from biostream.contracts import AUDIT_EVENT
from biostream.sealing import Sealer, SealError, SealingKeys
from biostream.settings import KafkaSettings
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from review.__main__ import app
from review.bootstrap import build_steward_handler
from review.cli import opened
from review.domain.steward import NotASteward, case_reference, command_line_steward
from review.settings import ReviewSettings
from typer.testing import CliRunner

NOW = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)


def test_the_steward_is_the_authenticated_principal() -> None:
    assert command_line_steward("User:t1.steward", "t1.") == "t1.steward"
    assert command_line_steward("User:steward", "") == "steward"
    for other in ("User:t1.svc-review", "User:t1.auditor", "User:steward", "User:t2.steward"):
        with pytest.raises(NotASteward, match="steward"):
            command_line_steward(other, "t1.")


def test_the_handler_names_the_credentials_principal() -> None:
    kafka = KafkaSettings(sasl_username="t1.steward", sasl_password=SecretStr("x"))
    settings = ReviewSettings(kafka=kafka, topic_prefix="t1.")
    handler = build_steward_handler(settings, CollectorRegistry())
    assert handler.envelopes.principal == "User:t1.steward"
    assert handler.envelopes.audit_topic == "t1.audit.events.steward"
    # The command line reads the tasks and the decisions, never identity records.
    assert handler.steward_topics == ["t1.linkage.review-tasks", "t1.linkage.review-decisions"]


def test_decide_takes_no_reviewer_flag() -> None:
    result = CliRunner().invoke(
        app, ["decide", "review/pr_1/0", "--decision", "ESCALATE", "--reason", "x",
              "--reviewer", "someone-else"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_decide_refuses_credentials_other_than_the_stewards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BIOSTREAM_KAFKA__SASL_USERNAME", "svc-review")
    monkeypatch.setenv("BIOSTREAM_KAFKA__SASL_PASSWORD", "not-used")
    result = CliRunner().invoke(
        app, ["decide", "review/pr_1/0", "--decision", "ESCALATE", "--reason", "x"]
    )
    assert result.exit_code == 2
    assert "User:svc-review" in result.output


@pytest.mark.parametrize("text", ["", "  ", "two words", "x" * 65, "tab\there"])
def test_a_case_reference_has_a_shape(text: str) -> None:
    with pytest.raises(ValueError, match="case reference"):
        case_reference(text)
    assert case_reference("  INC-2026-0042 ") == "INC-2026-0042"


def test_the_unseal_audit_event_holds_no_original() -> None:
    settings = ReviewSettings(topic_prefix="t1.", principal="User:t1.steward")
    handler = build_steward_handler(settings, CollectorRegistry())
    event = handler.unsealed("ingest/t1.feed.H001/0/7", "INC-1", "t1.steward", "H001", NOW)
    assert event.topic == "t1.audit.events.steward"
    decoded = default_codec().decode(event.value or b"", AUDIT_EVENT)
    assert decoded["principal"] == "User:t1.steward"
    assert decoded["action"] == "review.dead_letter_unsealed"
    assert decoded["inputs"] == ["ingest/t1.feed.H001/0/7"]
    assert decoded["outputs"][:2] == ["steward:t1.steward", "case:INC-1"]
    assert (decoded["purpose"], decoded["hospital"]) == ("INC-1", "H001")


def test_a_sealed_original_opens_only_with_its_key_and_its_letter() -> None:
    key = b"k" * 32
    keys = SealingKeys.single(key, "dead_letter")
    sealer = keys.for_input(0)
    letter = {
        "dead_letter_id": "ingest/x/0/1",
        "original": b"",
        "sealed_original": sealer.seal(b"PID|1|", "ingest/x/0/1"),
        "seal_key_id": sealer.key_id,
    }
    assert opened(letter, keys) == b"PID|1|"
    assert opened({**letter, "seal_key_id": None}, keys) == b"PID|1|"  # before D33
    with pytest.raises(SealError):
        opened(letter, SealingKeys.single(b"j" * 32, "dead_letter"))
    with pytest.raises(SealError):
        opened({**letter, "dead_letter_id": "ingest/x/0/2"}, keys)
    with pytest.raises(SealError, match="no dead-letter key"):
        opened(letter, None)
    assert opened({**letter, "sealed_original": None, "original": b"clear"}, None) == b"clear"


LETTER_ID = "ingest/t1.feed.H001/0/7"
SECRET = "PID|1||8801234^^^H001||황보^지현"


@pytest.fixture
def unsealing(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The command with the topic and the broker replaced: the letter is found, and every write
    and every line printed is recorded in order."""
    import review.cli as commands

    key = b"k" * 32
    letter = {
        "dead_letter_id": LETTER_ID, "hospital": "H001", "original": b"",
        "sealed_original": Sealer(key).seal(SECRET.encode(), LETTER_ID),
        "seal_key_id": Sealer(key).key_id,
    }  # fmt: skip
    monkeypatch.setenv("BIOSTREAM_DEAD_LETTER_KEY", key.decode())
    monkeypatch.setenv("BIOSTREAM_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("BIOSTREAM_PRINCIPAL", "User:t1.steward")
    happened: list[tuple[str, str]] = []

    async def found(*_: object) -> dict[str, object]:
        return letter

    monkeypatch.setattr(commands, "find_dead_letter", found)
    monkeypatch.setattr(commands.typer, "echo", lambda text, **_: happened.append(("echo", text)))
    return happened


def test_the_original_is_shown_only_after_its_audit_event_is_written(
    unsealing: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import review.cli as commands

    async def published(_: object, messages: list[Any]) -> None:
        [event] = messages
        unsealing.append(("audit", event.topic))

    monkeypatch.setattr(commands, "_publish", published)
    result = CliRunner().invoke(app, ["unseal-dead-letter", LETTER_ID, "--case", "INC-7"])
    assert result.exit_code == 0, result.output
    assert [kind for kind, _ in unsealing] == ["audit", "echo"]
    assert unsealing[0][1] == "t1.audit.events.steward"
    assert SECRET in unsealing[1][1]


def test_nothing_is_shown_when_the_audit_event_cannot_be_written(
    unsealing: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import review.cli as commands

    async def refused(*_: object) -> None:
        raise RuntimeError("TopicAuthorizationFailedError")

    monkeypatch.setattr(commands, "_publish", refused)
    result = CliRunner().invoke(app, ["unseal-dead-letter", LETTER_ID, "--case", "INC-7"])
    assert result.exit_code == 4
    assert all(SECRET not in text and "황보" not in text for _, text in unsealing)
    assert any("nothing is shown" in text for _, text in unsealing)
