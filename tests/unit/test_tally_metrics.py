"""The hot-loop metrics (TallyCounter, TallyHistogram) expose exactly what prometheus_client's own
Counter and Histogram expose for the same observations (apart from the ``_created`` series)."""

from __future__ import annotations

from biostream.observability import LATENCY_BUCKETS, TallyCounter, TallyHistogram
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if "_created" not in line)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_a_tally_histogram_exposes_what_a_histogram_would(values: list[float]) -> None:
    ours, reference = CollectorRegistry(), CollectorRegistry()
    tally = TallyHistogram("x_lag_seconds", "Lag", LATENCY_BUCKETS, ours)
    histogram = Histogram("x_lag_seconds", "Lag", buckets=LATENCY_BUCKETS, registry=reference)
    for value in values:
        tally.observe(value)
        histogram.observe(value)
    assert exposition(ours) == exposition(reference)


def test_a_value_on_a_bucket_bound_counts_in_that_bucket() -> None:
    registry = CollectorRegistry()
    tally = TallyHistogram("x_lag_seconds", "Lag", (0.1, 1.0), registry)
    tally.observe(0.1)
    tally.observe(5.0)
    assert registry.get_sample_value("x_lag_seconds_bucket", {"le": "0.1"}) == 1
    assert registry.get_sample_value("x_lag_seconds_bucket", {"le": "1.0"}) == 1
    assert registry.get_sample_value("x_lag_seconds_bucket", {"le": "+Inf"}) == 2
    assert registry.get_sample_value("x_lag_seconds_count") == 2
    assert registry.get_sample_value("x_lag_seconds_sum") == 5.1


@given(st.lists(st.sampled_from([("A", "r1"), ("B", "r1"), ("A", "r2")]), max_size=30))
def test_a_tally_counter_exposes_what_a_counter_would(increments: list[tuple[str, str]]) -> None:
    ours, reference = CollectorRegistry(), CollectorRegistry()
    tally = TallyCounter("x_decisions", "Decisions", ("outcome", "rule"), ours)
    counter = Counter("x_decisions", "Decisions", ["outcome", "rule"], registry=reference)
    for labels in increments:
        tally.inc(*labels)
        counter.labels(*labels).inc()
    assert exposition(ours) == exposition(reference)
