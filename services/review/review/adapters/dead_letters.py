"""The dead-letter topic as the steward's command line reads it: every letter to the end offsets
at the start (D26), then the one asked for. Nothing here opens a seal."""

from __future__ import annotations

from typing import Any

from biostream.codec import AvroCodec
from biostream.contracts import DEAD_LETTER
from biostream.restore import read_from_start
from biostream.settings import KafkaSettings


async def find_dead_letter(
    kafka: KafkaSettings, codec: AvroCodec, topic: str, dead_letter_id: str, limit_s: float
) -> dict[str, Any] | None:
    """The newest dead letter with this id, or None; ``ReadStalled`` when the topic could not be
    read to its end (a partial read could answer "no such letter" wrongly)."""
    found: dict[str, Any] | None = None
    async for batch in read_from_start(kafka, "review-dead-letters", [topic], limit_s):
        for records in batch.values():
            for record in records:
                if record.value is None:
                    continue
                letter = codec.decode(record.value, DEAD_LETTER)
                if letter["dead_letter_id"] == dead_letter_id:
                    found = dict(letter)
    return found
