"""CPU cost of ingest's message handler per format, without Kafka: the service is built as in
production (``ingest.bootstrap.build``) and its handler is driven (``biostream.testing.drive``) over the
benchmark's messages (``biostream_harness.bench.ingest.feed_bytes``). Prints messages per CPU-second.

    python tools/ingest_handler_cpu.py [--records 4000] [--formats hl7,fhir,csv] [--rounds 5]
                                       [--profile hl7] [--notes]

``--notes``: every HL7 ORU^R01 also carries a free-text note naming its patient (D24c's load).

The best of several rounds is reported (other processes on a shared machine only ever slow a
round down). Each round uses a fresh state store, so no message is a duplicate.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import secrets
import tempfile
import time
from pathlib import Path

from biostream.contract import Inbound
from biostream.state import StateStore
from biostream.testing import drive
from biostream.topics import Topics
from biostream_harness.bench.ingest import HOSPITAL, feed_bytes
from ingest.bootstrap import build
from ingest.domain.messages import FORMAT_CONTENT_TYPE, FeedFormat
from ingest.settings import IngestSettings
from pydantic import SecretStr

NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


def inbound(fmt: FeedFormat, records: int, workdir: Path, notes: bool = False) -> list[Inbound]:
    topic = Topics("bench.").feed(HOSPITAL)
    headers = (("content-type", FORMAT_CONTENT_TYPE[fmt].encode()),)
    return [
        Inbound(topic, 0, offset, key, value, headers, 0)
        for offset, (key, value) in enumerate(feed_bytes(fmt, records, workdir, notes))
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--formats", default="hl7,fhir,csv")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="")
    parser.add_argument("--notes", action="store_true")
    args = parser.parse_args()
    settings = IngestSettings.model_validate(
        {
            "topic_prefix": "bench.",
            "patient_ref_key": SecretStr(secrets.token_hex(32)),
            "dead_letter_key": SecretStr(secrets.token_hex(32)),
            "rrn_key": SecretStr(secrets.token_hex(32)),
        }
    )
    service = build(settings)
    processor = service.processor
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            messages = inbound(fmt, args.records, Path(tmp), args.notes)  # type: ignore[arg-type]
            best = float("inf")
            outputs = 0
            for _ in range(args.rounds):
                started = time.process_time()
                outputs = len(
                    drive(
                        processor.handler, messages, NOW, StateStore(), processor.on_failure
                    ).outputs
                )
                best = min(best, time.process_time() - started)
            rate = len(messages) / best
            print(
                f"{fmt:5s} {len(messages)} messages  {outputs} outputs  "
                f"{best * 1e3 / len(messages):.3f} ms CPU/message  {rate:,.0f} messages/CPU-s"
            )
            if fmt == args.profile:
                profile = cProfile.Profile()
                profile.enable()
                drive(processor.handler, messages, NOW, StateStore(), processor.on_failure)
                profile.disable()
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
