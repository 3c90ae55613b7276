"""`make demo` and `make test` on a fresh machine: tools/system-deps.sh either installs what is
missing or stops at once with the one command that installs it (issue 16, item 8).

Run here on a PATH that holds only a few basic programs and an `id` that answers a non-root
user with no sudo, so nothing can actually be installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "system-deps.sh"


def bare_path(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("bash", "dirname", "grep", "python3"):
        found = shutil.which(program)
        assert found is not None
        (bin_dir / program).symlink_to(found)
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    return bin_dir


def run_script(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    bin_dir = bare_path(tmp_path)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT), mode],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "expected", "not_expected"),
    [
        ("demo", ["openjdk-17-jre-headless", "maven"], ["prometheus", "chromium"]),
        (
            "test",
            ["openjdk-17-jre-headless", "maven", "prometheus", "chromium", "fonts-nanum"],
            [],
        ),
    ],
)
def test_without_root_it_stops_with_the_install_command(
    tmp_path: Path, mode: str, expected: list[str], not_expected: list[str]
) -> None:
    result = run_script(tmp_path, mode)
    assert result.returncode == 1, result.stderr
    command = next(
        line for line in result.stderr.splitlines() if "install them with:" in line
    ).split("install them with:", 1)[1]
    assert command.strip().startswith("sudo apt-get update && sudo apt-get install -y")
    packages = command.split("--no-install-recommends", 1)[1].split()
    assert all(p in packages for p in expected), packages
    assert not any(p in packages for p in not_expected), packages


def test_nothing_missing_means_nothing_to_do() -> None:
    """On this machine (after `make test`'s own set-up) the script passes without installing."""
    result = subprocess.run(
        ["bash", str(SCRIPT), "test"], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "installing" not in result.stdout


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    result = run_script(tmp_path, "everything")
    assert result.returncode == 2
    assert "usage" in result.stderr
