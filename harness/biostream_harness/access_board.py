"""Launches the access service (D45) in-process on a broker, as its own principal ``svc-access``
with exactly its ACLs from deploy/acl-matrix.yaml, with accounts of fresh passwords: what its
integration and browser tests drive."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from access.adapters.service import AccessService
from access.bootstrap import build
from access.settings import AccessSettings
from biostream.kafka import ensure_topics
from biostream.settings import KafkaSettings
from biostream.topics import Topics
from biostream.web_auth import hash_password
from biostream_dev import access
from pydantic import SecretStr

ROLE = "svc-access"


@dataclass(frozen=True)
class AccessBoard:
    """A configured access service (run it with ``running``, as often as a test restarts it)."""

    settings: AccessSettings
    topics: Topics
    passwords: dict[str, str]
    users: str  # the accounts file's text

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka


async def access_board(
    kafka: KafkaSettings,
    topic_prefix: str,
    board_yaml: str,
    accounts: Iterable[str],
    run_dir: Path,
    signing_key_file: Path | None = None,
) -> AccessBoard:
    """The topics, the service's principal (on a SASL broker) and its settings;
    ``signing_key_file``: the board's key, so approvals are published (D49)."""
    topics = Topics(topic_prefix)
    await ensure_topics(kafka, topics.pipeline_specs([], []))
    service_kafka = kafka
    if kafka.security_protocol.startswith("SASL"):
        principals = access.render(access.load_matrix(), prefix=topic_prefix)
        credentials = await asyncio.to_thread(access.apply, kafka, {ROLE: principals[ROLE]})
        await access.wait_until_usable(credentials)
        service_kafka = credentials.settings(ROLE)
    board_file = run_dir / "board.yaml"
    board_file.write_text(board_yaml, encoding="utf-8")
    passwords = {account: secrets.token_urlsafe(12) for account in accounts}
    users = "".join(f"{a}:{hash_password(p)}\n" for a, p in passwords.items())
    settings = AccessSettings.model_validate(
        {
            "kafka": service_kafka, "topic_prefix": topic_prefix, "web_port": 0,
            "metrics_port": 0, "board_file": board_file, "users": SecretStr(users),
            "session_key": SecretStr(secrets.token_hex(32)), "secure_cookie": False,
            "board_signing_key_file": signing_key_file,
        }
    )  # fmt: skip
    return AccessBoard(settings, topics, passwords, users)


@asynccontextmanager
async def running(board: AccessBoard, timeout_s: float = 60) -> AsyncIterator[AccessService]:
    """The service, started and caught up with ``access.events``; stopped on leaving."""
    service = build(board.settings)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (started.is_set() and service.ready):
            if task.done():
                task.result()
            if loop.time() > deadline:
                raise TimeoutError("the access service did not catch up")
            await asyncio.sleep(0.05)
        yield service
    finally:
        stop.set()
        await task
