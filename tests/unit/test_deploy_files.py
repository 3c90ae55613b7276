"""Deployment files: generated ones are current, Strimzi resources match the project's schema,
and the ACL matrix grants exactly what the data-minimisation principles allow."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from biostream_dev.access import (
    load_matrix,
    render,
    render_strimzi_topics_yaml,
    render_strimzi_yaml,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s" / "base"
SCHEMA = json.loads((ROOT / "deploy" / "k8s" / "schemas" / "strimzi.schema.json").read_text())
HOSPITALS, DATASETS = ["H001", "H002", "H003"], ["cohort-demo"]


def strimzi_documents() -> list[dict[str, Any]]:
    docs = []
    for name in ("kafka-cluster.yaml", "kafka-topics.yaml", "kafka-users.yaml"):
        docs += [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]
    return docs


def test_generated_users_and_topics_are_current() -> None:
    assert (BASE / "kafka-users.yaml").read_text() == render_strimzi_yaml(HOSPITALS, DATASETS), (
        "run: biostream-dev access strimzi --output deploy/k8s/base/kafka-users.yaml"
    )
    assert (BASE / "kafka-topics.yaml").read_text() == render_strimzi_topics_yaml(
        HOSPITALS, DATASETS
    ), "run: biostream-dev access strimzi-topics --output deploy/k8s/base/kafka-topics.yaml"


def test_every_strimzi_resource_matches_the_schema() -> None:
    docs = strimzi_documents()
    assert {d["kind"] for d in docs} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["spec"]["authorization"]["acls"][0]["resource"].update(patternType="glob"),
        lambda d: d["spec"].update(authentication={"type": "plain"}),
        lambda d: d["metadata"].update(name="Hospital-H001"),
        lambda d: d["metadata"]["labels"].pop("strimzi.io/cluster"),
    ],
)
def test_the_schema_rejects_broken_users(mutate: Any) -> None:
    user = copy.deepcopy(next(d for d in strimzi_documents() if d["kind"] == "KafkaUser"))
    mutate(user)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(user, SCHEMA)


def test_the_matrix_keeps_identity_and_clinical_data_apart() -> None:
    principals = render(load_matrix(), hospitals=HOSPITALS, datasets=["a", "b"])
    readers = {
        topic: sorted(role for role, p in principals.items() if p.allows("topic", topic, "Read"))
        for topic in (
            "feed.H001",
            "identity.records",
            "clinical.records",
            "linkage.decisions",
            "curated.a",
            "audit.ledger",
            "ops.dead-letters",
        )
    }
    assert readers == {
        # the desk shows stewards the records; the parameter job trains and shadows on them (D41)
        "identity.records": ["linkage-trainer", "svc-linkage", "svc-review"],
        "clinical.records": ["svc-pseudonymizer"],
        "linkage.decisions": ["svc-pseudonymizer", "svc-review"],
        # the auditor traces a project's pseudonym to its curated ids (D35)
        "curated.a": ["auditor", "project-a"],
        "audit.ledger": ["auditor"],
        # reconcile counts feed positions with Describe alone (D35): no one else reads feeds
        "feed.H001": ["svc-ingest"],
        # originals inside are sealed; a steward unseals one with the key, audited first (D35)
        "ops.dead-letters": ["operator", "steward"],
    }
    writers = {
        topic: sorted(role for role, p in principals.items() if p.allows("topic", topic, "Write"))
        for topic in (
            "feed.H001",
            "audit.ledger",
            "curated.b",
            "identity.records",
            "consent.events",
        )
    }
    assert writers == {
        # the consent desk and ingest (FHIR Consent in feeds), no hospital principal (D32)
        "consent.events": ["consent", "svc-ingest"],
        "feed.H001": ["hospital-h001"],
        "audit.ledger": ["svc-audit"],
        "curated.b": ["svc-pseudonymizer"],
        "identity.records": ["svc-ingest"],
    }


SERVICES = ["ingest", "linkage", "pseudonymizer", "audit", "review", "access"]


def _deployment(service: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((BASE / f"{service}.yaml").read_text())
    return next(d for d in docs if d and d["kind"] == "Deployment")


def test_every_kafka_listener_is_tls_and_authenticated() -> None:
    """D30: no plaintext listener; SCRAM and client-certificate listeners both inside TLS."""
    (cluster,) = [d for d in strimzi_documents() if d["kind"] == "Kafka"]
    listeners = cluster["spec"]["kafka"]["listeners"]
    assert all(listener["tls"] is True for listener in listeners)
    assert {listener["authentication"]["type"] for listener in listeners} == {
        "scram-sha-512",
        "tls",
    }


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_logs_in_as_itself_over_tls(service: str) -> None:
    """D30: the service's own SCRAM user, its password from that user's Secret, and the cluster
    CA mounted where the common settings say it is."""
    common = yaml.safe_load((BASE / "configmap.yaml").read_text())["data"]
    assert common["BIOSTREAM_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    (cluster,) = [d for d in strimzi_documents() if d["kind"] == "Kafka"]
    scram_port = next(
        lst["port"]
        for lst in cluster["spec"]["kafka"]["listeners"]
        if lst["authentication"]["type"] == "scram-sha-512"
    )
    assert common["BIOSTREAM_KAFKA__BOOTSTRAP_SERVERS"].endswith(f":{scram_port}")

    pod = _deployment(service)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    user = env["BIOSTREAM_KAFKA__SASL_USERNAME"]["value"]
    assert env["BIOSTREAM_PRINCIPAL"]["value"] == f"User:{user}"
    assert env["BIOSTREAM_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": user,
        "key": "password",
    }
    users = {d["metadata"]["name"] for d in strimzi_documents() if d["kind"] == "KafkaUser"}
    assert user in users

    ca_path = Path(common["BIOSTREAM_KAFKA__SSL_CAFILE"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[str(ca_path.parent)])
    assert volume["secret"]["secretName"] == "biostream-cluster-ca-cert"
    assert {"key": "ca.crt", "path": ca_path.name} in volume["secret"]["items"]


def test_the_consent_desk_writes_consent_and_its_audit_events_only() -> None:
    """D32: the consent principal reads nothing and writes two topics."""
    consent = render(load_matrix(), hospitals=HOSPITALS, datasets=DATASETS)["consent"]
    topics = {(g.name, g.operations) for g in consent.grants if g.resource == "topic"}
    assert topics == {
        ("consent.events", ("Write", "Describe")),
        ("audit.events.consent", ("Write", "Describe")),
    }
    assert [(g.resource, g.name, g.prefixed) for g in consent.grants if g.resource != "topic"] == [
        ("transactionalId", "consent-", True)
    ]


def test_the_parameter_job_reads_identity_records_and_writes_parameter_versions_only() -> None:
    """D41: the trainer reads the identity records and the versions, writes versions alone, and
    shares the one transactional id of every linkage.params writer with the steward."""
    principals = render(load_matrix(), hospitals=HOSPITALS, datasets=DATASETS)
    trainer = principals["linkage-trainer"]
    topics = {(g.name, g.operations) for g in trainer.grants if g.resource == "topic"}
    assert topics == {
        ("identity.records", ("Read", "Describe")),
        ("linkage.params", ("Read", "Describe")),
        ("linkage.params", ("Write", "Describe")),
    }
    for role in ("linkage-trainer", "steward"):
        ids = [
            (g.name, g.prefixed) for g in principals[role].grants if g.resource == "transactionalId"
        ]
        assert ids == [("linkage-params", False)], role
    writers = sorted(
        r for r, p in principals.items() if p.allows("topic", "linkage.params", "Write")
    )
    assert writers == ["linkage-trainer", "steward"]
    assert principals["svc-linkage"].allows("topic", "linkage.params", "Read")


def test_each_principal_writes_only_its_own_audit_topic() -> None:
    """D31: the audit service names an event's principal from the topic it was read from, so
    no principal may write another's audit topic, and every writer has one."""
    from biostream.topics import AUDIT_WRITERS, Topics

    principals = render(load_matrix(), hospitals=HOSPITALS, datasets=DATASETS)
    topics = Topics()
    for role, principal in principals.items():
        writable = [t for t in topics.audit_event_topics if principal.allows("topic", t, "Write")]
        assert writable == ([topics.audit_events_of(role)] if role in AUDIT_WRITERS else []), role
    assert set(AUDIT_WRITERS) <= set(principals)
    assert all(
        principals["svc-audit"].allows("topic", t, "Read") for t in topics.audit_event_topics
    )


def test_the_parameter_job_runs_weekly_as_its_own_principal_with_linkages_keys_only() -> None:
    """D41: the CronJob trains and shadows in one run, one at a time, as linkage-trainer (its
    KafkaUser and Secret), with the RRN and person keys mounted read-only and nothing else
    secret; its network policy lets it reach the brokers and DNS only."""
    docs = [d for d in yaml.safe_load_all((BASE / "linkage-params.yaml").read_text()) if d]
    (job,) = [d for d in docs if d["kind"] == "CronJob"]
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert (
        "linkage-params.yaml"
        in yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    )
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["linkage", "train", "--from-topic", "--shadow"]
    env = {e["name"]: e for e in container["env"]}
    assert env["BIOSTREAM_KAFKA__SASL_USERNAME"]["value"] == "linkage-trainer"
    assert env["BIOSTREAM_PRINCIPAL"]["value"] == "User:linkage-trainer"
    assert env["BIOSTREAM_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "linkage-trainer"
    )
    users = {d["metadata"]["name"] for d in strimzi_documents() if d["kind"] == "KafkaUser"}
    assert "linkage-trainer" in users
    secrets = {v["secret"]["secretName"] for v in pod["volumes"]}
    assert secrets == {
        "biostream-cluster-ca-cert", "biostream-rrn-key", "biostream-linkage-keys",
    }  # fmt: skip
    assert all(m["readOnly"] for m in container["volumeMounts"])
    labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert "ingress" not in policy["spec"] and sorted(policy["spec"]["policyTypes"]) == [
        "Egress", "Ingress",
    ]  # fmt: skip
    kafka_rule, dns_rule = policy["spec"]["egress"]
    assert kafka_rule["to"][0]["podSelector"]["matchLabels"]["strimzi.io/kind"] == "Kafka"
    assert {p["port"] for p in dns_rule["ports"]} == {53}


def test_the_access_board_config_map_is_the_programmes_board_file() -> None:
    """D47: the Kubernetes board file and catalogue are config/access/'s byte for byte (each
    submission records the board file's SHA-256), mounted where the service reads it."""
    docs = [d for d in yaml.safe_load_all((BASE / "access.yaml").read_text()) if d]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    for name in ("board.yaml", "catalogue.yaml"):
        text = (BASE.parents[2] / "config" / "access" / name).read_text()
        assert config_map["data"][name] == text, name
    (container,) = _deployment("access")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["BIOSTREAM_BOARD_FILE"] == f"{mounts['access-board']}/board.yaml"
    assert env["BIOSTREAM_CATALOGUE_FILE"] == f"{mounts['access-board']}/catalogue.yaml"
    assert env["BIOSTREAM_VISA_KEY_FILE"].startswith(mounts["access-secrets"])
