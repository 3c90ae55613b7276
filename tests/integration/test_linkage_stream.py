"""Linkage on a real broker: hospital merges, review decisions and splits flow to link decisions."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

import pytest
from biostream.codec import AvroCodec
from biostream.contracts import (
    IDENTITY_RECORD,
    LINK_DECISION,
    PATIENT_MERGE,
    REVIEW_DECISION,
    REVIEW_TASK,
)
from biostream.kafka import ensure_topics
from biostream.schemas import SchemaRegistry
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream_harness.linkage_stream import RECEIVED, publish, read_all
from linkage.bootstrap import build
from linkage.settings import LinkageSettings
from pydantic import SecretStr

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry())


def identity(ref: str, n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_id": f"H001/M{n}/0", "patient_ref": ref, "hospital": "H001",
        "message_id": f"M{n}", "source_format": "FHIR", "received_at": RECEIVED,
        "family_name": "박", "given_name": "지민", "name_latin": None,
        "birth_date": dt.date(1988, 4, 9), "sex": "F", "rrn": None, "local_patient_no": None,
        "phone": "01055551234", "address": None, "postal_code": None, "province_code": "11",
        "quality_flags": [],
    }  # fmt: skip
    record.update(fields)
    return record


async def test_merge_review_and_split_flow_to_link_decisions(
    kafka: KafkaSettings, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    settings = LinkageSettings.model_validate(
        {"kafka": kafka, "topic_prefix": topic_prefix, "poll_timeout_ms": 100,
         "person_key": SecretStr(secrets.token_hex(32)),
         "dead_letter_key": SecretStr(secrets.token_hex(32)),
         "rrn_key": SecretStr(secrets.token_hex(32))}
    )  # fmt: skip
    service = build(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.processor.run(stop))
    try:
        # pr_a and pr_b: the same name and birth date, different phones -> a review task.
        # pr_c: someone else, later merged into pr_a by the hospital (HL7 A40).
        await publish(
            kafka, CODEC, topics.identity_records, IDENTITY_RECORD,
            [identity("pr_a", 1), identity("pr_b", 2, phone="01077778888"),
             identity("pr_c", 3, given_name="도윤", sex="M", birth_date=dt.date(1950, 1, 1),
                      phone="01011112222")],
            key=lambda r: r["patient_ref"],
        )  # fmt: skip
        [review_task] = await read_all(
            kafka, CODEC, topics.review_tasks, REVIEW_TASK, lambda out: len(out) >= 1
        )
        first = await read_all(
            kafka, CODEC, topics.link_decisions, LINK_DECISION, lambda out: len(out) >= 3
        )
        by_ref = {d["patient_ref"]: d for d in first}
        assert by_ref["pr_b"]["outcome"] == "POSSIBLE_MATCH"
        assert review_task["patient_ref"] == "pr_b"
        assert review_task["candidate_person_ids"] == [by_ref["pr_a"]["person_id"]]
        # The desk's field-by-field view: codes and weights, agreeing fields add, phone subtracts.
        levels = {c["field"]: (c["level"], c["weight"]) for c in review_task["comparisons"]}
        assert levels["family"][0] == "SAME" and levels["family"][1] > 0
        assert levels["birth"][0] == "SAME" and levels["birth"][1] > 0
        assert levels["phone"][0] == "DIFFERENT" and levels["phone"][1] < 0

        async def send(topic: str, contract: str, record: dict[str, Any], key: str) -> None:
            await publish(kafka, CODEC, topic, contract, [record], key=lambda _r: key)

        async def decisions(count: int) -> list[dict[str, Any]]:
            return await read_all(
                kafka, CODEC, topics.link_decisions, LINK_DECISION, lambda o: len(o) >= count
            )

        def hospital_merge(surviving: str, retired: str) -> dict[str, Any]:
            return {
                "merge_id": f"H001/A40-{retired}/0", "hospital": "H001", "message_id": "A40",
                "received_at": RECEIVED, "surviving_patient_ref": surviving,
                "retired_patient_ref": retired,
            }  # fmt: skip

        def answer(task_id: str, verdict: str) -> dict[str, Any]:
            return {
                "task_id": task_id, "decision": verdict, "candidate_person_id": None,
                "reviewer": "steward-1", "reason": None, "decided_at": RECEIVED,
            }  # fmt: skip

        # The hospital merges pr_c into pr_a (HL7 A40): one person.
        await send(topics.patient_merges, PATIENT_MERGE, hospital_merge("pr_a", "pr_c"), "pr_c")
        await decisions(4)
        # The reviewer says pr_b is pr_a.
        await send(topics.review_decisions, REVIEW_DECISION,
                   answer(review_task["task_id"], "SAME_PERSON"), review_task["task_id"])  # fmt: skip
        await decisions(5)
        # pr_e: another possible match; the hospital merges it in, then a reviewer separates it.
        await send(topics.identity_records, IDENTITY_RECORD,
                   identity("pr_e", 5, phone="01099990000"), "pr_e")  # fmt: skip
        tasks = await read_all(
            kafka, CODEC, topics.review_tasks, REVIEW_TASK, lambda o: len(o) >= 2
        )
        second_task = tasks[1]
        assert second_task["patient_ref"] == "pr_e"
        await decisions(6)
        await send(topics.patient_merges, PATIENT_MERGE, hospital_merge("pr_a", "pr_e"), "pr_e")
        await decisions(7)
        await send(topics.review_decisions, REVIEW_DECISION,
                   answer(second_task["task_id"], "DIFFERENT_PEOPLE"), second_task["task_id"])  # fmt: skip
        everything = await decisions(8)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)

    a = by_ref["pr_a"]["person_id"]
    assert len(everything) == 8
    assert len({d["decision_id"] for d in everything}) == len(everything)
    # Decisions are keyed by patient_ref over several partitions: order holds per patient only.
    by_key = {(d["patient_ref"], d["sequence"]): d for d in everything}
    merged_c, merged_b = by_key[("pr_c", 1)], by_key[("pr_b", 1)]
    new_e, merged_e, split_e = by_key[("pr_e", 0)], by_key[("pr_e", 1)], by_key[("pr_e", 2)]
    assert (merged_c["patient_ref"], merged_c["outcome"], merged_c["person_id"]) == (
        "pr_c",
        "MERGED",
        a,
    )
    assert merged_c["previous_person_id"] == by_ref["pr_c"]["person_id"]
    assert (merged_c["sequence"], merged_c["rule"]) == (1, "hospital-merge")
    assert (merged_b["patient_ref"], merged_b["outcome"], merged_b["person_id"]) == (
        "pr_b",
        "MERGED",
        a,
    )
    assert (merged_b["rule"], merged_b["sequence"]) == ("review", 1)
    assert (new_e["patient_ref"], new_e["outcome"]) == ("pr_e", "POSSIBLE_MATCH")
    assert (merged_e["outcome"], merged_e["person_id"], merged_e["sequence"]) == ("MERGED", a, 1)
    assert (split_e["patient_ref"], split_e["outcome"]) == ("pr_e", "SPLIT")
    assert split_e["previous_person_id"] == a and split_e["person_id"] not in (
        a,
        new_e["person_id"],
    )
    assert split_e["sequence"] == 2
