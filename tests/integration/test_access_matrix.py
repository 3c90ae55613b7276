"""The ACL matrix on the real broker: every allowed action succeeds, every other is refused."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from biostream.kafka import client_options, ensure_topics
from biostream.settings import KafkaSettings
from biostream.topics import FOREVER, TopicSpec
from biostream_dev import access
from pydantic import SecretStr

pytestmark = pytest.mark.integration

HOSPITALS = ["H001", "H002"]
DATASETS = ["cohort-a", "cohort-b"]


def topic_names(principals: dict[str, access.Principal], prefix: str) -> list[str]:
    """Every topic the matrix names, plus a concrete topic under each prefix pattern."""
    names = set()
    for principal in principals.values():
        for grant in principal.grants:
            if grant.resource == "topic":
                names.add(grant.name + ("x" if grant.prefixed and grant.name.endswith(".") else ""))
    names.add(prefix + "feed.H999")  # a hospital nobody is allowed to impersonate
    return sorted(names)


async def writable_topics(settings: KafkaSettings, topics: list[str]) -> set[str]:
    producer = AIOKafkaProducer(**client_options(settings), request_timeout_ms=5000)
    await producer.start()
    writable = set()
    try:
        for topic in topics:
            try:
                await producer.send_and_wait(topic, b"probe")
            except TopicAuthorizationFailedError:
                continue
            writable.add(topic)
    finally:
        await producer.stop()
    return writable


async def readable_topics(settings: KafkaSettings, topics: list[str]) -> set[str]:
    """A topic counts as readable only if the marker the admin wrote into it comes back.

    Without Describe a topic is invisible (aiokafka would wait forever for its metadata), so it
    is denied without asking; with Describe but no Read, the fetch is refused."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), request_timeout_ms=5000, enable_auto_commit=False
    )
    await consumer.start()
    readable = set()
    try:
        visible = await consumer.topics()
        for topic in topics:
            if topic not in visible:
                continue
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            try:
                batch = await consumer.getmany(tp, timeout_ms=5000)
            except TopicAuthorizationFailedError:
                continue
            if any(record.value == MARKER for record in batch.get(tp, [])):
                readable.add(topic)
    finally:
        await consumer.stop()
    return readable


MARKER = b"admin-marker"


async def test_every_action_of_the_matrix_is_enforced(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    principals = access.render(
        access.load_matrix(), prefix=topic_prefix, hospitals=HOSPITALS, datasets=DATASETS
    )
    topics = topic_names(principals, topic_prefix)
    await ensure_topics(kafka, [TopicSpec(name, 1, FOREVER) for name in topics])
    credentials = await asyncio.to_thread(access.apply, kafka, principals)
    await access.wait_until_usable(credentials)

    # The admin (super user) puts one marker in every topic, so a successful read is observable.
    producer = AIOKafkaProducer(**client_options(kafka))
    await producer.start()
    for topic in topics:
        await producer.send_and_wait(topic, MARKER)
    await producer.stop()

    mismatches = []
    for role, principal in principals.items():
        settings = credentials.settings(role)
        written = await writable_topics(settings, topics)
        read = await readable_topics(settings, topics)
        for topic in topics:
            for operation, actual in (("Write", topic in written), ("Read", topic in read)):
                expected = principal.allows("topic", topic, operation)
                if actual != expected:
                    mismatches.append(
                        (role, topic.removeprefix(topic_prefix), operation, expected, actual)
                    )
    assert mismatches == []
    # Both outcomes occur for every principal: the probes can tell allowed from refused.
    for role, principal in principals.items():
        assert any(
            principal.allows("topic", t, "Write") or principal.allows("topic", t, "Read")
            for t in topics
        ), role
        assert not all(principal.allows("topic", t, "Read") for t in topics), role

    # The data-minimisation promises, spelled out.
    def allowed(role: str, topic: str, operation: str) -> bool:
        return principals[role].allows("topic", topic_prefix + topic, operation)

    assert not allowed("svc-linkage", "clinical.records", "Read")
    assert not allowed("svc-pseudonymizer", "identity.records", "Read")
    assert not allowed("hospital-h001", "feed.H002", "Write")
    assert not allowed("project-cohort-a", "curated.cohort-b", "Read")
    assert [r for r in principals if allowed(r, "audit.ledger", "Write")] == ["svc-audit"]


async def test_groups_and_transactional_ids_are_enforced(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    principals = access.render(
        access.load_matrix(), prefix=topic_prefix, hospitals=HOSPITALS, datasets=DATASETS
    )
    await ensure_topics(kafka, [TopicSpec(topic_prefix + "identity.records", 1, FOREVER)])
    roles = {r: principals[r] for r in ("svc-linkage", "svc-ingest")}
    credentials = await asyncio.to_thread(access.apply, kafka, roles)
    await access.wait_until_usable(credentials)
    linkage = credentials.settings("svc-linkage")

    async def join(group: str) -> bool:
        consumer = AIOKafkaConsumer(
            topic_prefix + "identity.records", **client_options(linkage), group_id=group,
            request_timeout_ms=5000, enable_auto_commit=False,
        )  # fmt: skip
        try:
            await consumer.start()
            await consumer.getmany(timeout_ms=2000)
            return True
        except GroupAuthorizationFailedError:
            return False
        finally:
            await consumer.stop()

    async def transact(transactional_id: str) -> bool:
        producer = AIOKafkaProducer(
            **client_options(linkage), transactional_id=transactional_id, request_timeout_ms=5000
        )
        try:
            await producer.start()
            return True
        except TransactionalIdAuthorizationFailed:
            return False
        finally:
            await producer.stop()

    assert await join(topic_prefix + "linkage")
    assert not await join(topic_prefix + "ingest")
    assert await transact(topic_prefix + "linkage-0")
    assert not await transact(topic_prefix + "ingest-0")


@pytest.mark.parametrize("password", ["wrong-password", ""])
async def test_a_wrong_password_fails_authentication(
    kafka: KafkaSettings, topic_prefix: str, password: str
) -> None:
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(
        access.apply, kafka, {"svc-audit": principals["svc-audit"]}
    )
    await access.wait_until_usable(credentials)
    impostor = credentials.settings("svc-audit").model_copy(
        update={"sasl_password": SecretStr(password or "x")}
    )
    producer = AIOKafkaProducer(**client_options(impostor), request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


async def test_no_anonymous_access(kafka: KafkaSettings) -> None:
    # Neither SASL nor TLS: the broker's client listener accepts only SCRAM inside TLS (D30).
    anonymous = KafkaSettings(
        bootstrap_servers=kafka.bootstrap_servers, security_protocol="PLAINTEXT",
        allow_plaintext=True,
    )  # fmt: skip
    producer = AIOKafkaProducer(**client_options(anonymous), request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


def test_matrix_principals_are_distinct_per_hospital_and_dataset() -> None:
    principals = access.render(access.load_matrix(), hospitals=HOSPITALS, datasets=DATASETS)
    assert {"hospital-h001", "hospital-h002", "project-cohort-a", "project-cohort-b"} <= set(
        principals
    )
    for a, b in itertools.combinations(["hospital-h001", "hospital-h002"], 2):
        assert principals[a].grants != principals[b].grants
