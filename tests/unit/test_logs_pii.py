"""biostream.logs: JSON logs carry references, never personal data."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from biostream.logs import ALLOWED_KEYS, configure_logging, get_logger, mask_identifiers

RRN = "971013-9019902"
RRN_DIGITS = "9710139019902"


class LogCapture:
    """configure_logging binds the sys.stderr of the moment, and pytest swaps in a fresh captured
    stderr for the test call: so logging is configured inside the test body, through this."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def logger(self, level: str = "DEBUG") -> Any:
        configure_logging("ingest", level=level, instance="7")
        return get_logger("t")

    def lines(self) -> list[dict[str, Any]]:
        err = self._capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.strip()]


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[LogCapture]:
    yield LogCapture(capsys)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_rrn_in_a_string_value_is_masked(logs: LogCapture) -> None:
    logs.logger().info(f"linked patient {RRN}", record_id=f"H001/{RRN_DIGITS}/0")
    (line,) = logs.lines()
    assert RRN not in json.dumps(line, ensure_ascii=False)
    assert RRN_DIGITS not in json.dumps(line, ensure_ascii=False)
    assert line["event"] == "linked patient [RRN]"
    assert line["record_id"] == "H001/[RRN]/0"
    assert line["service"] == "ingest"
    assert line["instance"] == "7"
    assert line["level"] == "info"


def test_phone_and_email_in_values_are_masked(logs: LogCapture) -> None:
    logs.logger().warning("call 010-1234-5678 or +82 10 9876 5432, mail minsu@example.kr")
    (line,) = logs.lines()
    assert line["event"] == "call [PHONE] or [PHONE], mail [EMAIL]"


def test_disallowed_key_is_dropped_and_named(logs: LogCapture) -> None:
    logs.logger().info("identity received", name="김민준", birth_date="1990-01-01", count=1)
    (line,) = logs.lines()
    assert "name" not in line
    assert "birth_date" not in line
    assert "김민준" not in json.dumps(line, ensure_ascii=False)
    assert "1990-01-01" not in json.dumps(line, ensure_ascii=False)
    assert line["dropped_keys"] == ["birth_date", "name"]
    assert line["count"] == 1


def test_bound_context_with_disallowed_key_is_dropped(logs: LogCapture) -> None:
    logs.logger().bind(phone="010-1234-5678", hospital="H001").info("bound")
    (line,) = logs.lines()
    assert "phone" not in line
    assert line["hospital"] == "H001"


def test_exception_message_with_rrn_is_not_rendered(logs: LogCapture) -> None:
    log = logs.logger()
    try:
        raise ValueError(f"bad identifier {RRN} for 김민준")
    except ValueError:
        log.exception("parse failed", reason_code="RRN_DATE_INVALID")
    (line,) = logs.lines()
    text = json.dumps(line, ensure_ascii=False)
    assert RRN not in text and RRN_DIGITS not in text and "[RRN]" not in text
    assert "김민준" not in text
    assert "bad identifier" not in text
    assert line["error_type"] == "ValueError"
    assert line["reason_code"] == "RRN_DATE_INVALID"
    assert line["stack"] and all(isinstance(frame, str) for frame in line["stack"])
    assert any("test_exception_message_with_rrn_is_not_rendered" in f for f in line["stack"])


def test_exception_instance_passed_as_exc_info_is_not_rendered(logs: LogCapture) -> None:
    logs.logger().error("failed", exc_info=KeyError(RRN))
    (line,) = logs.lines()
    assert RRN not in json.dumps(line) and RRN_DIGITS not in json.dumps(line)
    assert line["error_type"] == "KeyError"


def test_rrn_inside_a_list_value_is_masked(logs: LogCapture) -> None:
    # "records" is an allowed key that holds a list; its strings are values like any other.
    logs.logger().info("batch", records=[f"H001/{RRN_DIGITS}/0", "H001/m2/0"])
    (line,) = logs.lines()
    assert RRN_DIGITS not in json.dumps(line)


def test_level_filter(logs: LogCapture) -> None:
    log = logs.logger("WARNING")
    log.info("hidden")
    log.warning("shown")
    assert [line["event"] for line in logs.lines()] == ["shown"]


def test_allowed_keys_hold_no_identifier_names() -> None:
    for key in ("name", "rrn", "phone", "address", "birth_date", "email", "local_patient_no"):
        assert key not in ALLOWED_KEYS


def test_mask_identifiers_function() -> None:
    assert mask_identifiers(f"{RRN} {RRN_DIGITS}") == "[RRN] [RRN]"
    assert mask_identifiers("01012345678") == "[PHONE]"
    assert mask_identifiers("H001/MSG-0001/0 offset 42") == "H001/MSG-0001/0 offset 42"


def test_third_party_stdlib_logging_is_json_and_masked(logs: LogCapture) -> None:
    logs.logger()
    logging.getLogger("aiokafka.consumer").warning("offset for %s at %s", RRN, "tp-0")
    logging.getLogger("some.library").info("call 010-1234-5678 now")
    first, second = logs.lines()
    assert first["event"] == "offset for [RRN] at tp-0"
    assert first["logger"] == "aiokafka.consumer"
    assert first["level"] == "warning"
    assert first["service"] == "ingest"
    assert second["event"] == "call [PHONE] now"


def test_aiokafka_chatter_below_warning_is_dropped(logs: LogCapture) -> None:
    logs.logger(level="INFO")
    logging.getLogger("aiokafka.conn").info("Discovered coordinator 1")
    logging.getLogger("aiokafka.conn").error("Unable connect to 127.0.0.1:1")
    [line] = logs.lines()
    assert line["level"] == "error"
