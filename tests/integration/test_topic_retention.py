"""The retention every pipeline topic gets on the real broker, read back with describe_configs
(D21), and how topics created before retention was declared are brought up to it."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from biostream.kafka import admin_client, ensure_topics, provision_topics
from biostream.settings import KafkaSettings
from biostream.topics import AUDIT_WRITERS, Topics

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
KEYS = ("cleanup.policy", "retention.ms", "retention.bytes")
FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
COMPACT = {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
YEAR = {"cleanup.policy": "delete", "retention.ms": str(365 * DAY_MS), "retention.bytes": "-1"}


def expected(name: str) -> dict[str, str]:
    """The retention of each pipeline topic, spelled out here rather than read from the table."""
    if name.endswith((".state-changelog", ".linkage.params", ".access.policies")):
        # linkage.params: one record per parameter version (D41); access.policies: per dataset
        # (D46)
        return COMPACT
    if ".feed." in name or ".audit.events." in name or name.endswith(".ops.dead-letters"):
        return YEAR
    return FOREVER


async def broker_configs(kafka: KafkaSettings, names: list[str]) -> dict[str, dict[str, str]]:
    admin = admin_client(kafka, "test-describe-configs")
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )
    finally:
        await admin.close()
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            assert resource["error_code"] == 0, resource
            out[resource["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in resource["config_entries"]
            }
    return out


async def test_every_pipeline_topic_has_its_declared_retention_on_the_broker(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    specs = Topics(topic_prefix).pipeline_specs(["H001", "H002"], ["cohort-demo", "genome-b"])
    created = await ensure_topics(kafka, specs)
    assert sorted(created) == sorted(s.name for s in specs)
    configs = await broker_configs(kafka, [s.name for s in specs])
    # 4 feeds and curated topics, 17 shared (linkage.params since D41, access.events since
    # D45, access.policies since D46, access.risk-requests and -reports since D48), one audit
    # topic per writer (D31), 4 changelogs
    assert len(configs) == len(specs) == 4 + 17 + len(AUDIT_WRITERS) + 4
    for name, config in configs.items():
        assert {k: config[k] for k in KEYS} == expected(name), name
    ledger = configs[f"{topic_prefix}audit.ledger"]
    assert ledger["retention.ms"] == "-1" and ledger["retention.bytes"] == "-1"


async def test_topics_made_before_retention_was_declared_are_brought_up_to_it(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    """As the project created them before D21 (no retention, so the broker's 7 days), with an
    unrelated setting an operator added: ensuring the topics raises their retention, keeps the
    other setting (incremental alter), and leaves a longer retention alone unless asked."""
    topics = Topics(topic_prefix)
    specs = topics.pipeline_specs(["H001"], ["cohort-demo"])
    old = {
        topics.audit_ledger: {"max.message.bytes": "2000000"},
        topics.identity_records: {},
        topics.state("linkage"): {"cleanup.policy": "compact"},
        topics.feed("H001"): {"retention.ms": "-1"},  # an operator chose to keep the feed
        topics.dead_letters: {"retention.ms": str(3 * DAY_MS)},
    }
    admin = admin_client(kafka, "test-old-topics")
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs=configs) for name, configs in old.items()]
        )
        for _ in range(100):  # describe_configs answers UNKNOWN_TOPIC until metadata has them
            if set(old) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    before = await broker_configs(kafka, list(old))
    assert before[topics.audit_ledger]["retention.ms"] == str(7 * DAY_MS)  # the broker default

    done = await provision_topics(kafka, specs)
    assert set(done.created) == {s.name for s in specs} - set(old)
    assert done.altered == {
        topics.audit_ledger: {"retention.ms": "-1"},
        topics.identity_records: {"retention.ms": "-1"},
        topics.state("linkage"): {"retention.ms": "-1"},
        topics.dead_letters: {"retention.ms": str(365 * DAY_MS)},
    }
    assert done.kept_longer == {topics.feed("H001"): {"retention.ms": "-1"}}
    # An altered config reaches describe_configs through the metadata log, a moment later.
    raised = (topics.audit_ledger, topics.identity_records, topics.state("linkage"))
    for _ in range(100):
        after = await broker_configs(kafka, list(old))
        if all({k: after[name][k] for k in KEYS} == expected(name) for name in raised):
            break
        await asyncio.sleep(0.1)
    for name in raised:
        assert {k: after[name][k] for k in KEYS} == expected(name), name
    assert after[topics.audit_ledger]["max.message.bytes"] == "2000000"
    assert after[topics.feed("H001")]["retention.ms"] == "-1"

    again = await provision_topics(kafka, specs)
    assert again.created == [] and again.altered == {}
    cut = await provision_topics(kafka, specs, shorten=True)
    assert cut.altered == {topics.feed("H001"): {"retention.ms": str(365 * DAY_MS)}}
    assert (await broker_configs(kafka, [topics.feed("H001")]))[topics.feed("H001")][
        "retention.ms"
    ] == str(365 * DAY_MS)


async def test_reconcile_says_from_where_it_covers_a_feed_past_its_retention(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    """Deleting a feed's oldest records (what retention does) must not go unsaid: reconcile
    counts what remains and names, per partition, the first offset it could see."""
    import json
    import os
    import subprocess
    import sys

    from aiokafka import TopicPartition
    from aiokafka.admin import RecordsToDelete
    from biostream.kafka import plain_producer
    from biostream_dev import access
    from biostream_dev.access import kafka_environment

    topics = Topics(topic_prefix)
    feed = topics.feed("H001")
    await ensure_topics(kafka, topics.pipeline_specs(["H001"], []))
    producer = plain_producer(kafka, "test-feed")
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(feed, f"message {n}".encode())
    finally:
        await producer.stop()

    # D35: reconcile runs as the auditor, which may describe the feeds but not read them.
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {"auditor": principals["auditor"]})
    await access.wait_until_usable(credentials)
    auditor = credentials.settings("auditor")

    def reconcile() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIOSTREAM_")}
        env |= kafka_environment(auditor) | {"BIOSTREAM_TOPIC_PREFIX": topic_prefix}
        return subprocess.run(
            [sys.executable, "-m", "audit", "reconcile"],
            capture_output=True, text=True, timeout=120, check=False, env=env,
        )  # fmt: skip

    whole = reconcile()
    assert json.loads(whole.stdout)["published"] == 3 and "retention" not in whole.stderr
    admin = admin_client(kafka, "test-delete-records")
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(feed, 0): RecordsToDelete(before_offset=2)})
    finally:
        await admin.close()
    cut = reconcile()
    assert json.loads(cut.stdout)["published"] == 1
    assert (
        f"note: {feed}/0: offsets below 2 are past the feed's retention; reconciled from offset 2"
        in cut.stderr
    )
