"""Accuracy of a clustering against the truth: pairwise precision/recall/F1 and cluster metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Scores:
    records: int
    true_persons: int
    predicted_persons: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    exact_clusters: float  # share of true persons reproduced exactly (same set of records)
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score(predicted: Mapping[str, str], truth: Mapping[str, str]) -> Scores:
    """Compare over the records present in both mappings (record id -> cluster id)."""
    ids = [r for r in predicted if r in truth]
    pred_sizes = Counter(predicted[r] for r in ids)
    true_sizes = Counter(truth[r] for r in ids)
    cells = Counter((predicted[r], truth[r]) for r in ids)
    correct = sum(_pairs(n) for n in cells.values())
    predicted_pairs = sum(_pairs(n) for n in pred_sizes.values())
    true_pairs = sum(_pairs(n) for n in true_sizes.values())
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    exact = sum(1 for (p, t), n in cells.items() if n == pred_sizes[p] == true_sizes[t])
    bp = sum(cells[(predicted[r], truth[r])] / pred_sizes[predicted[r]] for r in ids)
    br = sum(cells[(predicted[r], truth[r])] / true_sizes[truth[r]] for r in ids)
    n = max(len(ids), 1)
    return Scores(
        records=len(ids),
        true_persons=len(true_sizes),
        predicted_persons=len(pred_sizes),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(_f1(precision, recall), 4),
        exact_clusters=round(exact / max(len(true_sizes), 1), 4),
        bcubed_precision=round(bp / n, 4),
        bcubed_recall=round(br / n, 4),
        bcubed_f1=round(_f1(bp / n, br / n), 4),
    )
