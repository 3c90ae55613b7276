# The two commands a newcomer needs:  make demo   and   make test
# Everything else they need (virtualenv, Python packages, Kafka jars) is set up on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RECORDS ?= 2000

DEMO_ARGS := --records $(RECORDS)
ifdef FEED
DEMO_ARGS += --feed $(FEED)
endif
ifdef SUMMARY
DEMO_ARGS += --summary $(SUMMARY)
endif
ifdef CURATED_EXPORT
DEMO_ARGS += --curated-export $(CURATED_EXPORT)
endif
ifdef LEDGER_EXPORT
DEMO_ARGS += --ledger-export $(LEDGER_EXPORT)
endif

# Kustomize: kubectl's built-in one, else the one tools/system-deps.sh builds into .run/tools/bin.
KUSTOMIZE := $(if $(shell command -v kubectl),kubectl kustomize,.run/tools/bin/kustomize build)

.PHONY: setup system-deps-demo system-deps-test demo test lint typecheck schema-compat deploy-check unit clean

# Programs outside Python (Java, Maven; for the tests Prometheus, Chromium, a Hangul font,
# Kustomize): installed on first use, or the exact command to install them, in the first second.
system-deps-demo:
	@tools/system-deps.sh demo

system-deps-test:
	@tools/system-deps.sh test

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

setup: system-deps-demo $(VENV)/.installed
	$(BIN)/python -m biostream_dev.broker fetch

demo: setup
	$(BIN)/biostream-dev demo $(DEMO_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.installed
	$(BIN)/mypy

schema-compat: $(VENV)/.installed
	$(BIN)/python tools/schema_compat.py

# Deployment files, validated offline: no Docker engine or cluster is needed.
deploy-check: system-deps-test $(VENV)/.installed
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	@mkdir -p .run
	$(KUSTOMIZE) deploy/k8s/base > .run/k8s-base.yaml
	$(BIN)/kubernetes-validate --strict --quiet .run/k8s-base.yaml
	@# Each overlay; custom resources (Strimzi, KEDA, Prometheus Operator) are checked against the
	@# project's schemas by tests/unit/test_deploy_files.py and test_k8s_operations.py.
	for overlay in dev production; do \
	  $(KUSTOMIZE) deploy/k8s/overlays/$$overlay > .run/k8s-$$overlay.yaml && \
	  $(BIN)/kubernetes-validate --strict --quiet .run/k8s-$$overlay.yaml || exit 1; \
	done
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/rules.yml
	cd deploy/prometheus && promtool test rules rules.test.yml
	$(BIN)/python -c 'import json,sys; json.load(open("deploy/grafana/dashboards/biostream-pipeline.json"))'

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit -q

test: system-deps-test setup lint typecheck schema-compat deploy-check
	# The project's own temp root: concurrent pytest sessions on one machine would otherwise
	# delete each other's folders under /tmp/pytest-of-<user> (and a running broker's data).
	$(BIN)/pytest -q --durations=15 --basetemp=.run/pytest

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
