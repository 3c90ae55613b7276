"""The command line refuses bad policies and missing keys at start-up, and re-identification
without an approval reference, before touching Kafka."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pseudonymizer.__main__ import app
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BIOSTREAM_POLICY_DIR", "BIOSTREAM_KEYS_DIR", "BIOSTREAM_PSEUDONYM_KEYS"):
        monkeypatch.delenv(name, raising=False)
    policies = tmp_path / "policies"
    policies.mkdir()
    document = json.loads((REPO / "policies" / "cohort-demo.json").read_text())
    (policies / "cohort-demo.json").write_text(json.dumps(document))
    monkeypatch.setenv("BIOSTREAM_POLICY_DIR", str(policies))
    monkeypatch.setenv("BIOSTREAM_PSEUDONYM_KEYS", json.dumps({"cohort-demo/k1": "x" * 64}))
    return policies


def test_check_lists_the_policies(env: Path) -> None:
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "cohort-demo@2: approval DRB-DEMO-2026-001" in result.output
    assert re.search(r"digest sha256:[0-9a-f]{64}$", result.output.strip())
    assert "x" * 16 not in result.output


@pytest.mark.parametrize("command", [["run"], ["check"]])
def test_an_unknown_field_is_refused_at_start_up(
    env: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = json.loads((env / "cohort-demo.json").read_text())
    document["fields"].append("rrn")
    (env / "cohort-demo.json").write_text(json.dumps(document))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert "refused to start" in result.output and "unknown fields ['rrn']" in result.output


def test_a_missing_key_is_refused_at_start_up(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOSTREAM_PSEUDONYM_KEYS", "{}")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert "no key cohort-demo/k1" in result.output


@pytest.mark.parametrize("approval", [None, "  "])
def test_reidentification_requires_an_approval_reference(env: Path, approval: str | None) -> None:
    args = ["reidentify", "--dataset", "cohort-demo", "--pseudonym", "ps_x"]
    if approval is not None:
        args += ["--approval", approval]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2


def test_reidentification_is_refused_to_any_principal_but_the_steward(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOSTREAM_KAFKA__SASL_USERNAME", "svc-pseudonymizer")
    monkeypatch.setenv("BIOSTREAM_KAFKA__SASL_PASSWORD", "not-used")
    args = ["reidentify", "--dataset", "cohort-demo", "--pseudonym", "ps_x", "--approval", "DRB-1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "runs as the steward principal, not User:svc-pseudonymizer" in result.output
