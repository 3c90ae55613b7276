"""D46: what an approved project's principal may do, as ACL bindings and as a Strimzi KafkaUser
(validated offline like the rest of deploy/k8s)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from biostream.project_access import project_bindings, strimzi_user
from biostream.topics import Topics
from biostream_dev.access import Grant, Principal
from biostream_harness.__main__ import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "deploy" / "k8s" / "schemas" / "strimzi.schema.json").read_text())


def test_a_project_reads_exactly_its_curated_and_notice_topics_and_its_groups() -> None:
    bindings = project_bindings("User:t1.project-late", "cohort-late", Topics("t1."))
    granted = {(b.resource, b.name, b.prefixed, b.operation) for b in bindings}
    assert granted == {
        ("topic", "t1.curated.cohort-late", False, "Read"),
        ("topic", "t1.curated.cohort-late", False, "Describe"),
        ("topic", "t1.curated.cohort-late.notices", False, "Read"),
        ("topic", "t1.curated.cohort-late.notices", False, "Describe"),
        ("group", "t1.project-cohort-late", True, "Read"),
    }
    as_principal = Principal(
        "t1.project-late",
        tuple(Grant(b.resource, b.name, b.prefixed, (b.operation,)) for b in bindings),
    )
    assert not as_principal.allows("topic", "t1.curated.cohort-other", "Read")
    assert not as_principal.allows("topic", "t1.curated.cohort-late", "Write")
    assert not as_principal.allows("topic", "t1.curated.cohort-late.extra", "Read")


def test_the_rendered_kafka_user_is_valid_and_grants_the_same() -> None:
    result = CliRunner().invoke(
        app,
        ["policy", "kafka-user", "--principal", "User:project-late", "--dataset", "cohort-late"],
    )
    assert result.exit_code == 0, result.output
    user = yaml.safe_load(result.output)
    jsonschema.validate(user, SCHEMA)
    assert user == strimzi_user("User:project-late", "cohort-late", Topics())
    assert user["metadata"]["name"] == "project-late"
    names = {
        (a["resource"]["name"], a["operations"][0]) for a in user["spec"]["authorization"]["acls"]
    }
    assert ("curated.cohort-late.notices", "Read") in names and len(names) == 5
