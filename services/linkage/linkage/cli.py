"""What ``linkage evaluate`` and ``linkage train`` do: files through the service's engine
(``linkage.evaluate``), the summary or the parameters written out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

# Person ids of an evaluation run are keyed hashes; a fixed default key keeps reruns comparable.
_EVALUATE_KEY = b"biostream-linkage-evaluate"


def _key() -> bytes:
    value = os.environ.get("BIOSTREAM_PERSON_KEY")
    return value.encode() if value else _EVALUATE_KEY


def evaluate(
    input_path: Path, output: Path, truth: Path | None, params: Path | None, *, trained: bool
) -> None:
    """The records linked in file order (assignments to ``output``); a JSON summary printed,
    scored against ``truth`` when given."""
    from linkage.domain.weights import Params
    from linkage.evaluate import evaluate_file

    loaded = Params.from_json(params.read_text(encoding="utf-8")) if params else None
    result = evaluate_file(input_path, output, _key(), truth, loaded, trained=trained)
    rate = len(result.order) / result.seconds if result.seconds > 0 else 0.0
    summary: dict[str, object] = {
        "records": len(result.order),
        "persons": len(set(result.assignments.values())),
        "outcomes": result.outcomes,
        "records_per_second": round(rate, 1),
    }
    if result.scores is not None:
        summary["scores"] = result.scores.as_dict()
    typer.echo(json.dumps(summary, indent=1))


def train(input_path: Path, output: Path) -> None:
    """m/u parameters estimated without labels on a sample, written to ``output`` (D-linkage-1)."""
    from linkage.adapters.jsonl import read_records
    from linkage.domain.profile import make_profile
    from linkage.evaluate import train as estimate

    profiles = [make_profile(identity, _key()) for identity, _ in read_records(input_path)]
    output.write_text(estimate(profiles).to_json(), encoding="utf-8")
    typer.echo(f"{len(profiles)} records; parameters written to {output}")
