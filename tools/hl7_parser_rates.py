"""HL7 v2 parse + field access rates on one core: ingest's ER7 reader, python-hl7 and (when
installed) hl7apy, on the benchmark's ADT^A01 messages (MSH, EVN, PID, PV1, DG1). Prints
messages per CPU-second, best of several rounds. docs/benchmarks/ingest.md records a run.

    python tools/hl7_parser_rates.py [--messages 2000] [--rounds 5]

Field access: the positions ingest's mapping reads from these segments (MSH-7/9/10, PID-2/3/5/7/
8/11/13/14/19, PV1-2/44, DG1-2/3/5), read through each library's own accessor.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Callable

import hl7
from biostream_harness.bench.ingest import synthetic_hl7
from ingest.domain.files import split_feed
from ingest.domain.hl7v2_reader import Er7Message

# (segment, field, component, repetition)
POSITIONS = (
    ("MSH", 7, 1, 1), ("MSH", 9, 1, 1), ("MSH", 9, 2, 1), ("MSH", 10, 1, 1),
    ("PID", 3, 1, 1), ("PID", 3, 5, 1), ("PID", 5, 1, 1), ("PID", 5, 2, 1), ("PID", 7, 1, 1),
    ("PID", 8, 1, 1), ("PID", 11, 1, 1), ("PID", 11, 2, 1), ("PID", 11, 3, 1),
    ("PID", 11, 4, 1), ("PID", 11, 5, 1), ("PID", 11, 9, 1), ("PID", 13, 1, 1),
    ("PID", 19, 1, 1), ("PID", 2, 1, 1), ("PV1", 2, 1, 1), ("PV1", 44, 1, 1),
    ("DG1", 3, 1, 1), ("DG1", 3, 3, 1), ("DG1", 3, 7, 1), ("DG1", 2, 1, 1), ("DG1", 5, 1, 1),
)  # fmt: skip


def reader(text: str) -> int:
    message = Er7Message(text)
    segments = {s.name: s for s in reversed(message.segments)}
    return sum(len(segments[name].get(f, c, r)) for name, f, c, r in POSITIONS)


def python_hl7(text: str) -> int:
    message = hl7.parse(text)
    segments = {str(s[0][0]): s for s in reversed(message)}
    total = 0
    for name, f, c, r in POSITIONS:
        with contextlib.suppress(Exception):  # absent positions raise in python-hl7
            total += len(segments[name].extract_field(None, f, r, c, 1).strip())
    return total


def hl7apy_reader() -> Callable[[str], int] | None:
    try:
        from hl7apy.parser import parse_message  # type: ignore[import-not-found]
    except ImportError:
        return None

    def read(text: str) -> int:
        message = parse_message(text, find_groups=False)
        total = 0
        for name, f, c, r in POSITIONS:
            with contextlib.suppress(Exception):  # absent positions raise in hl7apy
                reps = getattr(getattr(message, name.lower()), f"{name}_{f}".lower())
                field = reps[r - 1] if len(reps) >= r else None
                value = field.children[c - 1].value if field and len(field.children) >= c else ""
                total += len(str(value).strip())
        return total

    return read


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("hl7").setLevel(logging.CRITICAL + 1)
    texts = [
        m.value.decode()
        for m in split_feed("hl7", synthetic_hl7(args.messages * 2))
        if b"ADT^A01" in m.value
    ][: args.messages]
    candidates: list[tuple[str, Callable[[str], int] | None, int]] = [
        ("ingest ER7 reader (hl7v2_reader)", reader, len(texts)),
        ("python-hl7 hl7.parse + extract_field", python_hl7, len(texts)),
        ("hl7apy parse_message(find_groups=False)", hl7apy_reader(), min(len(texts), 200)),
    ]
    for name, read, count in candidates:
        if read is None:
            print(f"{name}: not installed")
            continue
        best = float("inf")
        for _ in range(args.rounds):
            started = time.process_time()
            for text in texts[:count]:
                read(text)
            best = min(best, time.process_time() - started)
        print(f"{name}: {count / best:,.0f} messages/CPU-s ({best / count * 1e6:.1f} us each)")


if __name__ == "__main__":
    main()
