"""D30 on the wire: what crosses loopback between the pipeline and the broker, read by a raw TCP
proxy that every connection goes through, holds no planted identifier when TLS is on, and
holds them all when plaintext is forced (so the check can fail). Also mutual TLS: a client
certificate is a principal the ACLs apply to.

Each broker here advertises the proxy's port as its client listener, so after the first
metadata answer every client (hospital publisher, the four services, the observer) dials the
proxy, not the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from biostream.kafka import client_options
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access, broker, tls
from biostream_dev.broker.processes import free_ports
from biostream_harness.__main__ import app
from biostream_harness.inprocess import Keys, running_pipeline
from ingest.adapters.publisher import publish_messages
from ingest.domain.files import FeedMessage
from typer.testing import CliRunner

pytestmark = pytest.mark.integration

# Planted identifiers (synthetic): each must be absent from an encrypted capture.
NAME, GIVEN, FAMILY = "도윤슬", "윤슬", "도"
RRN = "880417-2345671"
PHONE = "010-4827-1937"
ADDRESS = "광주광역시 북구 용봉로 77 캐너리동"
MRN = "CANARY-MRN-55123"
CANARIES = [NAME, RRN, PHONE, ADDRESS, MRN]


class RecordingProxy:
    """Forwards loopback TCP connections to ``target_port`` and keeps every byte both ways."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.port = listen_port
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", listen_port))
        self._lock = threading.Lock()
        self._captured = bytearray()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def captured(self) -> bytes:
        with self._lock:
            return bytes(self._captured)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            except OSError:
                client.close()  # the broker is not up yet: the client retries
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                with self._lock:
                    self._captured += data
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()


@dataclass
class ProxiedBroker:
    run_dir: Path
    admin: KafkaSettings
    proxy: RecordingProxy
    cert_bootstrap: str | None


@contextlib.contextmanager
def proxied_broker(run_dir: Path, *, encrypted: bool) -> Iterator[ProxiedBroker]:
    port, controller_port, proxy_port, cert_port = free_ports(4)
    proxy = RecordingProxy(proxy_port, port)
    advertised = [f"CLIENT://127.0.0.1:{proxy_port}"]
    if encrypted:
        advertised.append(f"CERT://127.0.0.1:{cert_port}")
    try:
        info = broker.start_broker(
            run_dir,
            port,
            controller_port=controller_port,
            authentication=True,
            tls=encrypted,
            client_certificates=encrypted,
            cert_port=cert_port if encrypted else None,
            extra_properties={"advertised.listeners": ",".join(advertised)},
        )
        try:
            admin = broker.admin_settings(run_dir, info.bootstrap)
            yield ProxiedBroker(run_dir, admin, proxy, info.cert_bootstrap)
        finally:
            broker.stop_broker(run_dir)
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedBroker]:
    with proxied_broker(tmp_path_factory.mktemp("kafka-tls"), encrypted=True) as running:
        yield running


def fhir_bundle(message_id: str) -> bytes:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"type": {"coding": [{"code": "MR"}]}, "system": "http://h001.example.kr/mrn", "value": MRN},
            {"system": "http://www.hl7korea.or.kr/Identifier/rrn", "value": RRN},
        ],
        "name": [{"text": NAME, "family": FAMILY, "given": [GIVEN]}],
        "gender": "female",
        "birthDate": "1988-04-17",
        "telecom": [{"system": "phone", "value": PHONE}],
        "address": [{"text": ADDRESS, "postalCode": "61186"}],
    }  # fmt: skip
    condition = {
        "resourceType": "Condition",
        "id": f"{message_id}-c",
        "subject": {"reference": "urn:uuid:p"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}]},
        "recordedDate": "2026-02-03",
    }
    bundle = {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": patient},
            {"fullUrl": f"urn:uuid:{message_id}-c", "resource": condition},
        ],
    }
    # ensure_ascii=False: the Hangul is in the message as UTF-8, as hospitals send it.
    return json.dumps(bundle, ensure_ascii=False).encode()


async def feed_through_pipeline(running: ProxiedBroker, prefix: str) -> bytes:
    """A two-message feed through all four services; returns what the proxy saw meanwhile."""
    topics = Topics(prefix)
    messages = [
        FeedMessage(f"W-{n}".encode(), fhir_bundle(f"W-{n}"), "application/fhir+json")
        for n in range(2)
    ]
    async with running_pipeline(running.admin, prefix, ["H001"], Keys.fresh()) as observer:
        await publish_messages(running.admin, topics.feed("H001"), messages)
        view = await observer.wait_until_settled(len(messages), timeout_s=120)
    assert len(view.curated) == 2  # the feed really went through (and so through the proxy)
    return running.proxy.captured()


def found(capture: bytes) -> list[str]:
    return [canary for canary in CANARIES if canary.encode() in capture]


async def test_no_planted_identifier_crosses_the_wire_in_clear(
    tls_broker: ProxiedBroker, topic_prefix: str
) -> None:
    capture = await feed_through_pipeline(tls_broker, topic_prefix)
    assert len(capture) > 100_000  # every client really went through the proxy
    assert found(capture) == []
    # Nor the SCRAM user names the services log in with (they are inside TLS too).
    assert b"svc-pseudonymizer" not in capture


async def test_forced_plaintext_shows_them_all(topic_prefix: str, tmp_path: Path) -> None:
    with proxied_broker(tmp_path / "kafka", encrypted=False) as running:
        assert not running.admin.encrypted and running.admin.allow_plaintext
        capture = await feed_through_pipeline(running, topic_prefix)
    assert found(capture) == CANARIES
    assert b"svc-pseudonymizer" in capture


async def _produce(settings: KafkaSettings, topic: str) -> None:
    producer = AIOKafkaProducer(**client_options(settings), request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()


async def test_a_client_certificate_is_a_principal_under_the_acls(
    tls_broker: ProxiedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    from biostream.kafka import ensure_topics

    topics = Topics(topic_prefix)
    await ensure_topics(tls_broker.admin, topics.pipeline_specs(["H001", "H002"], []))
    principals = access.render(
        access.load_matrix(), prefix=topic_prefix, hospitals=["H001", "H002"]
    )
    role = "hospital-h001"
    # The SCRAM user is created too; the certificate below never uses its password.
    await access.wait_until_usable(access.apply(tls_broker.admin, {role: principals[role]}))
    name = principals[role].name  # the prefixed user name: User:<name> in every ACL

    assert tls_broker.cert_bootstrap is not None
    ca = tls.Issued(
        tls_broker.run_dir / "tls" / tls.CA_CERT, tls_broker.run_dir / "tls" / tls.CA_KEY
    )
    certificate = tls.issue_client(ca, tmp_path, name)
    hospital = KafkaSettings(
        bootstrap_servers=tls_broker.cert_bootstrap, security_protocol="SSL",
        ssl_cafile=ca.cert, ssl_certfile=certificate.cert, ssl_keyfile=certificate.key,
    )  # fmt: skip
    await _produce(hospital, topics.feed("H001"))
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(hospital, topics.feed("H002"))

    # The same name in a certificate from another CA gets no connection at all.
    stranger_ca = tls.ensure_ca(tmp_path / "stranger", name="not the programme's CA")
    forged = tls.issue_client(stranger_ca, tmp_path / "stranger", name)
    with pytest.raises(KafkaError):
        await _produce(
            hospital.model_copy(update={"ssl_certfile": forged.cert, "ssl_keyfile": forged.key}),
            topics.feed("H001"),
        )


def test_access_and_topics_jobs_run_as_a_certificate_admin(
    tls_broker: ProxiedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """Compose's set-up jobs: the admin has a client certificate and no password; `access apply`
    and `topics` run over mutual TLS and the principals they create log in with SCRAM over TLS."""
    tls_dir = tls_broker.run_dir / "tls"
    admin = tls.issue_client(
        tls.Issued(tls_dir / tls.CA_CERT, tls_dir / tls.CA_KEY), tmp_path, "admin"
    )
    assert tls_broker.cert_bootstrap is not None
    common = ["--bootstrap", tls_broker.cert_bootstrap, "--ca-file", str(tls_dir / tls.CA_CERT),
              "--admin-cert-file", str(admin.cert), "--admin-key-file", str(admin.key),
              "--hospital", "H001", "--dataset", "cohort-demo"]  # fmt: skip
    runner = CliRunner()
    topics = runner.invoke(app, ["topics", *common, "--prefix", topic_prefix])
    assert topics.exit_code == 0, topics.output
    credentials = tmp_path / "credentials"
    applied = runner.invoke(
        app,
        [
            "access",
            "apply",
            *common,
            "--prefix",
            topic_prefix,
            "--credentials-dir",
            str(credentials),
        ],
    )
    assert applied.exit_code == 0, applied.output
    password_file = credentials / "hospital-h001.password"
    assert password_file.stat().st_mode & 0o777 == 0o600

    hospital = KafkaSettings(
        bootstrap_servers=tls_broker.admin.bootstrap_servers, ssl_cafile=tls_dir / tls.CA_CERT,
        sasl_username=f"{topic_prefix}hospital-h001", sasl_password_file=password_file,
    )  # fmt: skip
    # SCRAM credentials reach the broker's authenticator a moment after they are created.
    for attempt in range(60):
        try:
            asyncio.run(_produce(hospital, Topics(topic_prefix).feed("H001")))
            break
        except KafkaError:
            if attempt == 59:
                raise
            time.sleep(0.5)


def test_set_up_jobs_refuse_to_connect_in_clear_unless_told(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["topics", "--bootstrap", "127.0.0.1:1", "--hospital", "H001", "--dataset", "d"]
    )
    assert result.exit_code == 2
    assert "--plaintext" in result.output
