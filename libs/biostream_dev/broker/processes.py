"""The local broker: the JVM process, ports, and signalling only our own broker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from biostream_dev.broker.common import (
    LOG4J_CONFIG,
    LOG_FILE,
    LOG_LEVEL_ENV,
    PROPERTIES_FILE,
    STARTED_HERE,
    BrokerError,
)


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError("no 'java' on PATH (and no JAVA_HOME); Kafka needs Java 17+")
    return java


def jvm_args(lib: Path, heap_mb: int) -> list[str]:
    level = os.environ.get(LOG_LEVEL_ENV, "WARN")
    return [
        _java(),
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
        f"-Dbiostream.kafka.logLevel={level}",
        "-cp",
        str(lib / "*"),  # expanded by the JVM, not by a shell
    ]


def free_port() -> int:
    """A loopback port nothing listens on now (for test servers: Prometheus, service metrics)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all sockets held open until every port is chosen)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_ports_free(ports: Iterable[int], timeout: float) -> list[int]:
    """Wait until every port can be bound again; returns the ports still busy at the deadline.

    A SIGKILLed JVM shows up as a zombie (so :func:`is_our_broker` is already False) a moment
    before the kernel has closed its listening sockets.
    """
    deadline = time.monotonic() + timeout
    while True:
        busy = [port for port in ports if not _port_is_free(port)]
        if not busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.1)


def _reap(pid: int) -> bool:
    """Collect the exit status if ``pid`` is our child; True if it has exited."""
    child = STARTED_HERE.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        del STARTED_HERE[pid]
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (another process started it)
        return False
    return done == pid


def _cmdline(pid: int) -> list[str] | None:
    """argv of a live (non-zombie) process, or None."""
    proc = Path("/proc") / str(pid)
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
                return None
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            return None
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    if sys.platform.startswith("linux"):
        return None
    ps = subprocess.run(  # portable fallback (macOS): no /proc
        ["ps", "-o", "stat=,command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    out = ps.stdout.strip()
    if ps.returncode != 0 or not out or out.startswith("Z"):
        return None
    return out.split()[1:]


def has_exited(pid: int) -> bool:
    """True only when the process is really gone: its exit status when it is our child, else
    its /proc entry. (A cmdline check here misfired under load and abandoned live brokers.)"""
    child = STARTED_HERE.get(pid)
    if child is not None:
        return child.poll() is not None
    argv = _cmdline(pid)
    return argv is None and not (Path("/proc") / str(pid)).is_dir()


def is_our_broker(pid: int, run_dir: Path) -> bool:
    """Is ``pid`` alive and a java ``kafka.Kafka`` process of this run directory?"""
    if pid <= 0:
        return False
    _reap(pid)
    argv = _cmdline(pid)
    if not argv:
        return False
    return (
        Path(argv[0]).name == "java"
        and "kafka.Kafka" in argv
        and str(run_dir / PROPERTIES_FILE) in argv
    )


def wait_exit(pid: int, run_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_our_broker(pid, run_dir):
            return True
        time.sleep(0.1)
    return not is_our_broker(pid, run_dir)


def tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def log_tail(run_dir: Path, lines: int = 40) -> str:
    """Last lines of ``broker.log`` (empty string if there is none)."""
    path = run_dir.resolve() / LOG_FILE
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return tail_text(data, lines)


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (Linux ``/proc``), or None."""
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
