"""D46: what a research project's Kafka principal may do while its dataset is approved.

Exactly: Read and Describe on the dataset's curated topic and its notice topic (literal names),
and Read on consumer groups named ``project-<dataset>...`` (a prefix: the toolkit's groups). The
pseudonymizer grants these through the Kafka admin API when a signed policy version starts the
dataset and deletes them when it stops (withdrawal, expiry); ``strimzi_user`` renders the same
grants as a Strimzi ``KafkaUser`` for a cluster managed by its operator. Nothing else is granted:
the principal never writes, never reads another dataset, never describes the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from biostream.kafka import sync_admin_client
from biostream.settings import KafkaSettings
from biostream.topics import Topics

ResourceKind = Literal["topic", "group"]


@dataclass(frozen=True)
class Binding:
    principal: str  # User:<name>
    resource: ResourceKind
    name: str
    prefixed: bool
    operation: Literal["Read", "Describe"]


def project_bindings(principal: str, dataset: str, topics: Topics) -> list[Binding]:
    """D46: a project's grants for one dataset: its curated and notice topics, its groups."""
    return [
        *(
            Binding(principal, "topic", name, False, operation)
            for name in (topics.curated(dataset), topics.notices(dataset))
            for operation in ("Read", "Describe")
        ),
        Binding(principal, "group", f"{topics.prefix}project-{dataset}", True, "Read"),
    ]


def apply_bindings(admin: KafkaSettings, bindings: list[Binding], *, grant: bool) -> None:
    """Creates (``grant``) or deletes the bindings; both are idempotent at the broker. Blocking
    (kafka-python): run it in a thread from async code. Raises RuntimeError naming the count."""
    if not bindings:
        return
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
    )

    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}

    def entry(entry_type: Any, pattern_type: Any, b: Binding) -> Any:
        """The ACL to create (``ACL``, ``ResourcePattern``) or the filter that deletes exactly
        it (``ACLFilter``, ``ResourcePatternFilter``): the same fields either way."""
        return entry_type(
            principal=b.principal,
            host="*",
            operation=ACLOperation[b.operation.upper()],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=pattern_type(
                kinds[b.resource],
                b.name,
                ACLResourcePatternType.PREFIXED if b.prefixed else ACLResourcePatternType.LITERAL,
            ),
        )

    client = sync_admin_client(admin, "biostream-project-access")
    try:
        if grant:
            result = client.create_acls([entry(ACL, ResourcePattern, b) for b in bindings])
            if result.get("failed"):
                raise RuntimeError(f"creating {len(result['failed'])} project ACLs failed")
        else:
            outcome = client.delete_acls(
                [entry(ACLFilter, ResourcePatternFilter, b) for b in bindings]
            )
            failed = [error for _filter, _acls, error in outcome if error.errno != 0]
            if failed:
                raise RuntimeError(f"deleting project ACLs failed ({len(failed)} filters)")
    finally:
        client.close()


def strimzi_user(principal: str, dataset: str, topics: Topics) -> dict[str, Any]:
    """D46: the Strimzi ``KafkaUser`` of a project approved for ``dataset`` (SCRAM-SHA-512,
    simple authorization, exactly ``project_bindings``)."""
    name = principal.removeprefix("User:")
    acls = [
        {
            "resource": {
                "type": b.resource,
                "name": b.name,
                "patternType": "prefix" if b.prefixed else "literal",
            },
            "operations": [b.operation],
            "host": "*",
        }
        for b in project_bindings(principal, dataset, topics)
    ]
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {
            "name": name,
            "labels": {
                "strimzi.io/cluster": "biostream",
                "app.kubernetes.io/part-of": "biostream",
                "biostream.kr/dataset": dataset,
            },
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }
