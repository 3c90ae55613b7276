"""Size and freshness of a dataset over time, from the local copy, as a PNG.

1. Records held per event day (per month when events span more than 120 days).
2. Size over release time: records held, cumulated by ``released_at``.
3. Lag behind the feeds: distribution of ``released_at - event_date`` in days, with the median
   and the 90th percentile. Curated records carry no hospital receive time, so the event date is
   the reference; in a dataset with per-person date shifting it is off by up to the shift
   (±max_days), and historical records sent in a backfill show as large lags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")  # files only: no display at a project's site or in CI
import matplotlib.pyplot as plt

MONTHLY_AFTER_DAYS = 120


@dataclass(frozen=True)
class FreshnessSummary:
    records: int
    event_buckets: int
    bucket: str
    median_lag_days: float | None
    p90_lag_days: float | None


def plot_freshness(copy_path: Path | str, out: Path, title: str = "") -> FreshnessSummary:
    con = duckdb.connect(str(copy_path), read_only=True)
    try:
        span = con.execute(
            "SELECT date_diff('day', min(event_date), max(event_date)) FROM curated_records"
        ).fetchone()
        bucket = "month" if span and span[0] is not None and span[0] > MONTHLY_AFTER_DAYS else "day"
        by_event: list[tuple[dt.date, int]] = con.execute(
            f"""SELECT date_trunc('{bucket}', event_date)::DATE, count(*) FROM curated_records
                WHERE event_date IS NOT NULL GROUP BY 1 ORDER BY 1"""  # noqa: S608
        ).fetchall()
        released: list[tuple[dt.datetime]] = con.execute(
            "SELECT released_at FROM curated_records ORDER BY released_at"
        ).fetchall()
        lags: list[tuple[int]] = con.execute(
            """SELECT date_diff('day', event_date, released_at::DATE) FROM curated_records
               WHERE event_date IS NOT NULL"""
        ).fetchall()
        stats = con.execute(
            """SELECT median(l), quantile_cont(l, 0.9) FROM (
                 SELECT date_diff('day', event_date, released_at::DATE) AS l
                 FROM curated_records WHERE event_date IS NOT NULL)"""
        ).fetchone()
    finally:
        con.close()
    median = float(stats[0]) if stats and stats[0] is not None else None
    p90 = float(stats[1]) if stats and stats[1] is not None else None
    name = title or "dataset"
    fig, (size, growth, lag) = plt.subplots(3, 1, figsize=(10, 10), constrained_layout=True)
    if by_event:
        size.bar([d for d, _ in by_event], [n for _, n in by_event],
                 width=25 if bucket == "month" else 0.9, color="#4c72b0")  # fmt: skip
    size.set_title(f"{name}: {len(released)} records held, by event date")
    size.set_ylabel(f"records per {bucket}")
    size.set_xlabel("event date (as released: shifted or generalised per the policy)")
    if released:
        times = [t for (t,) in released]
        growth.step(times, range(1, len(times) + 1), where="post", color="#55a868")
        growth.set_xlim(times[0] - dt.timedelta(minutes=1), times[-1] + dt.timedelta(minutes=1))
    growth.set_title("size over release time (cumulative, records still held)")
    growth.set_ylabel("records")
    growth.set_xlabel("released_at (UTC)")
    if lags:
        lag.hist([v for (v,) in lags], bins=40, color="#dd8452")
        if median is not None:
            lag.axvline(median, color="black", label=f"median {median:.0f} days")
        if p90 is not None:
            lag.axvline(p90, color="black", linestyle="--", label=f"90th percentile {p90:.0f} days")
        lag.legend(loc="upper right")
    lag.set_title("freshness: lag behind the feeds (released_at - event_date)")
    lag.set_xlabel("days")
    lag.set_ylabel("records")
    for axis in (size, growth, lag):
        axis.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return FreshnessSummary(len(released), len(by_event), bucket, median, p90)
