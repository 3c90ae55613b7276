"""``linkage evaluate`` and ``linkage train``: files through the same engine the service runs."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from linkage.adapters.jsonl import read_records, read_truth
from linkage.domain.evaluation import Scores, score
from linkage.domain.index import PersonIndex
from linkage.domain.profile import Identity, Profile, make_profile
from linkage.domain.training import estimate
from linkage.domain.weights import Params, default_params


@dataclass(frozen=True)
class EvaluationRun:
    assignments: dict[str, str]  # record id -> person id, final (after merges)
    order: list[str]
    outcomes: dict[str, int]
    seconds: float
    params: Params
    scores: Scores | None = None


def train(profiles: Sequence[Profile], base: Params | None = None, seed: int = 0) -> Params:
    return estimate(profiles, base or default_params(), seed=seed)


def link_records(
    records: Sequence[tuple[Identity, str | None]],
    key: bytes,
    params: Params | None = None,
    *,
    trained: bool = True,
) -> EvaluationRun:
    """Stream the records through one PersonIndex in the given order.

    With ``trained`` the m/u parameters are first estimated without labels on these records (as
    Splink does on the file it links); the linking itself is strictly one record at a time.
    """
    profiles = [make_profile(identity, key) for identity, _ in records]
    base = params or default_params()
    model = train(profiles, base) if trained else base
    index = PersonIndex(model, key)
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    order: list[str] = []
    for (identity, source), profile in zip(records, profiles, strict=True):
        result = index.link(identity.record_id, profile, [source or ""])
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        order.append(identity.record_id)
    seconds = time.perf_counter() - started
    return EvaluationRun(index.clusters(), order, outcomes, seconds, model)


def evaluate_file(
    input_path: Path,
    output_path: Path,
    key: bytes,
    truth_path: Path | None = None,
    params: Params | None = None,
    trained: bool = True,
) -> EvaluationRun:
    records = list(read_records(input_path))
    run = link_records(records, key, params, trained=trained)
    with output_path.open("w", encoding="utf-8") as out:
        for record_id in run.order:
            out.write(json.dumps({"record_id": record_id, "person_id": run.assignments[record_id]}))
            out.write("\n")
    if truth_path is None:
        return run
    scores = score(run.assignments, read_truth(truth_path))
    return EvaluationRun(run.assignments, run.order, run.outcomes, run.seconds, run.params, scores)
