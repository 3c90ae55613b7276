"""The local broker: start, stop, kill, pause, resume and restart."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from biostream_dev.broker.common import (
    DATA_DIR,
    DEFAULT_HEAP_MB,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    LOCK_FILE,
    LOG_FILE,
    PORT_RELEASE_TIMEOUT,
    PROPERTIES_FILE,
    RECORD_FILE,
    STARTED_HERE,
    TLS_DIR,
    BrokerError,
    BrokerInfo,
)
from biostream_dev.broker.config import (
    ADMIN_PASSWORD_FILE,
    ADMIN_USER,
    BROKER_KEY_STORE,
    admin_password,
    broker_properties,
    ensure_broker_certificates,
    new_cluster_id,
    render_properties,
    sasl_properties,
)
from biostream_dev.broker.jars import ensure_jars, file_lock, kafka_version
from biostream_dev.broker.processes import (
    free_ports,
    is_our_broker,
    jvm_args,
    log_tail,
    tail_text,
    wait_exit,
    wait_ports_free,
)
from biostream_dev.broker.readiness import wait_until_ready
from biostream_dev.broker.record import broker_status, info_from_record, read_record, write_record


def _format_storage(
    run_dir: Path, lib: Path, cluster_id: str, heap_mb: int, log_path: Path
) -> None:
    if (run_dir / DATA_DIR / "meta.properties").is_file():
        return  # already formatted: never re-format existing data
    cmd = [
        *jvm_args(lib, min(heap_mb, 512)),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(run_dir / PROPERTIES_FILE),
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
            f"{tail_text(proc.stdout + proc.stderr, 40)}"
        )


def _start_locked(
    run_dir: Path,
    *,
    port: int | None,
    controller_port: int | None,
    heap_mb: int | None,
    timeout: float,
    extra_properties: Mapping[str, str] | None,
    cert_port: int | None = None,
    client_certificates: bool = False,
) -> BrokerInfo:
    existing = broker_status(run_dir)
    if existing is not None:
        wait_until_ready(existing.bootstrap, timeout, pid=existing.pid, run_dir=run_dir)
        return existing

    previous = read_record(run_dir) or {}
    formatted = (run_dir / DATA_DIR / "meta.properties").is_file()
    if formatted and previous:
        # Existing data: keep the cluster id and the controller endpoint stored in the metadata
        # log; keep the client port unless the caller asked for another one.
        cluster_id = str(previous["cluster_id"])
        controller_port = controller_port or int(previous["controller_port"])
        port = port or int(previous["port"])
        cert_port = cert_port or previous.get("cert_port")
        client_certificates = cert_port is not None
        if heap_mb is None:
            heap_mb = int(previous.get("heap_mb", DEFAULT_HEAP_MB))
        if extra_properties is None:
            extra_properties = dict(previous.get("extra_properties") or {})
    elif formatted:
        raise BrokerError(
            f"{run_dir / DATA_DIR} is formatted but {run_dir / RECORD_FILE} is missing"
        )
    else:
        cluster_id = new_cluster_id()
    heap_mb = heap_mb or DEFAULT_HEAP_MB
    extra = dict(extra_properties or {})

    tls_dir = run_dir / TLS_DIR
    tls_on = (tls_dir / BROKER_KEY_STORE).is_file()
    if not tls_on:
        client_certificates = False
    if port is None or controller_port is None or (client_certificates and cert_port is None):
        free = iter(free_ports(3))
        port = port or next(free)
        controller_port = controller_port or next(free)
        cert_port = (cert_port or next(free)) if client_certificates else None
    if len({port, controller_port, cert_port}) < 3 - (cert_port is None):
        raise BrokerError(f"ports {port}, {controller_port}, {cert_port} overlap")
    ports = (port, controller_port) + ((cert_port,) if cert_port is not None else ())
    busy = wait_ports_free(ports, PORT_RELEASE_TIMEOUT)
    if busy:
        raise BrokerError(f"port(s) {busy} on 127.0.0.1 still in use")

    lib = ensure_jars()
    version = kafka_version()
    password = admin_password(run_dir)
    security = (
        sasl_properties(password, tls_dir if tls_on else None, cert_port)
        if password is not None
        else {}
    )
    props = broker_properties(run_dir, port, controller_port, {**security, **extra}, cert_port)
    properties_path = run_dir / PROPERTIES_FILE
    properties_path.touch(mode=0o600)
    properties_path.chmod(0o600)  # holds the admin credential when SASL is on
    properties_path.write_text(render_properties(props))
    log_path = run_dir / LOG_FILE
    _format_storage(run_dir, lib, cluster_id, heap_mb, log_path)

    cmd = [*jvm_args(lib, heap_mb), "kafka.Kafka", str(run_dir / PROPERTIES_FILE)]
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
    STARTED_HERE[child.pid] = child
    bootstrap = f"127.0.0.1:{port}"
    record = {
        "pid": child.pid,
        "bootstrap": bootstrap,
        "port": port,
        "controller_port": controller_port,
        "cert_port": cert_port,
        "tls": tls_on,
        "cluster_id": cluster_id,
        "kafka_version": version,
        "heap_mb": heap_mb,
        "extra_properties": extra,
        "started_at": time.time(),
        "log_path": str(log_path),
        "lib_dir": str(lib),
    }
    write_record(run_dir, record)
    info = info_from_record(run_dir, record)
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
    tls: bool = True,
    client_certificates: bool = False,
    cert_port: int | None = None,
) -> BrokerInfo:
    """Start the broker of ``run_dir`` (created if needed) and wait until it really serves.

    * ``authentication``: SASL/SCRAM-SHA-512 and ACLs (see :func:`sasl_properties`), with a fresh
      random admin password kept in ``run_dir/admin.password`` (mode 0600) for this broker's
      lifetime; :func:`client_security` gives the admin's client settings.
    * ``tls`` (with ``authentication``; default on, as in production): SCRAM over TLS, with a CA
      and a broker certificate for 127.0.0.1/localhost generated into ``run_dir/tls`` at the
      first start (:func:`ca_file` is the CA clients verify with). ``tls=False`` gives
      SASL_PLAINTEXT, for tests that must see the wire in clear.
    * ``client_certificates`` (with TLS): a second listener that authenticates clients by
      certificate (mutual TLS; ``BrokerInfo.cert_bootstrap``); issue certificates with
      :func:`biostream_dev.tls.issue_client` from the CA in ``run_dir/tls``.
    * Free loopback ports are picked when ``port``/``controller_port``/``cert_port`` are None.
    * If the broker of ``run_dir`` is already running, it is returned (after a readiness check).
    * If ``run_dir`` holds data of a stopped broker, that data is reused (no re-format) on the
      recorded ports, like :func:`restart_broker`.
    * On timeout the new process is killed and :class:`BrokerError` carries the log tail.
    """
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(run_dir / LOCK_FILE):
        if authentication and not (run_dir / DATA_DIR / "meta.properties").is_file():
            password_file = run_dir / ADMIN_PASSWORD_FILE
            password_file.unlink(missing_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24))
            if tls:
                ensure_broker_certificates(run_dir / TLS_DIR)
        return _start_locked(
            run_dir,
            port=port,
            controller_port=controller_port,
            heap_mb=heap_mb,
            timeout=timeout,
            extra_properties=extra_properties,
            client_certificates=client_certificates,
            cert_port=cert_port,
        )


def _signal_and_wait(info: BrokerInfo, sig: signal.Signals, timeout: float) -> bool:
    """Send ``sig`` to the recorded PID (only if it is still our broker); True once it is gone."""
    if not is_our_broker(info.pid, info.run_dir):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, sig)
    if not wait_exit(info.pid, info.run_dir, timeout):
        return False
    wait_ports_free((info.port, info.controller_port), 10.0)
    return True


def stop_broker(run_dir: Path, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """Graceful stop: SIGTERM to the recorded PID, SIGKILL if still alive after ``timeout``.

    No-op when the broker is not running. Data and ``broker.json`` stay for a restart.
    """
    run_dir = run_dir.resolve()
    with file_lock(run_dir / LOCK_FILE):
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
    with file_lock(run_dir / LOCK_FILE):
        info = broker_status(run_dir)
        if info is not None and not _signal_and_wait(info, signal.SIGKILL, 10.0):
            raise BrokerError(f"broker pid {info.pid} survived SIGKILL")


def _signal_running(run_dir: Path, sig: signal.Signals) -> BrokerInfo:
    run_dir = run_dir.resolve()
    with file_lock(run_dir / LOCK_FILE):
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
    record = read_record(run_dir)
    if record is None:
        raise BrokerError(f"no {RECORD_FILE} in {run_dir}: nothing to restart")
    stop_broker(run_dir, stop_timeout)
    with file_lock(run_dir / LOCK_FILE):
        return _start_locked(
            run_dir,
            port=int(record["port"]),
            controller_port=int(record["controller_port"]),
            cert_port=record.get("cert_port"),
            heap_mb=int(record.get("heap_mb", DEFAULT_HEAP_MB)),
            timeout=timeout,
            extra_properties=dict(record.get("extra_properties") or {}),
        )
