"""Single-node Apache Kafka (KRaft) broker on loopback, run from Maven Central jars.

No Docker and no Kafka tarball: ``tools/kafka/pom.xml`` names the Kafka version, Maven copies the
runtime jars into a cache directory, and the broker runs as ``java -cp '<lib>/*' kafka.Kafka``.

Layout of a run directory (``run_dir``)::

    server.properties   generated on every start (see :func:`broker_properties`)
    data/               log.dirs (KRaft metadata log + topic data), formatted once
    broker.log          JVM stdout+stderr (log4j2 -> stdout), appended across restarts
    broker.json         pid, ports, bootstrap, cluster id, ... of the last start
    .lock               serialises start/stop of the same run_dir across processes

Python API: :func:`ensure_jars`, :func:`start_broker`, :func:`stop_broker`, :func:`kill_broker`,
:func:`restart_broker`, :func:`pause_broker`/:func:`resume_broker` (and :func:`paused`),
:func:`broker_status`, :func:`wait_until_ready`.

CLI::

    python -m biostream_dev.broker fetch
    python -m biostream_dev.broker start --dir D [--port P] [--heap-mb M] [--timeout S]
    python -m biostream_dev.broker stop --dir D
    python -m biostream_dev.broker status --dir D
    python -m biostream_dev.broker kill --dir D       # SIGKILL (fault tests)
    python -m biostream_dev.broker restart --dir D    # same ports, same data
    python -m biostream_dev.broker pause --dir D      # SIGSTOP: unresponsive, not gone (fault tests)
    python -m biostream_dev.broker resume --dir D     # SIGCONT

Processes are only ever signalled by the PID recorded in ``broker.json``, after checking that the
PID is still a java process running ``kafka.Kafka`` with this run directory (never by name).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_TOOLS_DIR = REPO_ROOT / "tools" / "kafka"
POM_PATH = KAFKA_TOOLS_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_TOOLS_DIR / "log4j2.properties"

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
LIB_ENV = "BIOSTREAM_KAFKA_LIB"
LOG_LEVEL_ENV = "BIOSTREAM_KAFKA_LOG_LEVEL"
JARS_MARKER = ".biostream-jars-complete"

NODE_ID = 1
CLIENT_LISTENER = "CLIENT"
CONTROLLER_LISTENER = "CONTROLLER"
PROBE_TOPIC = "_biostream_ready_probe"

DEFAULT_HEAP_MB = 512
DEFAULT_READY_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 30.0
PORT_RELEASE_TIMEOUT = 10.0

_RECORD = "broker.json"
_PROPERTIES = "server.properties"
_LOG = "broker.log"
_DATA = "data"
_LOCK = ".lock"

_T = TypeVar("_T")

# Popen objects of brokers started by this process, so they can be reaped (no zombies, no
# "subprocess is still running" ResourceWarning when the Popen is garbage-collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(RuntimeError):
    """The broker (or the jar download) failed; the message carries the relevant log tail."""


@dataclass(frozen=True)
class BrokerInfo:
    """A running (or last started) broker of one run directory."""

    bootstrap: str
    pid: int
    run_dir: Path
    log_path: Path
    port: int
    controller_port: int
    cluster_id: str
    kafka_version: str
    heap_mb: int


# --------------------------------------------------------------------------------------------
# Jars
# --------------------------------------------------------------------------------------------


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
def _file_lock(path: Path) -> Iterator[None]:
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
    with _file_lock(lib.parent / f".{lib.name}.lock"):
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
                f"{_tail_text(output, 60)}"
            )
        (lib / JARS_MARKER).write_text(_pom_digest() + "\n")
    return lib


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def broker_properties(
    run_dir: Path,
    port: int,
    controller_port: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """All ``server.properties`` keys of the single-node broker+controller.

    The client listener is named ``CLIENT`` and mapped to a security protocol in
    ``listener.security.protocol.map``, so authentication (e.g. SASL/SCRAM on ``CLIENT``, an
    authorizer, super users) is added later purely through ``extra``, which overrides or extends
    the defaults key by key. ``extra`` is recorded in ``broker.json`` and reused on restart.
    """
    props: dict[str, str] = {
        # KRaft, combined mode, one voter bootstrapped with `format --standalone`.
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "controller.listener.names": CONTROLLER_LISTENER,
        "listeners": (
            f"{CLIENT_LISTENER}://127.0.0.1:{port},{CONTROLLER_LISTENER}://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"{CLIENT_LISTENER}://127.0.0.1:{port}",
        "inter.broker.listener.name": CLIENT_LISTENER,
        "listener.security.protocol.map": (
            f"{CLIENT_LISTENER}:PLAINTEXT,{CONTROLLER_LISTENER}:PLAINTEXT"
        ),
        "log.dirs": str(run_dir / _DATA),
        # Single node: every replication factor and min ISR is 1.
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # Tests: no 3 s wait before the first rebalance; topics only exist when created.
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # After a SIGKILL the restarted broker cannot register until the controller has expired
        # the old incarnation's session (DUPLICATE_BROKER_REGISTRATION); the default 9 s session
        # made every restart-after-crash take ~13 s. 4 s still tolerates long GC pauses.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        # Two cores: fewer threads than the defaults (3 network, 8 I/O).
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    if extra:
        props.update(extra)
    return props


ADMIN_USER = "admin"
_ADMIN_PASSWORD_FILE = "admin.password"  # noqa: S105 - a file name, not a password


def sasl_properties(admin_password: str) -> dict[str, str]:
    """SASL/SCRAM-SHA-512 on the client listener, ACLs enforced, nothing allowed without an ACL.

    The KRaft controller listener stays PLAINTEXT on loopback: SCRAM credentials live in the
    metadata log the controller serves, so the controller cannot authenticate with them. Its
    connections carry the ANONYMOUS principal, which is therefore a super user; the client
    listener never yields ANONYMOUS because it requires SASL.
    """
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";'
    )
    return {
        "listener.security.protocol.map": (
            f"{CLIENT_LISTENER}:SASL_PLAINTEXT,{CONTROLLER_LISTENER}:PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        f"listener.name.{CLIENT_LISTENER.lower()}.scram-sha-512.sasl.jaas.config": jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
    }


def admin_password(run_dir: Path) -> str | None:
    """The broker's admin SCRAM password, when it was started with authentication."""
    path = run_dir.resolve() / _ADMIN_PASSWORD_FILE
    return path.read_text().strip() if path.is_file() else None


def client_security(run_dir: Path) -> dict[str, str]:
    """aiokafka keyword arguments for the admin principal of this broker ({} without SASL)."""
    password = admin_password(run_dir)
    if password is None:
        return {}
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": ADMIN_USER,
        "sasl_plain_password": password,
    }


def render_properties(props: Mapping[str, str]) -> str:
    """``key=value`` lines in Java properties syntax (backslashes escaped)."""
    lines = ["# Generated by biostream_dev.broker; rewritten on every start."]
    for key, value in props.items():
        if "\n" in key or "\n" in value or "=" in key:
            raise ValueError(f"unsupported property {key!r}={value!r}")
        lines.append(f"{key}={value.replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"


def _new_cluster_id() -> str:
    """A Kafka ``Uuid`` string, as ``kafka-storage.sh random-uuid`` prints it.

    Same rules as ``org.apache.kafka.common.Uuid.randomUuid``: 16 random bytes, base64url without
    padding, never starting with ``-``; generated here to save a JVM start (~1 s).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError("no 'java' on PATH (and no JAVA_HOME); Kafka needs Java 17+")
    return java


def _jvm_args(lib: Path, heap_mb: int) -> list[str]:
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


def _free_ports(count: int) -> list[int]:
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


def _wait_ports_free(ports: Iterable[int], timeout: float) -> list[int]:
    """Wait until every port can be bound again; returns the ports still busy at the deadline.

    A SIGKILLed JVM shows up as a zombie (so :func:`_is_our_broker` is already False) a moment
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
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        del _CHILDREN[pid]
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


def _has_exited(pid: int) -> bool:
    """True only when the process is really gone: its exit status when it is our child, else
    its /proc entry. (A cmdline check here misfired under load and abandoned live brokers.)"""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is not None
    argv = _cmdline(pid)
    return argv is None and not (Path("/proc") / str(pid)).is_dir()


def _is_our_broker(pid: int, run_dir: Path) -> bool:
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
        and str(run_dir / _PROPERTIES) in argv
    )


def _wait_exit(pid: int, run_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_our_broker(pid, run_dir):
            return True
        time.sleep(0.1)
    return not _is_our_broker(pid, run_dir)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def log_tail(run_dir: Path, lines: int = 40) -> str:
    """Last lines of ``broker.log`` (empty string if there is none)."""
    path = run_dir.resolve() / _LOG
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return _tail_text(data, lines)


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (Linux ``/proc``), or None."""
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# --------------------------------------------------------------------------------------------
# Record (broker.json)
# --------------------------------------------------------------------------------------------


def _read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / _RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    tmp = run_dir / f".{_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(run_dir / _RECORD)


def _info(run_dir: Path, record: Mapping[str, Any]) -> BrokerInfo:
    return BrokerInfo(
        bootstrap=str(record["bootstrap"]),
        pid=int(record["pid"]),
        run_dir=run_dir,
        log_path=run_dir / _LOG,
        port=int(record["port"]),
        controller_port=int(record["controller_port"]),
        cluster_id=str(record["cluster_id"]),
        kafka_version=str(record["kafka_version"]),
        heap_mb=int(record["heap_mb"]),
    )


def broker_status(run_dir: Path) -> BrokerInfo | None:
    """The broker of ``run_dir`` if its recorded process is alive, else None.

    Only checks the process (cheap); use :func:`wait_until_ready` to know that it serves.
    """
    run_dir = run_dir.resolve()
    record = _read_record(run_dir)
    if record is None or not _is_our_broker(int(record.get("pid", 0)), run_dir):
        return None
    return _info(run_dir, record)


# --------------------------------------------------------------------------------------------
# Readiness
# --------------------------------------------------------------------------------------------


async def _probe(bootstrap: str, timeout_ms: int, security: Mapping[str, str]) -> None:
    """One end-to-end check: create the probe topic, produce one record, read it back."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code
    from biostream.topics import for_days

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **security
    )
    try:
        await admin.start()
        # One record per readiness check; a day is plenty, and every topic declares its retention.
        probe = NewTopic(PROBE_TOPIC, 1, 1, topic_configs=for_days(1).configs())
        response = await admin.create_topics([probe], timeout_ms=timeout_ms)
        for topic_error in response.to_object()["topic_errors"]:
            error_type = for_code(topic_error["error_code"])
            if topic_error["error_code"] != 0 and error_type is not TopicAlreadyExistsError:
                raise error_type(str(topic_error))
        # Produce only once the metadata names a leader: avoids a NotLeaderForPartition retry
        # (which aiokafka logs as a warning) right after the topic was created.
        while True:
            (topic,) = await admin.describe_topics([PROBE_TOPIC])
            partitions = topic["partitions"]
            if (
                topic["error_code"] == 0
                and partitions
                and all(p["leader"] >= 0 for p in partitions)
            ):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()

    payload = uuid.uuid4().bytes
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms, **security
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(PROBE_TOPIC, payload)
    finally:
        await producer.stop()

    partition = TopicPartition(PROBE_TOPIC, meta.partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
        **security,
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout_ms / 1000)
        if record.value != payload:
            raise BrokerError("probe read back a different record")
    finally:
        await consumer.stop()


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def wait_until_ready(
    bootstrap: str,
    timeout: float = DEFAULT_READY_TIMEOUT,
    *,
    pid: int | None = None,
    run_dir: Path | None = None,
) -> float:
    """Poll until the broker creates a topic, accepts a record and serves it back.

    With a ``run_dir`` whose broker uses SASL, the probe authenticates as its admin.

    Returns the seconds waited. If ``pid``/``run_dir`` are given, fails fast when that process
    dies. Raises :class:`TimeoutError` with the last probe error otherwise.
    """
    started = time.monotonic()
    deadline = started + timeout
    last_error: BaseException | None = None
    host, _, port = bootstrap.rpartition(":")
    # First wait for the port to accept TCP connections (quietly: aiokafka logs every refused
    # connection at ERROR level), then probe end to end with Kafka clients.
    while time.monotonic() < deadline:
        if pid is not None and _has_exited(pid):
            break
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                break
        except OSError as exc:
            last_error = exc
            time.sleep(0.2)
    while True:
        if pid is not None and run_dir is not None and _has_exited(pid):
            raise BrokerError(
                f"broker process {pid} exited before it was ready; log tail:\n{log_tail(run_dir)}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"Kafka at {bootstrap} not ready after {timeout:.1f} s; last error: {last_error!r}"
            )
        try:
            attempt_ms = int(min(10.0, max(1.0, remaining)) * 1000)
            security = client_security(run_dir) if run_dir is not None else {}
            _run_sync(
                asyncio.wait_for(_probe(bootstrap, attempt_ms, security), attempt_ms / 1000 + 5)
            )
        except Exception as exc:  # any failure means "not ready yet"
            last_error = exc
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        else:
            return time.monotonic() - started


# --------------------------------------------------------------------------------------------
# Start / stop
# --------------------------------------------------------------------------------------------


def _format_storage(
    run_dir: Path, lib: Path, cluster_id: str, heap_mb: int, log_path: Path
) -> None:
    if (run_dir / _DATA / "meta.properties").is_file():
        return  # already formatted: never re-format existing data
    cmd = [
        *_jvm_args(lib, min(heap_mb, 512)),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(run_dir / _PROPERTIES),
        "--standalone",
        "--ignore-formatted",
    ]
    password = admin_password(run_dir)
    if password is not None:
        # The admin credential must exist before the broker starts: bootstrap it into the
        # metadata log at format time (other users are created at runtime with this one).
        cmd += ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]"]
    proc = subprocess.run(
        cmd, cwd=run_dir, capture_output=True, text=True, check=False, timeout=300
    )
    with log_path.open("a") as log:
        log.write(f"--- storage format (exit {proc.returncode}) ---\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise BrokerError(
            f"kafka-storage format failed (exit {proc.returncode}):\n"
            f"{_tail_text(proc.stdout + proc.stderr, 40)}"
        )


def _start_locked(
    run_dir: Path,
    *,
    port: int | None,
    controller_port: int | None,
    heap_mb: int | None,
    timeout: float,
    extra_properties: Mapping[str, str] | None,
) -> BrokerInfo:
    existing = broker_status(run_dir)
    if existing is not None:
        wait_until_ready(existing.bootstrap, timeout, pid=existing.pid, run_dir=run_dir)
        return existing

    previous = _read_record(run_dir) or {}
    formatted = (run_dir / _DATA / "meta.properties").is_file()
    if formatted and previous:
        # Existing data: keep the cluster id and the controller endpoint stored in the metadata
        # log; keep the client port unless the caller asked for another one.
        cluster_id = str(previous["cluster_id"])
        controller_port = controller_port or int(previous["controller_port"])
        port = port or int(previous["port"])
        if heap_mb is None:
            heap_mb = int(previous.get("heap_mb", DEFAULT_HEAP_MB))
        if extra_properties is None:
            extra_properties = dict(previous.get("extra_properties") or {})
    elif formatted:
        raise BrokerError(f"{run_dir / _DATA} is formatted but {run_dir / _RECORD} is missing")
    else:
        cluster_id = _new_cluster_id()
    heap_mb = heap_mb or DEFAULT_HEAP_MB
    extra = dict(extra_properties or {})

    if port is None or controller_port is None:
        free = iter(_free_ports(2))
        port = port or next(free)
        controller_port = controller_port or next(free)
    if port == controller_port:
        raise BrokerError(f"client and controller port are both {port}")
    busy = _wait_ports_free((port, controller_port), PORT_RELEASE_TIMEOUT)
    if busy:
        raise BrokerError(f"port(s) {busy} on 127.0.0.1 still in use")

    lib = ensure_jars()
    version = kafka_version()
    password = admin_password(run_dir)
    security = sasl_properties(password) if password is not None else {}
    props = broker_properties(run_dir, port, controller_port, {**security, **extra})
    properties_path = run_dir / _PROPERTIES
    properties_path.touch(mode=0o600)
    properties_path.chmod(0o600)  # holds the admin credential when SASL is on
    properties_path.write_text(render_properties(props))
    log_path = run_dir / _LOG
    _format_storage(run_dir, lib, cluster_id, heap_mb, log_path)

    cmd = [*_jvm_args(lib, heap_mb), "kafka.Kafka", str(run_dir / _PROPERTIES)]
    with log_path.open("ab") as log:
        log.write(f"--- kafka.Kafka start {time.strftime('%Y-%m-%dT%H:%M:%S%z')} ---\n".encode())
        log.flush()
        child = subprocess.Popen(
            cmd,
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session/process group: no terminal signals
            close_fds=True,
        )
    _CHILDREN[child.pid] = child
    bootstrap = f"127.0.0.1:{port}"
    record = {
        "pid": child.pid,
        "bootstrap": bootstrap,
        "port": port,
        "controller_port": controller_port,
        "cluster_id": cluster_id,
        "kafka_version": version,
        "heap_mb": heap_mb,
        "extra_properties": extra,
        "started_at": time.time(),
        "log_path": str(log_path),
        "lib_dir": str(lib),
    }
    _write_record(run_dir, record)
    info = _info(run_dir, record)
    try:
        wait_until_ready(bootstrap, timeout, pid=child.pid, run_dir=run_dir)
    except BaseException as exc:
        _signal_and_wait(info, signal.SIGKILL, 10.0)
        if isinstance(exc, BrokerError | TimeoutError):
            raise BrokerError(f"{exc}\nbroker log tail:\n{log_tail(run_dir)}") from exc
        raise
    return info


def start_broker(
    run_dir: Path,
    port: int | None = None,
    heap_mb: int = DEFAULT_HEAP_MB,
    *,
    controller_port: int | None = None,
    timeout: float = DEFAULT_READY_TIMEOUT,
    extra_properties: Mapping[str, str] | None = None,
    authentication: bool = False,
) -> BrokerInfo:
    """Start the broker of ``run_dir`` (created if needed) and wait until it really serves.

    * ``authentication``: SASL/SCRAM-SHA-512 and ACLs (see :func:`sasl_properties`), with a fresh
      random admin password kept in ``run_dir/admin.password`` (mode 0600) for this broker's
      lifetime; :func:`client_security` gives the admin's client settings.
    * Free loopback ports are picked when ``port``/``controller_port`` are None.
    * If the broker of ``run_dir`` is already running, it is returned (after a readiness check).
    * If ``run_dir`` holds data of a stopped broker, that data is reused (no re-format) on the
      recorded ports, like :func:`restart_broker`.
    * On timeout the new process is killed and :class:`BrokerError` carries the log tail.
    """
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(run_dir / _LOCK):
        if authentication and not (run_dir / _DATA / "meta.properties").is_file():
            password_file = run_dir / _ADMIN_PASSWORD_FILE
            password_file.unlink(missing_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24))
        return _start_locked(
            run_dir,
            port=port,
            controller_port=controller_port,
            heap_mb=heap_mb,
            timeout=timeout,
            extra_properties=extra_properties,
        )


def _signal_and_wait(info: BrokerInfo, sig: signal.Signals, timeout: float) -> bool:
    """Send ``sig`` to the recorded PID (only if it is still our broker); True once it is gone."""
    if not _is_our_broker(info.pid, info.run_dir):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, sig)
    if not _wait_exit(info.pid, info.run_dir, timeout):
        return False
    _wait_ports_free((info.port, info.controller_port), 10.0)
    return True


def stop_broker(run_dir: Path, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """Graceful stop: SIGTERM to the recorded PID, SIGKILL if still alive after ``timeout``.

    No-op when the broker is not running. Data and ``broker.json`` stay for a restart.
    """
    run_dir = run_dir.resolve()
    with _file_lock(run_dir / _LOCK):
        info = broker_status(run_dir)
        if info is None:
            return
        if not _signal_and_wait(info, signal.SIGTERM, timeout) and not _signal_and_wait(
            info, signal.SIGKILL, 10.0
        ):
            raise BrokerError(f"broker pid {info.pid} survived SIGKILL")


def kill_broker(run_dir: Path) -> None:
    """SIGKILL the broker (simulated crash, for fault tests); returns once it is gone."""
    run_dir = run_dir.resolve()
    with _file_lock(run_dir / _LOCK):
        info = broker_status(run_dir)
        if info is not None and not _signal_and_wait(info, signal.SIGKILL, 10.0):
            raise BrokerError(f"broker pid {info.pid} survived SIGKILL")


def _signal_running(run_dir: Path, sig: signal.Signals) -> BrokerInfo:
    run_dir = run_dir.resolve()
    with _file_lock(run_dir / _LOCK):
        info = broker_status(run_dir)
        if info is None:
            raise BrokerError(f"no running broker in {run_dir}")
        os.kill(info.pid, sig)
        return info


def pause_broker(run_dir: Path) -> BrokerInfo:
    """SIGSTOP the broker (fault tests): its sockets stay open and accept connections, but nothing
    is answered, as with a broker hung in a long GC pause or a frozen VM. Always
    :func:`resume_broker` afterwards (or use :func:`paused`)."""
    return _signal_running(run_dir, signal.SIGSTOP)


def resume_broker(run_dir: Path) -> BrokerInfo:
    """SIGCONT a broker stopped by :func:`pause_broker` (harmless on a running one)."""
    return _signal_running(run_dir, signal.SIGCONT)


@contextlib.contextmanager
def paused(run_dir: Path) -> Iterator[BrokerInfo]:
    """The broker paused for the ``with`` block, resumed however the block ends."""
    info = pause_broker(run_dir)
    try:
        yield info
    finally:
        resume_broker(run_dir)


def restart_broker(
    run_dir: Path,
    timeout: float = DEFAULT_READY_TIMEOUT,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> BrokerInfo:
    """Stop the broker if it runs, start it again on the same ports and data, wait until ready."""
    run_dir = run_dir.resolve()
    record = _read_record(run_dir)
    if record is None:
        raise BrokerError(f"no {_RECORD} in {run_dir}: nothing to restart")
    stop_broker(run_dir, stop_timeout)
    with _file_lock(run_dir / _LOCK):
        return _start_locked(
            run_dir,
            port=int(record["port"]),
            controller_port=int(record["controller_port"]),
            heap_mb=int(record.get("heap_mb", DEFAULT_HEAP_MB)),
            timeout=timeout,
            extra_properties=dict(record.get("extra_properties") or {}),
        )


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _info_json(info: BrokerInfo) -> str:
    data = asdict(info)
    data["run_dir"] = str(info.run_dir)
    data["log_path"] = str(info.log_path)
    data["rss_bytes"] = rss_bytes(info.pid)
    return json.dumps(data, indent=2)


def _parse_properties(items: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BrokerError(f"--property wants KEY=VALUE, got {item!r}")
        properties[key.strip()] = value.strip()
    return properties


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m biostream_dev.broker",
        description="Single-node Kafka (KRaft) broker on loopback from Maven Central jars.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download the broker jars (once) and print their directory")
    start = commands.add_parser("start", help="start (or find) the broker; prints its bootstrap")
    start.add_argument("--dir", type=Path, required=True, help="run directory")
    start.add_argument("--port", type=int, default=None, help="client port (default: free port)")
    start.add_argument("--heap-mb", type=int, default=DEFAULT_HEAP_MB)
    start.add_argument("--timeout", type=float, default=DEFAULT_READY_TIMEOUT)
    start.add_argument(
        "--property",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="extra server.properties entry (repeat), e.g. log.retention.ms=60000; "
        "kept for restarts of this run directory",
    )
    start.add_argument(
        "--auth",
        action="store_true",
        help="SASL/SCRAM and ACLs, as the tests' broker (admin password in DIR/admin.password)",
    )
    stop = commands.add_parser("stop", help="graceful stop (SIGTERM, then SIGKILL)")
    stop.add_argument("--dir", type=Path, required=True)
    stop.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT)
    status = commands.add_parser("status", help="print the broker record; exit 1 if not running")
    status.add_argument("--dir", type=Path, required=True)
    kill = commands.add_parser("kill", help="SIGKILL the broker (fault tests)")
    kill.add_argument("--dir", type=Path, required=True)
    restart = commands.add_parser("restart", help="restart on the same ports and data")
    restart.add_argument("--dir", type=Path, required=True)
    restart.add_argument("--timeout", type=float, default=DEFAULT_READY_TIMEOUT)
    pause = commands.add_parser("pause", help="SIGSTOP the broker (fault tests; resume after)")
    pause.add_argument("--dir", type=Path, required=True)
    resume = commands.add_parser("resume", help="SIGCONT a paused broker")
    resume.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(ensure_jars())
        elif args.command == "start":
            extra = None if args.property is None else _parse_properties(args.property)
            info = start_broker(
                args.dir,
                args.port,
                args.heap_mb,
                timeout=args.timeout,
                extra_properties=extra,
                authentication=args.auth,
            )
            print(info.bootstrap)
        elif args.command == "stop":
            stop_broker(args.dir, args.timeout)
        elif args.command == "status":
            found = broker_status(args.dir)
            if found is None:
                print("not running")
                return 1
            print(_info_json(found))
        elif args.command == "kill":
            kill_broker(args.dir)
        elif args.command == "restart":
            print(restart_broker(args.dir, args.timeout).bootstrap)
        elif args.command == "pause":
            pause_broker(args.dir)
        elif args.command == "resume":
            resume_broker(args.dir)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
