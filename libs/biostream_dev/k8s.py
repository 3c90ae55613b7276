"""Kubernetes files generated from the project's other deployment files, so they cannot drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS_RULE = REPO_ROOT / "deploy" / "k8s" / "base" / "prometheusrule.yaml"

# Built by tools/system-deps.sh where kubectl is missing (the Makefile's KUSTOMIZE does the same).
LOCAL_KUSTOMIZE = REPO_ROOT / ".run" / "tools" / "bin" / "kustomize"


def kustomize_command() -> list[str]:
    """How to render a Kustomize directory here: kubectl's built-in kustomize, else the kustomize
    binary `make test` builds when kubectl is missing."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    if LOCAL_KUSTOMIZE.exists():
        return [str(LOCAL_KUSTOMIZE), "build"]
    raise FileNotFoundError("no kubectl and no kustomize: run `tools/system-deps.sh test`")


_HEADER = """\
# GENERATED from deploy/prometheus/rules.yml by `biostream-dev k8s prometheus-rule`; do not edit.
# The same alert and recording rules as the plain Prometheus setup (promtool-tested there), as a
# Prometheus Operator PrometheusRule. tests/unit/test_deploy_files.py fails if this file is stale.
"""


def render_prometheus_rule(rules_file: Path = RULES) -> str:
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "biostream", "labels": {"app.kubernetes.io/name": "biostream"}},
        "spec": {"groups": groups},
    }
    return _HEADER + yaml.safe_dump(resource, sort_keys=False, allow_unicode=True, width=100)
