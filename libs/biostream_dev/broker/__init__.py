"""Single-node Apache Kafka (KRaft) broker on loopback, run from Maven Central jars.

No Docker and no Kafka tarball: ``tools/kafka/pom.xml`` names the Kafka version, Maven copies the
runtime jars into a cache directory, and the broker runs as ``java -cp '<lib>/*' kafka.Kafka``.

Layout of a run directory (``run_dir``)::

    server.properties   generated on every start (see :func:`broker_properties`)
    data/               log.dirs (KRaft metadata log + topic data), formatted once
    broker.log          JVM stdout+stderr (log4j2 -> stdout), appended across restarts
    broker.json         pid, ports, bootstrap, cluster id, ... of the last start
    .lock               serialises start/stop of the same run_dir across processes

Modules: ``jars`` (Maven), ``config`` (server.properties, SCRAM), ``processes`` (the JVM,
ports, signalling only our own broker), ``record`` (broker.json), ``readiness`` (admin call and
probe), ``lifecycle`` (start ... restart), ``cli``; this package re-exports the API below.

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

from biostream_dev.broker.cli import main, parse_properties
from biostream_dev.broker.common import (
    DEFAULT_HEAP_MB,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    REPO_ROOT,
    BrokerError,
    BrokerInfo,
)
from biostream_dev.broker.config import (
    ADMIN_USER,
    admin_password,
    admin_settings,
    broker_properties,
    ca_file,
    client_security,
    render_properties,
    sasl_properties,
)
from biostream_dev.broker.jars import ensure_jars, kafka_version, lib_dir
from biostream_dev.broker.lifecycle import (
    kill_broker,
    pause_broker,
    paused,
    restart_broker,
    resume_broker,
    start_broker,
    stop_broker,
)
from biostream_dev.broker.processes import free_port, log_tail, rss_bytes
from biostream_dev.broker.readiness import wait_until_ready
from biostream_dev.broker.record import broker_status

__all__ = [
    "ADMIN_USER",
    "DEFAULT_HEAP_MB",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "REPO_ROOT",
    "BrokerError",
    "BrokerInfo",
    "admin_password",
    "admin_settings",
    "broker_properties",
    "broker_status",
    "ca_file",
    "client_security",
    "ensure_jars",
    "free_port",
    "kafka_version",
    "kill_broker",
    "lib_dir",
    "log_tail",
    "main",
    "parse_properties",
    "pause_broker",
    "paused",
    "render_properties",
    "restart_broker",
    "resume_broker",
    "rss_bytes",
    "sasl_properties",
    "start_broker",
    "stop_broker",
    "wait_until_ready",
]
