"""`review tasks` and `review decide` as separate processes on the real broker, with the desk's
own Kafka principal: listing shows no identifying data, a decision reaches linkage and closes the
task for the running desk too, and a closed task cannot be decided again."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from biostream.contracts import LINK_DECISION
from biostream.settings import KafkaSettings
from biostream_dev.access import kafka_environment
from biostream_harness.linkage_stream import read_all
from biostream_harness.review_desk import CODEC, IDENTIFYING, RunningDesk, running_desk

pytestmark = pytest.mark.integration


async def review_cli(desk: RunningDesk, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        **kafka_environment(desk.review_kafka),
        "BIOSTREAM_TOPIC_PREFIX": desk.topics.prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "review", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_lists_and_decides(kafka: KafkaSettings, topic_prefix: str) -> None:
    async with running_desk(kafka, topic_prefix) as desk:
        await desk.publish_grey_pair()
        task_id = await desk.wait_for_task()

        code, out, _ = await review_cli(desk, "tasks")
        assert code == 0
        [line] = [json.loads(x) for x in out.splitlines() if x.strip()]
        assert (line["task_id"], line["hospital"], line["escalated"]) == (task_id, "H002", False)
        assert [v for v in IDENTIFYING if v in out] == []
        code, out, _ = await review_cli(desk, "tasks", "--hospital", "H001")
        assert (code, out.strip()) == (0, "")

        code, out, err = await review_cli(
            desk, "decide", task_id, "--decision", "DIFFERENT_PEOPLE",
            "--reason", "different mothers' names on file", "--reviewer", "steward-cli",
        )  # fmt: skip
        assert code == 0, err
        decisions = await read_all(
            kafka, CODEC, desk.topics.link_decisions, LINK_DECISION,
            lambda out: any(d["rule"] == "review" for d in out),
        )  # fmt: skip
        [reviewed] = [d for d in decisions if d["rule"] == "review"]
        first = {d["patient_ref"]: d for d in decisions if d["rule"] != "review"}
        assert reviewed["patient_ref"] == "pr_yoon_b"
        assert reviewed["person_id"] != first["pr_yoon_a"]["person_id"]

        # The running desk learns of the CLI's decision from the topic and closes the task.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while desk.review.handler.desk.open_tasks():
            assert loop.time() < deadline, "the desk did not close the task"
            await asyncio.sleep(0.1)

        code, _, err = await review_cli(
            desk, "decide", task_id, "--decision", "SAME_PERSON", "--reason", "again",
            "--reviewer", "steward-cli",
        )  # fmt: skip
        assert code == 2 and "closed or unknown" in err
        code, out, _ = await review_cli(desk, "tasks")
        assert (code, out.strip()) == (0, "")
