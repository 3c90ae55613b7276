"""Every metric an alert rule or a dashboard panel names is one a service exports.

A misspelt name does not fail promtool or Grafana: the expression just never matches, and the alert
never fires. (The ledger-verification alert watched ``biostream_audit_ledger_verified`` for a
while; the audit service exports ``biostream_audit_verification_ok``.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from biostream.settings import KafkaSettings
from biostream_harness.inprocess import Keys, build_services
from prometheus_client import CollectorRegistry
from review.handlers import ReviewMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "biostream-pipeline.json"
# A plain metric name; recording rules (with ':') and regex selectors are checked separately.
NAME = re.compile(r"(?<![\w:])biostream_[a-z0-9_]+(?![\w:])")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_names() -> set[str]:
    services = build_services(KafkaSettings(bootstrap_servers="unused:9092"), "m.", Keys.fresh())
    registries = [s.registry for s in services.values()]
    review = CollectorRegistry()
    ReviewMetrics.create(review)
    names: set[str] = set()
    for registry in [*registries, review]:
        for family in registry.collect():
            names.add(family.name)
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    def walk(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["expr"]] if isinstance(node.get("expr"), str) else []
            return found + [e for value in node.values() for e in walk(value)]
        if isinstance(node, list):
            return [e for item in node for e in walk(item)]
        return []

    return walk(json.loads(DASHBOARD.read_text()))


def test_alerts_and_dashboard_name_only_exported_metrics() -> None:
    exported = exported_names()
    assert "biostream_audit_verification_ok" in exported  # the test sees the services' metrics
    expressions = rule_expressions() + dashboard_expressions()
    assert len(expressions) > 10
    named = {name for expr in expressions for name in NAME.findall(expr)}
    assert named, "no metric names found"
    assert sorted(named - exported) == []


def test_regex_selectors_match_an_exported_metric() -> None:
    exported = exported_names()
    for expr in rule_expressions() + dashboard_expressions():
        for pattern in re.findall(r'__name__=~"([^"]+)"', expr):
            assert any(re.fullmatch(pattern, name) for name in exported), pattern
