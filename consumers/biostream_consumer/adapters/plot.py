"""Size and freshness of a dataset over time, from the local copy, as a PNG.

Top: records per day by event date and by release date, with the cumulative size held.
Bottom: lag behind the feeds per release day: released_at minus event_date (median and 90th
percentile, in days). Curated records carry no hospital receive time, so the event date is the
reference; in a dataset with per-person date shifting it is off by up to the shift (±max_days).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")  # files only: no display at a project's site or in CI
import matplotlib.pyplot as plt


@dataclass(frozen=True)
class FreshnessSummary:
    records: int
    event_days: int
    release_days: int
    median_lag_days: float | None


def plot_freshness(copy_path: Path | str, out: Path, title: str = "") -> FreshnessSummary:
    con = duckdb.connect(str(copy_path), read_only=True)
    try:
        by_event = con.execute(
            """SELECT event_date, count(*) FROM curated_records
               WHERE event_date IS NOT NULL GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        by_release = con.execute(
            """SELECT released_at::DATE, count(*),
                      median(date_diff('day', event_date, released_at::DATE)),
                      quantile_cont(date_diff('day', event_date, released_at::DATE), 0.9)
               FROM curated_records GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        total_row = con.execute("SELECT count(*) FROM curated_records").fetchone()
        lag_row = con.execute(
            """SELECT median(date_diff('day', event_date, released_at::DATE))
               FROM curated_records WHERE event_date IS NOT NULL"""
        ).fetchone()
    finally:
        con.close()
    total = int(total_row[0]) if total_row else 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), constrained_layout=True)
    if by_event:
        top.bar([d for d, _ in by_event], [n for _, n in by_event], width=1.0,
                color="#4c72b0", alpha=0.6, label="records per event date")  # fmt: skip
    if by_release:
        top.bar([d for d, *_ in by_release], [n for _, n, *_ in by_release], width=1.0,
                color="#dd8452", alpha=0.8, label="records per release date")  # fmt: skip
        cumulative = top.twinx()
        running = 0
        sizes = []
        for _, n, *_ in by_release:
            running += n
            sizes.append(running)
        cumulative.step([d for d, *_ in by_release], sizes, where="post", color="#55a868",
                        label="records held (cumulative by release)")  # fmt: skip
        cumulative.set_ylabel("records held")
        cumulative.legend(loc="upper right")
    top.set_ylabel("records per day")
    top.set_title(f"{title or 'dataset'}: size ({total} records held)")
    top.legend(loc="upper left")
    lags = [(d, m, p) for d, _, m, p in by_release if m is not None]
    if lags:
        bottom.plot([d for d, *_ in lags], [m for _, m, _ in lags], marker="o",
                    label="median lag (days)")  # fmt: skip
        bottom.plot([d for d, *_ in lags], [p for *_, p in lags], marker="^", linestyle="--",
                    label="90th percentile lag (days)")  # fmt: skip
        bottom.legend(loc="upper left")
    bottom.set_xlabel("release date (released_at, UTC)")
    bottom.set_ylabel("released_at - event_date (days)")
    bottom.set_title("freshness: lag behind the feeds, per release day")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    median = float(lag_row[0]) if lag_row and lag_row[0] is not None else None
    return FreshnessSummary(total, len(by_event), len(by_release), median)
