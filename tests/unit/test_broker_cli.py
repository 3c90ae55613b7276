"""``python -m biostream_dev.broker start --property KEY=VALUE``: extra broker settings by hand,
e.g. the short default retention the retention e2e test runs under."""

from __future__ import annotations

from pathlib import Path

import pytest
from biostream_dev import broker
from biostream_dev.broker import cli as broker_cli


def test_properties_are_parsed_as_key_value_pairs() -> None:
    assert broker.parse_properties(["log.retention.ms=60000", " log.roll.ms = 5000 "]) == {
        "log.retention.ms": "60000",
        "log.roll.ms": "5000",
    }


def test_a_malformed_property_stops_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = broker.main(["start", "--dir", str(tmp_path / "run"), "--property", "log.retention.ms"])
    assert code == 2
    assert "--property wants KEY=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_extra_properties_override_the_generated_ones(tmp_path: Path) -> None:
    props = broker.broker_properties(tmp_path, 9092, 9093, {"log.retention.ms": "60000"})
    assert props["log.retention.ms"] == "60000" and props["node.id"] == "1"


def test_auth_starts_the_broker_the_tests_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--auth`` is what tests/conftest.py's BIOSTREAM_TEST_BROKER_DIR expects: SASL and ACLs."""
    seen: dict[str, object] = {}

    def fake_start(*args: object, **kwargs: object) -> broker.BrokerInfo:
        seen.update(kwargs)
        raise broker.BrokerError("not started in a unit test")

    monkeypatch.setattr(broker_cli, "start_broker", fake_start)
    assert broker.main(["start", "--dir", "run", "--auth"]) == 2
    assert seen["authentication"] is True
    assert broker.main(["start", "--dir", "run"]) == 2
    assert seen["authentication"] is False
