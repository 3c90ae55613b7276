"""D48: the disclosure-risk reports the pseudonymizer sends, folded into the applications.

A group-less reader of ``access.risk-reports``: from the beginning once the applications are
rebuilt (a report already kept is recognised by its request id and changes nothing), then
following. Each new report becomes its application's ``risk_report_received`` event, written
through the command desk like any command (one transaction with its audit event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from biostream.logs import get_logger
from biostream.restore import open_reader
from biostream.settings import KafkaSettings
from biostream.topics import Topics

from access.adapters.stream import Clock, CommandDesk
from access.handlers import AccessHandler


class ReportFollower:
    """D48: every report on ``access.risk-reports`` offered to its application, once the
    applications are rebuilt; the handler keeps the first report of each request."""

    def __init__(
        self, kafka: KafkaSettings, client_id: str, desk: CommandDesk, topics: Topics, clock: Clock
    ) -> None:
        self._kafka, self._client_id, self._desk = kafka, client_id, desk
        self._topic = topics.risk_reports
        self._clock = clock
        self._log = get_logger("access.risk_reports")

    async def run(self, stop: asyncio.Event, ready: Callable[[], bool]) -> None:
        while not ready():  # the applications first: a report folds into one
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
        consumer, _partitions = await open_reader(
            self._kafka, self._client_id, [self._topic], 300.0, "risk reports", log=self._log
        )
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=100)
                for records in batch.values():
                    for record in records:
                        receive = partial(
                            AccessHandler.receive_risk_report, raw=record.value, now=self._clock()
                        )
                        decided = await self._desk.run(receive)
                        if decided.events:
                            self._log.info("risk report kept", event_id=decided.events[0].event_id)
        finally:
            await consumer.stop()
