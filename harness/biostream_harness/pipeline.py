"""Runs the four services as separate processes on a local broker: for the demo and e2e tests."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from biostream.settings import KafkaSettings
from biostream_dev.access import (
    SERVICE_ROLES,
    Credentials,
    kafka_environment,
    provision_services,
    wait_until_usable,
)
from biostream_dev.broker import free_port

SERVICES = ("ingest", "linkage", "pseudonymizer", "audit")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY_DIR = REPO_ROOT / "policies"
DEFAULT_POLICY = DEFAULT_POLICY_DIR / "cohort-demo.json"


def _new_key_file(path: Path) -> Path:
    """32 random bytes as hex, owner-only; an existing key is kept (reruns reuse it)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path


def write_secrets(directory: Path) -> dict[str, Path]:
    """Fresh random keys for this run, readable by the owner only; never in the repository.

    ``ledger_signing`` is the audit ledger's Ed25519 seed; its public half is written next to it
    (``ledger_public``, not secret) for `audit verify` and `audit check-proof`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("patient_ref", "person", "pseudonym", "ledger_signing", "dead_letter", "rrn"):
        paths[name] = _new_key_file(directory / f"{name}.key")
    # The pseudonymizer's keys directory: one file per pseudonym domain and key version.
    pseudonym_keys = directory / "pseudonym-keys"
    pseudonym_keys.mkdir(mode=0o700, exist_ok=True)
    _new_key_file(pseudonym_keys / "cohort-demo.k1.key")
    paths["pseudonym_keys"] = pseudonym_keys
    public = directory / "ledger_public.key"
    if not public.exists():
        public.write_text(ledger_public_key_hex(paths["ledger_signing"].read_bytes()) + "\n")
    paths["ledger_public"] = public
    return paths


def ledger_public_key_hex(signing_secret: bytes) -> str:
    from audit.domain.checkpoint import private_key_from_secret, public_key_hex

    return public_key_hex(private_key_from_secret(signing_secret).public_key())


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path


@dataclass
class LocalPipeline:
    bootstrap: str
    run_dir: Path
    topic_prefix: str = ""
    policy_dir: Path = DEFAULT_POLICY_DIR
    # With SASL admin settings, each service runs as its own principal with the ACL matrix's
    # rights (provisioned on first start); without, all run unauthenticated.
    admin: KafkaSettings | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, int] = field(default_factory=dict)
    _credentials: Credentials | None = None

    def _service_kafka_env(self, service: str) -> dict[str, str]:
        if self.admin is None:
            return {}
        if self._credentials is None:
            self._credentials = provision_services(self.admin, self.topic_prefix)
            if self._credentials is None:
                return {}
            asyncio.run(wait_until_usable(self._credentials))
        return kafka_environment(self._credentials.settings(SERVICE_ROLES[service]))

    extra_env: dict[str, str] = field(default_factory=dict)
    # Keys given as a directory of versions (D33) instead of one file: setting stem
    # (patient_ref, person, dead_letter, rrn) -> directory of <name>.k<N>.key files.
    keys_dirs: dict[str, Path] = field(default_factory=dict)

    def environment(self, service: str, metrics_port: int) -> dict[str, str]:
        keys = write_secrets(self.run_dir / "secrets")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIOSTREAM_")}
        env.update(self._service_kafka_env(service))
        env.update(
            BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS=self.bootstrap,
            BIOSTREAM_TOPIC_PREFIX=self.topic_prefix,
            BIOSTREAM_METRICS_PORT=str(metrics_port),
            BIOSTREAM_PRINCIPAL=f"User:{self.topic_prefix}svc-{service}",
            BIOSTREAM_PATIENT_REF_KEY_FILE=str(keys["patient_ref"]),
            BIOSTREAM_PERSON_KEY_FILE=str(keys["person"]),
            BIOSTREAM_DEAD_LETTER_KEY_FILE=str(keys["dead_letter"]),
            BIOSTREAM_RRN_KEY_FILE=str(keys["rrn"]),
            BIOSTREAM_KEYS_DIR=str(keys["pseudonym_keys"]),
            BIOSTREAM_POLICY_DIR=str(self.policy_dir),
            BIOSTREAM_LEDGER_SIGNING_KEY_FILE=str(keys["ledger_signing"]),
            BIOSTREAM_LEDGER_PUBLIC_KEY_FILE=str(keys["ledger_public"]),
            PYTHONUNBUFFERED="1",
        )
        for stem, directory in self.keys_dirs.items():
            del env[f"BIOSTREAM_{stem.upper()}_KEY_FILE"]
            env[f"BIOSTREAM_{stem.upper()}_KEYS_DIR"] = str(directory)
        env.update(self.extra_env)
        return env

    @property
    def ledger_public_key_file(self) -> Path:
        return write_secrets(self.run_dir / "secrets")["ledger_public"]

    def start(self, service: str, timeout_s: float = 60) -> ServiceProcess:
        port = free_port()
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{service}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", service, "run"],
                env=self.environment(service, port),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        (logs / f"{service}.pid").write_text(f"{process.pid}\n")
        running = ServiceProcess(service, process, port, log_path)
        self.processes[service] = running
        self.wait_ready(running, timeout_s)
        return running

    def start_all(self, timeout_s: float = 90) -> None:
        for service in SERVICES:
            self.start(service, timeout_s)

    def wait_ready(self, running: ServiceProcess, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{running.metrics_port}/readyz"
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise RuntimeError(
                    f"{running.name} exited with {running.process.returncode}:\n{self.log_tail(running.name)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise TimeoutError(
            f"{running.name} not ready after {timeout_s}s:\n{self.log_tail(running.name)}"
        )

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        running = self.processes[service]
        if running.process.poll() is None:
            running.process.send_signal(sig)
        running.process.wait(timeout=30)

    def restart(self, service: str, timeout_s: float = 90) -> None:
        self.kill(service)
        self.restarts[service] = self.restarts.get(service, 0) + 1
        self.start(service, timeout_s)

    def revive_dead(self, timeout_s: float = 120) -> list[str]:
        """Restart every service whose process has exited, as a supervisor (Kubernetes) would."""
        dead = [name for name, p in self.processes.items() if p.process.poll() is not None]
        for name in dead:
            self.crashes[name] = self.crashes.get(name, 0) + 1
            self.start(name, timeout_s)
        return dead

    def stop_all(self, timeout_s: float = 20) -> None:
        for running in self.processes.values():
            if running.process.poll() is None:
                running.process.terminate()
        deadline = time.monotonic() + timeout_s
        for running in self.processes.values():
            try:
                running.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()

    def assert_alive(self) -> None:
        for running in self.processes.values():
            if running.process.poll() is not None:
                raise RuntimeError(
                    f"{running.name} died with {running.process.returncode}:\n{self.log_tail(running.name)}"
                )

    def metrics_text(self, service: str) -> str:
        url = f"http://127.0.0.1:{self.processes[service].metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def log_tail(self, service: str, lines: int = 30) -> str:
        path = self.run_dir / "logs" / f"{service}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
