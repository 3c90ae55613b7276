"""Metrics and health over HTTP: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (ready).

Served from a daemon thread with the standard library's HTTP server: the endpoints are tiny, and
keeping them off the event loop means a busy loop cannot make a service look dead to its probe.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
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
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class TallyCounter(Collector):
    """A labelled Prometheus counter for per-message counts in a hot loop: ``inc`` is one dict
    update (``Counter.labels(...).inc()`` takes a lock and a child lookup, several microseconds,
    paid ten times per message by ingest's data-quality counts); the tallies are read at scrape
    time. Same exposition as a ``Counter`` (``<name>_total``); only the ``_created`` series is
    absent. Labels must be bounded codes, as for any metric."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = labelnames
        self._counts: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._counts[labels] = self._counts.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._counts.get(labels, 0.0)

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        # list() copies in one step under the GIL while the event loop thread keeps counting.
        for labels, count in list(self._counts.items()):
            family.add_metric(list(labels), count)
        yield family


class TallyHistogram(Collector):
    """An unlabelled Prometheus histogram for a value observed per message: ``observe`` is a
    bisect and two additions (``Histogram.observe`` takes a lock per bucket step and for the sum,
    ~2 us, paid for every input message); read at scrape time. Same exposition as a
    ``Histogram`` (``_bucket{le}``, ``_sum``, ``_count``); only ``_created`` is absent."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = list(buckets)
        self._counts = [0] * (len(buckets) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts, total = list(self._counts), self._sum  # copied while the loop keeps counting
        cumulative, running = [], 0
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            running += count
            cumulative.append((_bucket_label(bound), running))
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], cumulative, total)
        yield family


def _bucket_label(bound: float) -> str:
    # Prometheus' own spelling of bucket bounds ("0.005", "1.0", "+Inf").
    return "+Inf" if bound == float("inf") else repr(float(bound))


@dataclass(frozen=True)
class ProcessorMetrics:
    """What every stream processor reports. Labels are topic names and stable codes only."""

    messages_in: Counter
    messages_out: Counter
    dead_letters: Counter
    transactions: Counter
    batch_seconds: Histogram
    event_lag_seconds: TallyHistogram
    state_keys: Gauge
    ready: Gauge
    consumer_lag: Gauge
    audit_events: Counter
    held_back: Gauge
    hold_releases: Counter

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
            event_lag_seconds=TallyHistogram(
                f"{prefix}_event_lag_seconds",
                "Time from the input message's timestamp to its processing",
                LATENCY_BUCKETS,
                registry,
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
            audit_events=Counter(
                f"{prefix}_audit_events",
                "Audit events written (packed into one AuditEventBatch per transaction)",
                registry=registry,
            ),
            held_back=Gauge(
                f"{prefix}_held_back_messages",
                "Input messages held back in memory, uncommitted, until they can be handled in "
                "one go (biostream.holdback)",
                registry=registry,
            ),
            hold_releases=Counter(
                f"{prefix}_hold_releases",
                "Held-back input messages handed to the handler, by why: ready, expired, full",
                ["reason"],
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
