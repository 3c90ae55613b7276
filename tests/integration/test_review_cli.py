"""`review tasks` and `review decide` as separate processes on the real broker, under the
`steward` principal of the ACL matrix (D35): listing shows no identifying data, a decision names
the steward account the credentials authenticate (no flag can name another), reaches linkage and
closes the task for the running desk too, and a closed task cannot be decided again; the desk's
own principal cannot decide from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from biostream.contracts import AUDIT_EVENT, LINK_DECISION, REVIEW_DECISION
from biostream.settings import KafkaSettings
from biostream_dev import access
from biostream_dev.access import kafka_environment
from biostream_harness.linkage_stream import read_all
from biostream_harness.review_desk import CODEC, IDENTIFYING, RunningDesk, running_desk

pytestmark = pytest.mark.integration


async def review_cli(
    desk: RunningDesk, *args: str, kafka: KafkaSettings | None = None
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        **kafka_environment(kafka or desk.review_kafka),
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
    principals = access.render(access.load_matrix(), prefix=topic_prefix)
    credentials = await asyncio.to_thread(access.apply, kafka, {"steward": principals["steward"]})
    await access.wait_until_usable(credentials)
    steward = credentials.settings("steward")
    async with running_desk(kafka, topic_prefix) as desk:
        await desk.publish_grey_pair()
        task_id = await desk.wait_for_task()

        code, out, _ = await review_cli(desk, "tasks", kafka=steward)
        assert code == 0
        [line] = [json.loads(x) for x in out.splitlines() if x.strip()]
        assert (line["task_id"], line["hospital"], line["escalated"]) == (task_id, "H002", False)
        assert [v for v in IDENTIFYING if v in out] == []
        code, out, _ = await review_cli(desk, "tasks", "--hospital", "H001", kafka=steward)
        assert (code, out.strip()) == (0, "")

        # The desk's own principal decides only for a signed-in steward, on the web pages.
        code, _, err = await review_cli(
            desk, "decide", task_id, "--decision", "SAME_PERSON", "--reason", "x"
        )
        assert code == 2 and f"User:{topic_prefix}svc-review" in err
        code, out, err = await review_cli(
            desk, "decide", task_id, "--decision", "DIFFERENT_PEOPLE",
            "--reason", "different mothers' names on file", kafka=steward,
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["reviewer"] == f"{topic_prefix}steward"
        [recorded] = await read_all(
            kafka, CODEC, desk.topics.review_decisions, REVIEW_DECISION, lambda out: len(out) == 1
        )
        assert recorded["reviewer"] == f"{topic_prefix}steward"
        [audited] = await read_all(
            kafka, CODEC, desk.topics.audit_events_of("steward"), AUDIT_EVENT,
            lambda out: len(out) == 1,
        )  # fmt: skip
        assert audited["action"] == "review.decided"
        assert audited["principal"] == f"User:{topic_prefix}steward"
        assert f"steward:{topic_prefix}steward" in audited["outputs"]
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
            kafka=steward,
        )  # fmt: skip
        assert code == 2 and "closed or unknown" in err
        code, out, _ = await review_cli(desk, "tasks", kafka=steward)
        assert (code, out.strip()) == (0, "")
