"""The house plan is enforced: `make lint` runs the import contracts in pyproject.toml
(import-linter), and domain modules read no clock and no environment.

The contract test copies the tree to a temporary folder, adds one forbidden import there, and
runs the same `lint-imports` on the copy: it must fail and name the contract, so a contract that
silently checks nothing would be noticed."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [
    "libs", "harness", "consumers", "services/ingest", "services/linkage",
    "services/pseudonymizer", "services/audit", "services/review", "services/access",
]  # fmt: skip
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def copy_tree(target: Path) -> None:
    for root in SOURCE_ROOTS:
        shutil.copytree(ROOT / root, target / root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / r) for r in SOURCE_ROOTS)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def add_import(path: Path, line: str) -> None:
    text = path.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text
    path.write_text(text.replace(marker, marker + line + "\n", 1))


@pytest.mark.parametrize(
    ("module", "violation", "contract"),
    [
        ("libs/biostream/topics.py", "import ingest.handlers", "import no service"),
        ("libs/biostream_dev/observer.py", "import biostream_harness.demo", "import no service"),
        ("services/linkage/linkage/handlers.py", "import pseudonymizer.domain.release",
         "never import each other"),
        ("services/audit/audit/handlers.py", "import biostream_dev.broker",
         "never import the harness"),
        ("services/pseudonymizer/pseudonymizer/domain/release.py", "import aiokafka",
         "Domains decide"),
        ("services/ingest/ingest/domain/dedup.py", "import ingest.handlers",
         "Service layers"),
        ("services/linkage/linkage/domain/index.py", "import linkage.state",
         "Service layers"),
        ("services/linkage/linkage/state.py", "import linkage.handlers",
         "Service layers"),
        ("services/audit/audit/bootstrap.py", "import audit.cli",
         "Service layers"),
    ],
)  # fmt: skip
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, violation: str, contract: str
) -> None:
    copy_tree(tmp_path)
    assert lint_imports(tmp_path).returncode == 0  # the copy itself keeps every contract
    add_import(tmp_path / module, violation)
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout[-2000:]


# Reading the clock or the environment: what a domain must be given instead (time is an argument).
FORBIDDEN_CALLS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("os", "getenv"),
}  # fmt: skip


def clock_and_environment_uses(path: Path) -> list[str]:
    """``<line> <owner>.<name>`` for each read of the clock or the environment in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (name, node.attr) in FORBIDDEN_CALLS or (name == "os" and node.attr == "environ"):
                found.append(f"{node.lineno} {name}.{node.attr}")
    return found


def domain_files() -> list[Path]:
    return sorted(
        p
        for pattern in ("services/*/*/domain/**/*.py", "consumers/*/domain/**/*.py")
        for p in ROOT.glob(pattern)
    )


def test_domains_read_no_clock_and_no_environment() -> None:
    files = domain_files()
    assert len(files) > 20
    uses = [f"{p.relative_to(ROOT)}:{use}" for p in files for use in clock_and_environment_uses(p)]
    assert uses == []


def test_the_clock_check_sees_a_clock(tmp_path: Path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(
        "import datetime as dt\nimport os\nimport time\n"
        "A = dt.datetime.now(dt.UTC)\nB = os.environ['X']\nC = time.monotonic()\n"
    )
    assert clock_and_environment_uses(path) == [
        "4 datetime.now",
        "5 os.environ",
        "6 time.monotonic",
    ]
