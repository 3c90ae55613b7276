"""Metrics and health over HTTP: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (ready).

Served from a daemon thread with the standard library's HTTP server: the endpoints are tiny, and
keeping them off the event loop means a busy loop cannot make a service look dead to its probe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class ProcessorMetrics:
    """What every stream processor reports. Labels are topic names and stable codes only."""

    messages_in: Counter
    messages_out: Counter
    dead_letters: Counter
    transactions: Counter
    batch_seconds: Histogram
    event_lag_seconds: Histogram
    state_keys: Gauge
    ready: Gauge
    consumer_lag: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, service: str) -> ProcessorMetrics:
        prefix = f"biostream_{service}"
        return cls(
            messages_in=Counter(
                f"{prefix}_messages_in", "Messages consumed", ["topic"], registry=registry
            ),
            messages_out=Counter(
                f"{prefix}_messages_out", "Messages produced", ["topic"], registry=registry
            ),
            dead_letters=Counter(
                f"{prefix}_dead_letters",
                "Messages sent to the dead-letter topic",
                ["hospital", "reason"],
                registry=registry,
            ),
            transactions=Counter(
                f"{prefix}_transactions", "Kafka transactions", ["result"], registry=registry
            ),
            batch_seconds=Histogram(
                f"{prefix}_batch_duration_seconds",
                "Time to process and commit one batch",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            event_lag_seconds=Histogram(
                f"{prefix}_event_lag_seconds",
                "Time from the input message's timestamp to its processing",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            state_keys=Gauge(
                f"{prefix}_state_keys", "Keys in the service's state store", registry=registry
            ),
            ready=Gauge(f"{prefix}_ready", "1 when consuming", registry=registry),
            consumer_lag=Gauge(
                f"{prefix}_consumer_lag_messages",
                "Committed messages not yet processed, per input partition",
                ["topic", "partition"],
                registry=registry,
            ),
        )


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        is_ready: Callable[[], bool],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._registry = registry
        self._is_ready = is_ready
        handler = self._make_handler()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self._registry
        is_ready = self._is_ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._reply(200, b"ok\n", "text/plain")
                elif self.path == "/readyz":
                    ok = is_ready()
                    self._reply(
                        200 if ok else 503, b"ready\n" if ok else b"starting\n", "text/plain"
                    )
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # access logs would only be noise; probes hit these every few seconds

        return Handler
