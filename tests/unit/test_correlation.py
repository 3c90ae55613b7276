"""Correlation ids: one feed message's id travels, as the ``correlation-id`` header, through all
four services' handlers to every output (curated records and ledger entries included), and is in
the log context while each service handles it. No broker: each service's processor handles the
previous service's outputs directly (``biostream.step.handle_message``, the per-message step of
its transaction), routed by the topics each service subscribes to."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import deque
from collections.abc import Iterator

import pytest
import structlog
from biostream.contract import (
    CORRELATION_HEADER,
    Inbound,
    Outbound,
    correlation_id,
    correlation_ids,
    correlation_of,
    with_correlation,
)
from biostream.logs import configure_logging
from biostream.processor import TransactionalProcessor
from biostream.settings import KafkaSettings
from biostream.step import handle_message
from biostream.topics import Topics
from biostream_harness.bench.ingest import synthetic_hl7
from biostream_harness.inprocess import Keys, build_services
from ingest.domain.files import split_feed

NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
PREFIX = "corr."


@pytest.fixture
def reset_logging() -> Iterator[None]:
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def header(out: Outbound) -> str | None:
    values = [v.decode() for k, v in out.headers if k == CORRELATION_HEADER]
    assert len(values) <= 1
    return values[0] if values else None


def step(processor: TransactionalProcessor, message: Inbound) -> list[Outbound]:
    """What the processor's transaction would hold for ``message``."""
    return handle_message(processor.handler, processor.on_failure, processor.state, message, NOW)


def consumers_of(topic: str, processors: dict[str, TransactionalProcessor]) -> list[str]:
    found = []
    for name, processor in processors.items():
        config = processor.config
        pattern = config.input_pattern
        if topic in config.input_topics or (pattern and re.fullmatch(pattern, topic)):
            found.append(name)
    return found


def run_in_process(
    messages: list[Inbound], processors: dict[str, TransactionalProcessor]
) -> list[tuple[str, Inbound, Outbound]]:
    """Feeds ``messages`` through the services; returns (producing service, its input, output)."""
    queue: deque[tuple[str, Inbound]] = deque()
    for message in messages:
        queue.extend((name, message) for name in consumers_of(message.topic, processors))
    produced: list[tuple[str, Inbound, Outbound]] = []
    offsets: dict[str, int] = {}
    while queue:
        name, message = queue.popleft()
        for out in step(processors[name], message):
            produced.append((name, message, out))
            offset = offsets[out.topic] = offsets.get(out.topic, -1) + 1
            follow = Inbound(out.topic, 0, offset, out.key, out.value, out.headers, 0)
            queue.extend((n, follow) for n in consumers_of(out.topic, processors))
    return produced


def feed(count: int) -> list[Inbound]:
    topic = Topics(PREFIX).feed("BENCH")
    messages = split_feed("hl7", synthetic_hl7(count, seed=11))
    content = (("content-type", b"x-application/hl7-v2+er7"),)
    return [Inbound(topic, 0, n, m.key, m.value, content, 0) for n, m in enumerate(messages)]


def test_every_output_of_every_service_carries_its_feed_messages_correlation_id(
    capsys: pytest.CaptureFixture[str], reset_logging: None
) -> None:
    configure_logging("unit", level="DEBUG")
    services = build_services(KafkaSettings(bootstrap_servers="unused:9092"), PREFIX, Keys.fresh())
    processors = {name: s.processor for name, s in services.items()}
    messages = feed(6)
    produced = run_in_process(messages, processors)

    topics = Topics(PREFIX)
    by_service = {name for name, _, _ in produced}
    assert by_service == {"ingest", "linkage", "pseudonymizer", "audit"}
    curated = [out for _, _, out in produced if out.topic == topics.curated("cohort-demo")]
    # At least one curated record per message (a later link decision can re-release earlier ones).
    assert len(curated) >= len(messages)
    feed_refs = {m.source_ref for m in messages}
    for _, message, out in produced:
        # Every output carries the id of the input it was made from (for a re-release: of the
        # message that caused it), and that id is always the source reference of a feed message.
        assert header(out) == correlation_id(message)
        assert header(out) in feed_refs
    assert {header(out) for out in curated} == feed_refs

    # While handling, the id is in every log line's context; it names no person.
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    handled = [line for line in lines if line["event"] == "message handled"]
    assert len(handled) == len({(n, m.topic, m.offset) for n, m, _ in produced})
    assert {line["correlation_id"] for line in handled} == feed_refs
    assert "correlation_id" not in structlog.contextvars.get_contextvars()


def test_a_correlation_header_from_outside_is_only_trusted_in_the_harmless_shape() -> None:
    def inbound(*headers: tuple[str, bytes]) -> Inbound:
        return Inbound("feed.H001", 0, 42, None, b"x", headers, 0)

    assert correlation_id(inbound()) == "feed.H001/0/42"
    assert correlation_id(inbound((CORRELATION_HEADER, b"feed.H002/1/7"))) == "feed.H002/1/7"
    # A hospital's producer could put anything in a header: a name, a resident number.
    for hostile in ("홍길동", "971013-9019902", "feed.H001/0/1 홍길동", "a/b/c", ""):
        message = inbound((CORRELATION_HEADER, hostile.encode()))
        assert correlation_id(message) == "feed.H001/0/42"


def test_outputs_that_already_carry_an_id_keep_it() -> None:
    own = Outbound("t", b"v", headers=((CORRELATION_HEADER, b"feed.H001/0/1"), ("x", b"y")))
    plain = Outbound("t", b"v", headers=(("x", b"y"),))
    kept, added = with_correlation([own, plain], "feed.H009/0/9")
    assert kept == own
    assert added.headers == (("x", b"y"), (CORRELATION_HEADER, b"feed.H009/0/9"))


def test_a_batch_of_audit_events_names_every_records_id_in_the_audit_services_log(
    capsys: pytest.CaptureFixture[str], reset_logging: None
) -> None:
    """Services pack a transaction's audit events into one message (D15); its header lists the
    records' ids, and the audit service logs them as ``correlation_ids``."""
    configure_logging("unit", level="DEBUG")
    services = build_services(KafkaSettings(bootstrap_servers="unused:9092"), PREFIX, Keys.fresh())
    topics = Topics(PREFIX)
    messages = feed(4)
    ingest = services["ingest"].processor
    audit_outputs = [
        out
        for m in messages
        for out in step(ingest, m)
        if out.topic == topics.audit_events_of("svc-ingest")
    ]
    batching = ingest.audit_batching
    assert batching is not None
    hostile = Outbound(topics.audit_events_of("svc-ingest"), audit_outputs[0].value,
                       headers=((CORRELATION_HEADER, "홍길동".encode()),))  # fmt: skip
    [batch] = batching.pack(
        [o.value or b"" for o in [*audit_outputs, hostile]],
        [correlation_of(o) for o in [*audit_outputs, hostile]],
        NOW,
    )
    inbound = Inbound(batch.topic, 0, 0, batch.key, batch.value, batch.headers, 0)
    assert correlation_ids(inbound) == [m.source_ref for m in messages]
    capsys.readouterr()
    step(services["audit"].processor, inbound)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    [handled] = [line for line in lines if line["event"] == "message handled"]
    assert handled["correlation_ids"] == [m.source_ref for m in messages]
    assert "correlation_ids" not in structlog.contextvars.get_contextvars()
