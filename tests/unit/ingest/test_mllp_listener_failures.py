"""D37: what the listener answers when the broker does not take a message: AE (resend), never
AA, and the resend is stored once the broker is back. The producer is a stand-in here (unit
level); the real broker, its restart and real MLLP clients are in
tests/integration/test_mllp_listener.py."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaTimeoutError
from ingest.adapters.mllp_listener import MllpListener
from ingest.domain.mllp import frame
from ingest.settings import MllpSettings
from prometheus_client import CollectorRegistry

MESSAGE = b"MSH|^~\\&|EPIC|SNUH|BS|KBBP|20261204||ADT^A04|X-1|P|2.5.1\rPID|1||7^^^SNUH^MR\r"


class FlakyProducer:
    """Refuses the first ``failures`` sends as the broker would when it is away."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.stored: list[bytes] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_and_wait(self, topic: str, value: bytes, **_: object) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError()
        self.stored.append(value)


async def test_a_message_the_broker_did_not_take_is_answered_ae_and_its_resend_stored() -> None:
    producer = FlakyProducer(failures=1)
    settings = MllpSettings.model_validate(
        {"mllp_hospital": "H001", "mllp_port": 0, "mllp_allow_plaintext": True}
    )
    listener = MllpListener(settings, CollectorRegistry(), producer_factory=lambda: producer)  # type: ignore[arg-type, return-value]
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    while not listener.ready:  # noqa: ASYNC110 - the listener has no ready event
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    codes = []
    for _ in range(2):
        writer.write(frame(MESSAGE))
        await writer.drain()
        ack = await reader.readuntil(b"\x1c\r")
        codes.append(ack.split(b"MSA|")[1][:2])
    writer.close()
    stop.set()
    await task
    assert codes == [b"AE", b"AA"]
    assert producer.stored == [MESSAGE]
