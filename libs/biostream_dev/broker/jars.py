"""The local broker: the Kafka jars from Maven Central."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from biostream_dev.broker.common import (
    DEPENDENCY_PLUGIN,
    JARS_MARKER,
    LIB_ENV,
    POM_PATH,
    REPO_ROOT,
    BrokerError,
)
from biostream_dev.broker.processes import tail_text


def kafka_version() -> str:
    """The Kafka version pinned in ``tools/kafka/pom.xml`` (``<kafka.version>``)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", POM_PATH.read_text())
    if match is None:
        raise BrokerError(f"no <kafka.version> property in {POM_PATH}")
    return match.group(1)


def lib_dir() -> Path:
    """Where the broker jars live: ``$BIOSTREAM_KAFKA_LIB`` or the per-version user cache."""
    override = os.environ.get(LIB_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "biostream" / f"kafka-{kafka_version()}" / "lib"


def _pom_digest() -> str:
    return hashlib.sha256(POM_PATH.read_bytes()).hexdigest()


def _jars_complete(lib: Path) -> bool:
    marker = lib / JARS_MARKER
    try:
        return marker.read_text().strip() == _pom_digest()
    except OSError:
        return False


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock (blocks) held for the duration of the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_jars() -> Path:
    """Make sure the Kafka runtime jars are in :func:`lib_dir` and return that directory.

    Runs Maven's dependency plugin once; a marker file (holding the pom's SHA-256) is written only
    after Maven succeeded, so an interrupted download, or a changed pom, is fetched again. Safe to
    call concurrently from several processes (file lock).
    """
    lib = lib_dir()
    if _jars_complete(lib):
        return lib
    with file_lock(lib.parent / f".{lib.name}.lock"):
        if _jars_complete(lib):
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("Maven ('mvn') is not on PATH; it is needed to fetch the Kafka jars")
        lib.mkdir(parents=True, exist_ok=True)
        (lib / JARS_MARKER).unlink(missing_ok=True)
        for stale in lib.glob("*.jar"):  # a half-finished or older set: start clean
            stale.unlink()
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM_PATH),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib}",
        ]
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=1800
        )
        if proc.returncode != 0 or not any(lib.glob("kafka_2.13-*.jar")):
            output = (proc.stdout + proc.stderr).strip()
            raise BrokerError(
                f"fetching Kafka jars failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"{tail_text(output, 60)}"
            )
        (lib / JARS_MARKER).write_text(_pom_digest() + "\n")
    return lib
