"""tools/schema_compat.py: BACKWARD compatibility (new schema reads data written with the old)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "schema_compat.py"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_compat", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


schema_compat = _load_tool()

OLD: dict[str, Any] = {
    "type": "record",
    "name": "Sample",
    "namespace": "kr.biostream.test",
    "fields": [
        {"name": "record_id", "type": "string"},
        {"name": "family_name", "type": ["null", "string"], "default": None},
        {"name": "count", "type": "int"},
        {
            "name": "sex",
            "type": {"type": "enum", "name": "Sex", "symbols": ["M", "F"]},
        },
    ],
}


def _evolve(change: Any) -> tuple[str, str]:
    new = copy.deepcopy(OLD)
    change(new)
    return json.dumps(OLD), json.dumps(new)


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_identical_schema_is_compatible() -> None:
    assert schema_compat.check_pair(json.dumps(OLD), json.dumps(OLD)) == []


def test_adding_a_field_with_a_default_passes() -> None:
    old, new = _evolve(
        lambda s: s["fields"].append(
            {"name": "province_code", "type": ["null", "string"], "default": None}
        )
    )
    assert schema_compat.check_pair(old, new) == []


def test_adding_a_field_without_a_default_fails_and_names_the_field() -> None:
    old, new = _evolve(lambda s: s["fields"].append({"name": "province_code", "type": "string"}))
    problems = schema_compat.check_pair(old, new)
    assert problems
    assert any("province_code" in p for p in problems)


def test_removing_a_field_passes_backward() -> None:
    old, new = _evolve(lambda s: s["fields"].remove(_field(s, "family_name")))
    assert schema_compat.check_pair(old, new) == []


def test_changing_a_field_type_from_string_to_int_fails() -> None:
    old, new = _evolve(lambda s: _field(s, "record_id").update(type="int"))
    problems = schema_compat.check_pair(old, new)
    assert problems
    assert any("record_id" in p for p in problems)


def test_promoting_int_to_long_passes() -> None:
    old, new = _evolve(lambda s: _field(s, "count").update(type="long"))
    assert schema_compat.check_pair(old, new) == []


def test_adding_an_enum_symbol_passes() -> None:
    old, new = _evolve(lambda s: _field(s, "sex")["type"]["symbols"].append("U"))
    assert schema_compat.check_pair(old, new) == []


def test_removing_an_enum_symbol_fails() -> None:
    old, new = _evolve(lambda s: _field(s, "sex")["type"]["symbols"].remove("F"))
    assert schema_compat.check_pair(old, new)


def test_unparseable_new_schema_is_a_problem() -> None:
    assert schema_compat.check_pair(json.dumps(OLD), "{not json")


# --- the CLI ---------------------------------------------------------------------------------


def _run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_smoke_on_the_repository_exits_zero() -> None:
    result = _run_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INCOMPATIBLE" not in result.stdout


def test_cli_against_head_lists_every_current_schema() -> None:
    result = _run_cli("--base", "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in sorted((REPO / "schemas" / "avro").glob("*.avsc")):
        assert f"{path.name}: " in result.stdout


def test_cli_with_a_missing_base_ref_says_so_and_exits_zero() -> None:
    result = _run_cli("--base", "refs/heads/no-such-branch-for-schema-compat")
    assert result.returncode == 0
    assert "does not exist" in result.stdout


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def scratch_repo(tmp_path: Path) -> tuple[Path, str]:
    """A throwaway git repo whose index holds two schemas; the base is its tree id (no commit)."""
    repo = tmp_path / "repo"
    schema_dir = repo / "schemas" / "avro"
    schema_dir.mkdir(parents=True)
    _git(repo, "init", "-q")
    (schema_dir / "sample.avsc").write_text(json.dumps(OLD), encoding="utf-8")
    other = {**OLD, "name": "Other"}
    (schema_dir / "other.avsc").write_text(json.dumps(other), encoding="utf-8")
    _git(repo, "add", "schemas")
    return repo, _git(repo, "write-tree")


def test_cli_reports_incompatible_change_and_exits_one(scratch_repo: tuple[Path, str]) -> None:
    repo, base = scratch_repo
    new = copy.deepcopy(OLD)
    new["fields"].append({"name": "mandatory", "type": "string"})
    (repo / "schemas" / "avro" / "sample.avsc").write_text(json.dumps(new), encoding="utf-8")
    result = _run_cli("--repo", str(repo), "--base", base)
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("sample.avsc: INCOMPATIBLE:") and "mandatory" in line for line in lines
    )
    assert "other.avsc: ok" in lines


def test_cli_fails_when_a_base_schema_was_deleted(scratch_repo: tuple[Path, str]) -> None:
    repo, base = scratch_repo
    (repo / "schemas" / "avro" / "other.avsc").unlink()
    result = _run_cli("--repo", str(repo), "--base", base)
    assert result.returncode == 1, result.stdout
    assert any(line.startswith("other.avsc: DELETED") for line in result.stdout.splitlines())


def test_cli_reports_new_schema_and_compatible_change(scratch_repo: tuple[Path, str]) -> None:
    repo, base = scratch_repo
    new = copy.deepcopy(OLD)
    new["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    (repo / "schemas" / "avro" / "sample.avsc").write_text(json.dumps(new), encoding="utf-8")
    (repo / "schemas" / "avro" / "brand_new.avsc").write_text(
        json.dumps({**OLD, "name": "BrandNew"}), encoding="utf-8"
    )
    result = _run_cli("--repo", str(repo), "--base", base)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert "sample.avsc: ok" in lines
    assert "brand_new.avsc: new" in lines


def test_cli_base_without_schemas_exits_zero(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README").write_text("x", encoding="utf-8")
    _git(repo, "add", "README")
    base = _git(repo, "write-tree")
    result = _run_cli("--repo", str(repo), "--base", base)
    assert result.returncode == 0
    assert "has no schemas/avro" in result.stdout
