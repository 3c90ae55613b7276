"""``biostream-consumer``: keep a project's local copy up to date, export OMOP, plot freshness."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from biostream_consumer.adapters.omop import CDM_VERSION, export_omop
from biostream_consumer.adapters.plot import plot_freshness
from biostream_consumer.bootstrap import build
from biostream_consumer.domain.vocabulary import ConceptMap
from biostream_consumer.settings import ConsumerSettings

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(stderr=True)


class RichProgress:
    """Catch-up progress on the terminal: messages applied out of those behind."""

    def __init__(self) -> None:
        self.progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console, transient=False,
        )  # fmt: skip
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        if total and self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("catching up", total=total)
        elif total and self.task is not None:
            self.progress.update(self.task, total=total, completed=0)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def explain_withdrawal(withdrawal: tuple[str, object] | None) -> bool:
    """D46: tells the project that the board's approval of its dataset ended, and why."""
    if withdrawal is None:
        return False
    reason, when = withdrawal
    console.print(
        f"the dataset was withdrawn ({reason}) at {when} UTC: nothing more is released and the "
        "project's read access is removed; the records held stay until the close-out"
    )
    return True


@app.command()
def sync(
    follow: Annotated[bool, typer.Option(help="keep following after catching up")] = False,
) -> None:
    """Catch up with the dataset (records, then notices) and store the position with it."""
    settings = ConsumerSettings()
    consumer = build(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        report = await consumer.source.sync(RichProgress(), stop=stop, follow=follow)
        console.print(
            f"read {report.messages_read} messages: {report.records_written} records, "
            f"{report.notices_applied} notices ({report.records_moved} moved, "
            f"{report.records_deleted} deleted), {report.skipped} skipped; "
            f"{consumer.store.count()} records held in {settings.database}"
        )
        explain_withdrawal(consumer.store.withdrawal())

    from biostream.restore import ReadStalled

    from biostream_consumer.adapters.source import AccessRefused

    try:
        asyncio.run(run())
    except AccessRefused as refused:
        # D46: say why the project can no longer read, from the notice if it came in time.
        console.print(f"error: {refused}")
        if not explain_withdrawal(consumer.store.withdrawal()):
            console.print(
                "error: the dataset's approval has ended or was never granted to this principal "
                "(a DATASET_WITHDRAWN notice says why when it is read before access ends)"
            )
        raise typer.Exit(3) from None
    except ReadStalled as stall:
        # D26: what was applied is kept with its positions; the copy is not caught up.
        console.print(f"error: the sync did not reach the end of the dataset: {stall}")
        console.print(f"error: {settings.database} is behind; run sync again when Kafka answers")
        raise typer.Exit(1) from None
    finally:
        consumer.close()


@app.command()
def omop(
    out: Annotated[Path, typer.Option(help="directory for the CSV tables")],
    concept_map: Annotated[
        Path | None, typer.Option(help="CSV: source_vocabulary,source_code,concept_id")
    ] = None,
) -> None:
    """Export the local copy as OMOP CDM 5.4 tables (CSV with header)."""
    settings = ConsumerSettings()
    concepts = ConceptMap.parse(concept_map.read_text("utf-8")) if concept_map else None
    summary = export_omop(settings.database, out, concepts)
    for table, count in summary.rows.items():
        console.print(f"{table}: {count}")
    console.print(
        f"OMOP CDM {CDM_VERSION} in {out}; {summary.records_without_date} records without a "
        f"date left out; {summary.unmapped_codes} coded records without a mapped concept"
    )


@app.command()
def plot(out: Annotated[Path, typer.Option(help="PNG file to write")]) -> None:
    """Plot the dataset's size and freshness over time from the local copy."""
    settings = ConsumerSettings()
    summary = plot_freshness(settings.database, out, settings.dataset)
    console.print(f"{out}: {summary.records} records; median lag {summary.median_lag_days} days")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
