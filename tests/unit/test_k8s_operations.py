"""Kubernetes operations files: network policies, disruption budgets, lag autoscaling,
ServiceMonitor, PrometheusRule (generated from deploy/prometheus/rules.yml) and the overlays.

KEDA and Prometheus Operator resources are checked against the project's own schema
(deploy/k8s/schemas/operators.schema.json); core kinds are checked by `make deploy-check`
(kubernetes-validate --strict on each rendered overlay)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from biostream.observability import ProcessorMetrics
from biostream_dev.k8s import kustomize_command, render_prometheus_rule
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
SCHEMA = json.loads((K8S / "schemas" / "operators.schema.json").read_text())
SERVICES = [
    "ingest", "linkage", "pseudonymizer", "audit", "review", "access", "mllp-h001", "fhir-h001",
]  # fmt: skip
# Each hospital intake's own port besides metrics (D37, D38).
INTAKE_PORTS = {"mllp-h001": 2575, "fhir-h001": 8443}
# Each service's own port besides metrics: the web pages and the intakes.
WEB_PORTS = {"review": {8080}, "access": {8081}, **{n: {p} for n, p in INTAKE_PORTS.items()}}
# Scaled on consumer lag (KEDA): the stream processors, not the review desk (no consumer group).
LAG_SCALED = ["ingest", "linkage", "pseudonymizer", "audit"]
CR_GROUPS = ("keda.sh", "monitoring.coreos.com")


def base_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]
    return docs


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*kustomize_command(), str(K8S / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_prometheus_rule_is_generated_from_the_promtool_tested_rules() -> None:
    assert (BASE / "prometheusrule.yaml").read_text() == render_prometheus_rule(), (
        "run: biostream-dev k8s prometheus-rule --output deploy/k8s/base/prometheusrule.yaml"
    )
    rule = of_kind(base_documents(), "PrometheusRule")["biostream"]
    plain = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())
    assert rule["spec"]["groups"] == plain["groups"]


def test_every_operator_resource_matches_the_schema() -> None:
    docs = [d for d in base_documents() if d["apiVersion"].split("/")[0] in CR_GROUPS]
    assert sorted(d["kind"] for d in docs) == sorted(
        ["ScaledObject"] * 4 + ["ServiceMonitor", "PrometheusRule"]
    )
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].update(threshold=5000)),
        ("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].pop("query")),
        ("ScaledObject", lambda d: d["spec"].pop("scaleTargetRef")),
        ("ScaledObject", lambda d: d["spec"].update(maxReplicaCount=0)),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(interval="15 seconds")),
        ("ServiceMonitor", lambda d: d["spec"].update(selector={})),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].pop("record")),
        ("PrometheusRule", lambda d: d["spec"]["groups"][1]["rules"][0].update(record="x")),
        ("PrometheusRule", lambda d: d["spec"]["groups"][1]["rules"][0].update(labels={"n": 1})),
    ],
)
def test_the_schema_rejects_broken_resources(kind: str, mutate: Any) -> None:
    doc = copy.deepcopy(next(d for d in base_documents() if d["kind"] == kind))
    jsonschema.validate(doc, SCHEMA)
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_autoscaling_watches_each_services_own_lag_metric_and_keeps_one_replica() -> None:
    docs = base_documents()
    deployments = of_kind(docs, "Deployment")
    scaled = of_kind(docs, "ScaledObject")
    assert sorted(scaled) == sorted(LAG_SCALED)
    for service, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        assert deployments[service]["spec"]["replicas"] == 1
        # D2: one instance per service until state can be shared.
        assert obj["spec"]["minReplicaCount"] == obj["spec"]["maxReplicaCount"] == 1
        registry = CollectorRegistry()
        lag = ProcessorMetrics.create(registry, service).consumer_lag
        query = obj["spec"]["triggers"][0]["metadata"]["query"]
        assert f"({lag._name})" in query  # the gauge the service really exports


def test_network_policies_deny_by_default_and_let_services_reach_only_kafka() -> None:
    docs = base_documents()
    policies = of_kind(docs, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny

    services = policies["biostream-services"]["spec"]
    (expression,) = services["podSelector"]["matchExpressions"]
    assert sorted(expression["values"]) == sorted(SERVICES)
    for deployment in of_kind(docs, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels[expression["key"]] in expression["values"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        name = deployment["metadata"]["name"]
        web = WEB_PORTS.get(name, set())
        assert {p["containerPort"] for p in container["ports"]} == {9100} | web
    # The review desk's pages: only from the ingress controller, only on the web port.
    review_web = policies["review-web"]["spec"]
    assert review_web["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "review"}
    (web_in,) = review_web["ingress"]
    assert web_in["ports"] == [{"protocol": "TCP", "port": 8080}]
    # The access service's pages, API and JWKS (D47): the same, on its web port.
    access_web = policies["access-web"]["spec"]
    assert access_web["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "access"}
    (access_in,) = access_web["ingress"]
    assert access_in["ports"] == [{"protocol": "TCP", "port": 8081}]
    # The intakes' own ports, and nothing else, for the hospitals.
    intakes = policies["hospital-intakes"]["spec"]
    (intake_in,) = intakes["ingress"]
    assert {p["port"] for p in intake_in["ports"]} == set(INTAKE_PORTS.values())
    assert "from" not in intake_in  # every caller is authenticated before anything is stored
    # In: only the metrics port, only from Prometheus.
    (ingress,) = services["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9100}]
    assert ingress["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "prometheus"
    }
    # Out: the Kafka brokers' client port (the one in the common settings), and DNS.
    kafka_rule, dns_rule = services["egress"]
    bootstrap = of_kind(docs, "ConfigMap")["biostream-common"]["data"]
    port = int(bootstrap["BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    assert kafka_rule["ports"] == [{"protocol": "TCP", "port": port}]
    cluster = of_kind(docs, "Kafka")["biostream"]["metadata"]["name"]
    assert kafka_rule["to"][0]["podSelector"]["matchLabels"]["strimzi.io/cluster"] == cluster
    assert {p["port"] for p in dns_rule["ports"]} == {53}
    assert dns_rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_each_service_has_a_disruption_budget_that_does_not_block_drains() -> None:
    docs = base_documents()
    budgets = of_kind(docs, "PodDisruptionBudget")
    for name, deployment in of_kind(docs, "Deployment").items():
        budget = budgets[name]["spec"]
        assert budget["selector"]["matchLabels"].items() <= (
            deployment["spec"]["template"]["metadata"]["labels"].items()
        )
        # One replica (D2): minAvailable 1 would make `kubectl drain` wait forever.
        assert budget == {"maxUnavailable": 1, "selector": budget["selector"]}


def test_service_monitor_scrapes_every_metrics_service_under_the_rules_job_names() -> None:
    docs = base_documents()
    monitor = of_kind(docs, "ServiceMonitor")["biostream"]["spec"]
    (expression,) = monitor["selector"]["matchExpressions"]
    metric_services = [
        s for s in of_kind(docs, "Service").values()
        if s["metadata"]["labels"].get(expression["key"]) in expression["values"]
    ]  # fmt: skip
    assert len(metric_services) == 5 + len(INTAKE_PORTS)  # the four, the access service, intakes
    (endpoint,) = monitor["endpoints"]
    for service in metric_services:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    (relabel,) = endpoint["relabelings"]
    assert relabel["targetLabel"] == "job" and relabel["replacement"] == "biostream-$1"
    rules = (ROOT / "deploy" / "prometheus" / "rules.yml").read_text()
    assert 'job=~"biostream-.+"' in rules


def test_overlays_render_with_their_own_images_resources_and_namespaces() -> None:
    rendered = {overlay: render(overlay) for overlay in ("dev", "production")}
    images = {}
    for overlay, docs in rendered.items():
        deployments = of_kind(docs, "Deployment")
        assert sorted(deployments) == sorted(SERVICES)
        images[overlay] = {
            c["image"]
            for d in deployments.values()
            for c in d["spec"]["template"]["spec"]["containers"]
        }
        assert all(d["spec"]["replicas"] == 1 for d in deployments.values())
        assert len({d["metadata"].get("namespace") for d in docs}) == 1
        for doc in docs:
            if doc["apiVersion"].split("/")[0] in CR_GROUPS:
                jsonschema.validate(doc, SCHEMA)
    assert images == {"dev": {"biostream:dev"}, "production": {"biostream:0.1.0"}}
    cpu = {
        overlay: of_kind(docs, "Deployment")["ingest"]["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]["limits"]["cpu"]
        for overlay, docs in rendered.items()
    }
    assert cpu == {"dev": "500m", "production": "2"}
