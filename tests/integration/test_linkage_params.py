"""D41 on the real broker, as the matrix's principals: identity records in, `train --from-topic`
proposes a version, `shadow` reports how many decisions it would change (the same counts the
pure replay gives), a steward activates it, the running linkage service applies it without a
restart (its decisions name the version), and a restarted service goes on with it."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import zlib
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contracts import AUDIT_EVENT, IDENTITY_RECORD, LINK_DECISION
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.service import RunnableService
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_dev import access
from biostream_harness.linkage_stream import identity_records, publish, read_all
from linkage import cli
from linkage.bootstrap import build
from linkage.domain.profile import Identity, make_profile
from linkage.domain.shadow import ReplayRecord, replay, shadow_diff
from linkage.domain.weights import Params, default_params
from linkage.handlers import LinkageHandler
from linkage.settings import LinkageSettings
from pydantic import SecretStr

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry())
ROLES = ("svc-linkage", "linkage-trainer", "steward")


def linked(events: list[dict[str, Any]]) -> set[str]:
    return {
        e["inputs"][0]
        for e in events
        if e["action"] in ("linkage.linked", "linkage.confirmed") and e["inputs"]
    }


def handler_of(service: RunnableService) -> LinkageHandler:
    handler = service.processor.handler
    assert isinstance(handler, LinkageHandler)
    return handler


async def test_a_trained_version_is_shadowed_activated_applied_live_and_kept_on_restart(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {r: principals[r] for r in ROLES})
    await access.wait_until_usable(credentials)
    key = secrets.token_hex(32)

    def settings(role: str, instance: str = "0") -> LinkageSettings:
        return LinkageSettings.model_validate({
            "kafka": credentials.settings(role), "topic_prefix": topic_prefix,
            "poll_timeout_ms": 100, "instance_id": instance, "person_key": SecretStr(key),
            "dead_letter_key": SecretStr(key), "rrn_key": SecretStr(key),
        })  # fmt: skip

    records, _ = identity_records(persons=200, seed=11)
    assert len(records) > 300
    first, second, third = records[:200], records[200:260], records[260:]
    ids = [r["record_id"] for r in records]

    async def running(instance: str) -> tuple[RunnableService, asyncio.Event, asyncio.Task[None]]:
        service = build(settings("svc-linkage", instance))
        stop = asyncio.Event()
        task = asyncio.create_task(service.processor.run(stop))
        for _ in range(600):
            if service.processor.ready:
                break
            await asyncio.sleep(0.1)
        return service, stop, task

    service, stop, task = await running("a")
    try:
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, first,
                      key=lambda r: r["patient_ref"])  # fmt: skip
        await read_all(kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
                       lambda out: linked(out) >= set(ids[:200]))  # fmt: skip

        # Trained on the 200 retained records; a match threshold no weight reaches, so every
        # Fellegi-Sunter match would become a review: a version that changes decisions.
        trainer = settings("linkage-trainer")
        proposed = await cli.propose_from_topic(trainer, match_threshold=1000.0)
        assert proposed["version"] == 1 and proposed["records"] == 200, proposed
        with pytest.raises(cli.Refused, match="no shadow report"):
            await cli.activate_version(settings("steward"), 1)

        report = await cli.shadow_version(trainer, 1)
        versions = await cli.list_versions(settings("steward"))
        assert [(v["version"], v["state"]) for v in versions] == [(1, "SHADOWED")]
        assert versions[0]["proposed_by"] == f"User:{topic_prefix}linkage-trainer"

        # The same counts as the pure replay of the same records in the same order.
        stored = (await _version_records(settings("steward")))[1]
        candidate = Params.from_json(zlib.decompress(stored["params_json_zlib"]).decode())
        assert candidate.thresholds.match == 1000.0
        replayed = [_replay_record(r, key) for r in first]
        expected = shadow_diff(replay(replayed, default_params()), replay(replayed, candidate))
        assert report["outcomes_changed"] == expected.outcomes_changed > 0
        assert report["transitions"] == expected.transitions
        assert "MATCH>POSSIBLE_MATCH" in expected.transitions
        assert (report["persons_before"], report["persons_after"]) == (
            expected.persons_before, expected.persons_after,
        )  # fmt: skip
        assert report["pairs_unlinked"] == expected.pairs_unlinked > 0
        assert report["baseline_version"] is None

        activated = await cli.activate_version(settings("steward"), 1)
        assert activated["activated_by"] == f"User:{topic_prefix}steward"
        steward_events = await read_all(
            kafka, CODEC, topics.audit_events_of("steward"), AUDIT_EVENT, lambda out: bool(out)
        )
        assert steward_events[0]["action"] == "linkage.params-activated"

        # Applied by the running service, no restart: it audits the switch.
        await read_all(
            kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
            lambda out: any(e["action"] == "linkage.params-applied" for e in out),
        )  # fmt: skip
        assert handler_of(service).params_version == 1
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, second,
                      key=lambda r: r["patient_ref"])  # fmt: skip
        await read_all(kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
                       lambda out: linked(out) >= set(ids[:260]))  # fmt: skip
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)

    # A new process on the same group: the version comes back from linkage's own state.
    service, stop, task = await running("b")
    try:
        await publish(kafka, CODEC, topics.identity_records, IDENTITY_RECORD, third,
                      key=lambda r: r["patient_ref"])  # fmt: skip
        await read_all(kafka, CODEC, topics.audit_events_of("svc-linkage"), AUDIT_EVENT,
                       lambda out: linked(out) >= set(ids), timeout_s=180)  # fmt: skip
        assert handler_of(service).params_version == 1
        assert handler_of(service).params.thresholds.match == 1000.0
        # The job's one-command form (the CronJob's): trained and shadowed against version 1.
        again = await cli.propose_from_topic(settings("linkage-trainer"), shadow=True)
        assert again["version"] == 2 and again["records"] == len(records)
        assert isinstance(again["shadow"], dict) and again["shadow"]["baseline_version"] == 1
        listed = await cli.list_versions(settings("steward"))
        assert [(v["version"], v["state"]) for v in listed] == [(1, "ACTIVE"), (2, "SHADOWED")]
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)

    # A record sent again for its patient confirms, with no decision of its own.
    decided = {i for i in ids if not i.endswith("/again")}
    decisions = await read_all(
        kafka, CODEC, topics.link_decisions, LINK_DECISION,
        lambda out: {d["record_id"] for d in out} >= decided,
    )  # fmt: skip
    by_record: dict[str, set[int | None]] = {}
    for decision in decisions:
        by_record.setdefault(decision["record_id"], set()).add(decision["params_version"])
    assert {v for r in ids[:200] for v in by_record.get(r, set())} == {None}
    later = {v for r in ids[200:] for v in by_record.get(r, set())}
    assert later == {1}
    fs_matches = [
        d for d in decisions
        if d["params_version"] == 1 and d["outcome"] == "MATCH" and d["rule"] == "fellegi-sunter"
    ]  # fmt: skip
    assert fs_matches == []  # no weight reaches the version's match threshold


async def _version_records(steward: LinkageSettings) -> dict[int, dict[str, Any]]:
    from linkage.adapters.params_topic import read_versions

    records = await read_versions(
        steward.kafka, CODEC, Topics(steward.topic_prefix), "test-versions", 60.0
    )
    return {int(r["version"]): dict(r) for r in records}


def _replay_record(record: dict[str, Any], key: str) -> ReplayRecord:
    birth = record["birth_date"]
    identity = Identity(
        record_id=record["record_id"], family_name=record["family_name"],
        given_name=record["given_name"], name_latin=record["name_latin"],
        birth_date=birth.isoformat() if isinstance(birth, dt.date) else None, sex=record["sex"],
        rrn=record["rrn"], phone=record["phone"], postal_code=record["postal_code"],
        address=record["address"],
    )  # fmt: skip
    profile = make_profile(identity, [("k1", key.encode())])
    return ReplayRecord(record["patient_ref"], profile, [record["record_id"]])
