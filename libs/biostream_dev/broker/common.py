"""The local broker: constants, errors and the broker record type shared by its modules."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
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
CERT_LISTENER = "CERT"  # mutual TLS: the client certificate is the identity
PROBE_TOPIC = "_biostream_ready_probe"

DEFAULT_HEAP_MB = 512
DEFAULT_READY_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 30.0
PORT_RELEASE_TIMEOUT = 10.0

RECORD_FILE = "broker.json"
PROPERTIES_FILE = "server.properties"
LOG_FILE = "broker.log"
DATA_DIR = "data"
LOCK_FILE = ".lock"
TLS_DIR = "tls"  # CA, broker key store (generated at first start, D30)

# Popen objects of brokers started by this process, so they can be reaped (no zombies, no
# "subprocess is still running" ResourceWarning when the Popen is garbage-collected).
STARTED_HERE: dict[int, subprocess.Popen[bytes]] = {}


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
    # The mutual-TLS listener (certificate authentication), when the broker has one.
    cert_bootstrap: str | None = None
