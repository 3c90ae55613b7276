"""``python -m biostream_dev.synth --out DIR --persons N``: write a synthetic feed, print a summary."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from biostream_dev.synth.feed import MAX_HOSPITALS, generate_feed
from biostream_dev.synth.manifest import FeedManifest


def summary_line(manifest: FeedManifest, out_dir: Path, elapsed: float) -> str:
    fhir = sum(c.fhir for c in manifest.messages.values())
    csv = sum(c.csv for c in manifest.messages.values())
    return (
        f"synth: seed {manifest.seed}, {manifest.persons} persons at {len(manifest.hospitals)} "
        f"hospitals -> {manifest.messages_total} messages ({fhir} fhir, {csv} csv, "
        f"{manifest.malformed.total} malformed), {manifest.clinical_events_total} clinical events, "
        f"{manifest.population.twin_pairs} twin pairs, in {out_dir} ({elapsed:.1f}s)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m biostream_dev.synth",
        description="Write a seeded synthetic multi-hospital feed with ground truth.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--persons", type=int, required=True, help="number of true persons")
    parser.add_argument("--hospitals", type=int, default=3, help=f"1..{MAX_HOSPITALS} (default 3)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--malformed-rate",
        type=float,
        default=0.01,
        help="share of messages deliberately broken (default 0.01)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        manifest = generate_feed(
            args.out,
            persons=args.persons,
            hospitals=args.hospitals,
            seed=args.seed,
            malformed_rate=args.malformed_rate,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(summary_line(manifest, args.out, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
