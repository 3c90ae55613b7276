"""D48: the disclosure-risk report on a board member's application page: a table of the draft
and each variant, and the class-size histogram of the draft. Counts only, as the report is."""

from __future__ import annotations

import html
from typing import Any

from access.domain.application import Application

_ROWS: tuple[tuple[str, str], ...] = (
    ("k", "k"),
    ("persons", "Persons"),
    ("records", "Records"),
    ("classes", "Equivalence classes"),
    ("min_class_size", "Smallest class (persons)"),
    ("median_class_size", "Median class size"),
    ("classes_below_k", "Classes below k"),
    ("records_below_k", "Records in classes below k"),
    ("share_records_below_k", "Share of records below k"),
    ("share_persons_below_k", "Share of persons below k"),
    ("max_risk", "Prosecutor risk, maximum (1 / smallest class)"),
    ("average_risk", "Prosecutor risk, average (classes / appearances)"),
)
_SHARES = {"share_records_below_k", "share_persons_below_k"}


def _e(value: object) -> str:
    return "" if value is None else html.escape(str(value))


def _cell(name: str, value: Any) -> str:
    if name in _SHARES:
        return f"{float(value):.1%}"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if name.endswith("risk") else f"{value:g}"
    return f"{value:,}" if isinstance(value, int) else _e(value)


def risk_section(application: Application) -> str:
    """D48: the newest report, or where its request stands; empty if none was asked for."""
    if not application.risk_requests:
        return ""
    report = application.risk_report
    head = "<div id='risk-report'><h2>Disclosure-risk report</h2>"
    if report is None:
        return (
            head
            + "<p id='risk-pending' class='note'>Requested; the pseudonymizer has not answered yet.</p></div>"
        )
    when = report.computed_at.strftime("%Y-%m-%d %H:%M UTC")
    if report.outcome != "COMPUTED" or report.figures is None:
        return head + (
            f"<p id='risk-error'>Not computed ({_e(report.outcome)}): "
            f"{_e(report.error_reason)}</p><p class='note'>{_e(when)}</p></div>"
        )
    figures = report.figures
    columns = [("As requested", figures["requested"], {})] + [
        (v["label"], v["measures"], v["changes"]) for v in figures["variants"]
    ]
    header = "".join(
        f"<th title='{_e(changes)}'>{_e(label)}</th>" for label, _m, changes in columns
    )
    body = "".join(
        f"<tr><th>{_e(title)}</th>"
        + "".join(f"<td>{_cell(name, m[name])}</td>" for _label, m, _c in columns)
        + "</tr>"
        for name, title in _ROWS
    )
    requested = figures["requested"]
    largest = max((b["classes"] for b in requested["histogram"]), default=0) or 1
    bars = "".join(
        f"<tr><th>{_e(b['label'])}</th><td style='width:24rem'><div style='background:#3b6ea5;"
        f"height:1rem;width:{100 * b['classes'] / largest:.1f}%'></div></td>"
        f"<td>{b['classes']:,} classes</td><td>{b['persons']:,} persons</td>"
        f"<td>{b['records']:,} records</td></tr>"
        for b in requested["histogram"]
    )
    return head + (
        f"<p class='note'>Computed by the pseudonymizer on {report.records_read:,} retained "
        f"clinical records ({figures['awaiting_link_decision']:,} awaiting a link decision not "
        f"counted), {_e(when)}. Counts only: no class's values are reported.</p>"
        f"<table id='risk-table'><tr><th></th>{header}</tr>{body}</table>"
        "<h3>Class sizes (persons per class), as requested</h3>"
        f"<table id='risk-histogram'>{bars}</table></div>"
    )
