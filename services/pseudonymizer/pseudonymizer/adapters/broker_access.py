"""D46: the project principals' read access at the broker follows the datasets that run.

After every committed transaction (and once after the state is restored) the handler says, per
dataset approved on the policy topic, which principal it names and whether the dataset runs;
this adapter creates or deletes that principal's ACLs (``biostream.project_access``) through the
Kafka admin API, in a thread (kafka-python blocks), retrying every second until the broker has
them. Only committed decisions reach it, so an aborted activation never grants anything. The ACL
operations are idempotent: after a restart every dataset is brought to its state again.
"""

from __future__ import annotations

import asyncio

from biostream.logs import get_logger
from biostream.project_access import apply_bindings, project_bindings
from biostream.settings import KafkaSettings
from biostream.topics import Topics

# dataset -> (the project's principal, whether it may read now)
Grants = dict[str, tuple[str, bool]]


class BrokerAccess:
    def __init__(self, admin: KafkaSettings, topics: Topics) -> None:
        self.admin = admin
        self.topics = topics
        self.applied: Grants = {}
        self._wanted: Grants = {}
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("pseudonymizer.broker_access")

    def want(self, wanted: Grants) -> None:
        """The grants as the committed state has them; applied in the background."""
        self._wanted = dict(wanted)
        if any(self.applied.get(d) != w for d, w in self._wanted.items()) and (
            self._task is None or self._task.done()
        ):
            self._task = asyncio.get_running_loop().create_task(self._apply())

    @property
    def settled(self) -> bool:
        return all(self.applied.get(d) == w for d, w in self._wanted.items())

    async def _apply(self) -> None:
        while not self.settled:
            for dataset, (principal, allowed) in list(self._wanted.items()):
                before = self.applied.get(dataset)
                if before == (principal, allowed):
                    continue
                try:
                    if before is not None and before[0] != principal and before[1]:
                        await self._set(before[0], dataset, allowed=False)
                    await self._set(principal, dataset, allowed=allowed)
                except Exception as error:  # the broker or the admin API: try again shortly
                    self._log.warning(
                        "project access not changed yet, retrying",
                        dataset=dataset,
                        error_type=type(error).__name__,
                    )
                    await asyncio.sleep(1.0)
                    continue
                self.applied[dataset] = (principal, allowed)

    async def _set(self, principal: str, dataset: str, *, allowed: bool) -> None:
        bindings = project_bindings(principal, dataset, self.topics)
        await asyncio.to_thread(apply_bindings, self.admin, bindings, grant=allowed)
        self._log.info(
            "project access changed", dataset=dataset, action="granted" if allowed else "removed"
        )
