"""D49: the newest version of one dataset on ``access.policies`` (compacted, keyed by dataset),
read to the topic's end offsets at the start, for ``pseudonymizer reidentify``."""

from __future__ import annotations

from typing import cast

from biostream.codec import DecodeError, default_codec
from biostream.contracts import RELEASE_POLICY_VERSION, ReleasePolicyVersion
from biostream.restore import read_from_start
from biostream.settings import KafkaSettings


async def newest_version(
    kafka: KafkaSettings, topic: str, dataset: str, limit_s: float
) -> ReleasePolicyVersion | None:
    """D49: the last record keyed ``dataset`` (what compaction keeps), or None; ``ReadStalled``
    when the topic cannot be read to its end (D26: an older version could be a wrong answer).
    An undecodable record is skipped: it could never have been applied either."""
    codec = default_codec()
    newest: ReleasePolicyVersion | None = None
    async for batch in read_from_start(
        kafka, "pseudonymizer-reidentify-policies", [topic], limit_s
    ):
        for records in batch.values():
            for record in records:
                if record.key != dataset.encode() or record.value is None:
                    continue
                try:
                    newest = cast(
                        ReleasePolicyVersion, codec.decode(record.value, RELEASE_POLICY_VERSION)
                    )
                except DecodeError:
                    continue
    return newest
