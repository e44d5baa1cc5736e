"""Rendering only: progress and the summary on stderr, JSON on stdout. rich lives here and in cli.py only.

Humans read stderr; machines read stdout with ``--output json`` (and target/activate_results.json).
On a terminal each running sync gets a progress bar; elsewhere (CI logs) and with ``--quiet`` the
output is plain lines that never redraw, so a log shows each fact once.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from rich import box
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from dbt_activate.commands.ls import SyncListing
from dbt_activate.core.outcomes import InvocationResult, SyncOutcome, results_document
from dbt_activate.core.types import Counts
from dbt_activate.core.wording import plural
from dbt_activate.dbt.catalog import DestinationType
from dbt_activate.delivery import RequestLog

_STATUS_STYLE = {"success": "green", "partial": "yellow", "error": "red", "skipped": "dim", "planned": "cyan"}
_REJECTED_SHOWN = 5
_SAMPLE_LINES = 40  # per sample request on the terminal; the whole request is in activate_results.json
# Why the user should care, and what to do, per status of a sync that did not fully go through.
_FIX = {
    "partial": "rejected rows keep their previous state and are retried by the next run; see the reasons "
               "above and the sync_rejections table in the state schema",
    "error": "fix the cause above and run again: rows that were not acknowledged are sent by the next run",
}
_PLAIN_WIDTH = 160  # CI logs do not wrap; rich would otherwise assume 80 columns
_TABLE_MIN_WIDTH = 100  # narrower, the eleven columns fold into unreadable slivers: one line per sync


class _RowRate(ProgressColumn):
    """Rows sent per second, from rich's own moving speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed or 0:,.0f} rows/s", style="progress.data.speed")


class _Eta(TimeRemainingColumn):
    """ETA only when the number of rows is known; a blank is more honest than a made-up time."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.total is not None else Text("")


def progress_bars(console: RichConsole) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f} sent"),
        _RowRate(), TextColumn("{task.fields[rejected]:,} rejected"), _Eta(),
        console=console, transient=True, auto_refresh=console.is_terminal,
    )


def _finished_line(outcome: SyncOutcome) -> str:
    c = outcome.counts
    style = _STATUS_STYLE.get(outcome.status, "")
    return (f"[bold]{escape(outcome.name)}[/]: [{style}]{outcome.status}[/] in {outcome.duration:.1f}s, "
            f"sent {c.sent:,}, rejected {c.rejected:,}, skipped {c.skipped:,}")


class Reporter:
    """The runner's ``Reporter``: a bar per running sync (``live``), else one line per start and end."""

    def __init__(self, console: RichConsole, *, live: bool, quiet: bool = False, verbose: bool = False) -> None:
        self._console = console
        self._quiet, self._verbose = quiet, verbose
        self.progress: Progress | None = progress_bars(console) if live and not quiet else None
        self._tasks: dict[str, TaskID] = {}

    def _print(self, markup: str) -> None:
        # Inside a live display, printing goes above the bars instead of breaking them.
        (self.progress.console if self.progress else self._console).print(markup)

    def sync_started(self, outcome: SyncOutcome, total: int | None = None) -> None:
        if self.progress is not None:
            if not self._tasks:
                self.progress.start()
            self._tasks[outcome.name] = self.progress.add_task(outcome.name, total=total, rejected=0)
        elif not self._quiet:
            self._print(f"[bold]{escape(outcome.name)}[/]: syncing ({escape(outcome.reason)})")

    def sync_total(self, name: str, total: int) -> None:
        """The rows a sync will send, once known (a first sync): the bar gets a length and an ETA."""
        task = self._tasks.get(name)
        if self.progress is not None and task is not None:
            self.progress.update(task, total=total)

    def sync_progress(self, name: str, counts: Counts) -> None:
        task = self._tasks.get(name)
        if self.progress is not None and task is not None:
            self.progress.update(task, completed=counts.sent, rejected=counts.rejected)

    def sync_finished(self, outcome: SyncOutcome) -> None:
        task = self._tasks.pop(outcome.name, None)
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)
            if not self._tasks:
                self.progress.stop()
        if not self._quiet:
            self._print(_finished_line(outcome))

    def request(self, log: RequestLog) -> None:
        """One HTTP request for ``-v``: method, path (no query string), status and duration only."""
        if self._verbose:
            status = "no response" if log.status is None else str(log.status)
            note = f" ({escape(log.note)})" if log.note else ""
            self._print(f"[dim]  http {log.method} {escape(log.path)} {status} {log.duration * 1000:.0f}ms{note}[/]")

    def warning(self, message: str) -> None:
        self._print(f"[yellow]Warning:[/] {escape(message)}")

    def close(self) -> None:
        if self.progress is not None and self._tasks:
            self.progress.stop()


class Console:
    def __init__(self, output: str = "text", stderr: IO[str] | None = None, stdout: IO[str] | None = None, *,
                 quiet: bool = False, verbose: bool = False, live: bool | None = None,
                 width: int | None = None) -> None:
        self.output = output
        err = stderr or sys.stderr
        terminal = err.isatty() if live is None else live
        self._err = RichConsole(file=err, highlight=False, soft_wrap=True,
                                width=width or (None if terminal else _PLAIN_WIDTH))
        self._out = stdout or sys.stdout
        self._reporter = Reporter(self._err, live=terminal, quiet=quiet, verbose=verbose)

    def reporter(self) -> Reporter:
        return self._reporter

    def error(self, message: str) -> None:
        self._reporter.close()
        self._err.print(f"[red]Error:[/] {escape(message)}")

    def result(self, result: InvocationResult) -> None:
        self._reporter.close()
        if self.output == "json":
            self._out.write(json.dumps(results_document(result), indent=2, default=str) + "\n")
        render_summary(self._err, result)

    def document(self, document: Any, text: Table | str) -> None:
        """A command's answer: JSON on stdout with ``--output json``, else ``text`` on stdout."""
        if self.output == "json":
            self._out.write(json.dumps(document, indent=2, default=str) + "\n")
        else:
            RichConsole(file=self._out, highlight=False, soft_wrap=True, width=self._err.width).print(text)


def _counts_total(outcomes: list[SyncOutcome]) -> Counts:
    totals = Counts()
    for o in outcomes:
        for name in vars(totals):
            setattr(totals, name, getattr(totals, name) + getattr(o.counts, name))
    return totals


def _table(title: str | None = None) -> Table:
    # Two spaces between columns and no outer border: the table stays readable in 100 columns.
    return Table(box=box.SIMPLE_HEAD, safe_box=True, pad_edge=False, show_edge=False, padding=(0, 1),
                 collapse_padding=True, title=title, title_justify="left")


def summary_table(result: InvocationResult) -> Table:
    table = _table(title="Would send" if result.command == "plan" else None)
    for name in ("sync", "model", "destination"):
        table.add_column(name, overflow="fold", ratio=1)
    table.add_column("mode", no_wrap=True)
    planning = result.command == "plan"
    for name in ("added", "changed", "removed", "rejected", "skipped", "API calls" if planning else "duration"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for o in result.outcomes:
        c = o.counts
        numbers = ["", "", "", "", ""] if o.status == "skipped" else [
            f"{n:,}" for n in (c.added, c.changed, c.removed, c.rejected, c.skipped)]
        if planning:
            last = f"{o.api_calls:,}" if o.api_calls is not None else ""
        else:
            last = f"{o.duration:.1f}s" if o.status not in ("skipped", "planned") else ""
        style = _STATUS_STYLE.get(o.status, "")
        table.add_row(o.name, o.model, f"{o.destination}.{o.object}", o.mode, *numbers, last,
                      Text(o.status, style=style))
    return table


def render_summary(console: RichConsole, result: InvocationResult) -> None:
    """The summary table, then what went wrong per sync with the fix, then one totals line."""
    if result.notice:
        console.print(f"Note: {result.notice}", markup=False)
    if result.outcomes and console.width >= _TABLE_MIN_WIDTH:
        console.print(summary_table(result))
    elif result.outcomes:
        for o in result.outcomes:
            c = o.counts
            console.print(f"{o.name} ({o.model} -> {o.destination}.{o.object}, {o.mode}): {o.status} in "
                          f"{o.duration:.1f}s: added {c.added:,}, changed {c.changed:,}, removed {c.removed:,}, "
                          f"rejected {c.rejected:,}, skipped {c.skipped:,}", markup=False)
    for o in result.outcomes:
        if o.status == "skipped":
            console.print(f"{o.name}: skipped: {o.reason}", markup=False, style="dim")
            continue
        if o.runs_after and result.command == "plan":
            console.print(f"{o.name}: {o.runs_after}", markup=False)
        shown = o.rejected_samples[:_REJECTED_SHOWN]
        for key, reason in shown:
            console.print(f"{o.name}: rejected {key}: {reason}", markup=False)
        if o.counts.rejected > len(shown) and shown:
            console.print(f"{o.name}: ... {plural(o.counts.rejected - len(shown), 'more rejected row')}: see "
                          "target/activate_results.json and the sync_rejections table", markup=False)
        for sample in o.samples:
            render_sample(console, o.name, sample)
        if o.error:
            console.print(Text.assemble(("error", "red"), f" in {o.name}: {o.error}"))
        if o.status in _FIX and result.command == "run" and result.interrupted_by is None:
            console.print(f"{o.name}: {_FIX[o.status]}", markup=False, style="dim")
    ran = [o for o in result.outcomes if o.status != "skipped"]
    t = _counts_total(ran)
    sent = "" if result.command == "plan" else f", sent {t.sent:,}"
    verb = "planned" if result.command == "plan" else "run"
    console.print(f"{result.command}: {plural(len(ran), 'sync')} {verb}, {len(result.outcomes) - len(ran)} skipped; "
                  f"added {t.added:,}, changed {t.changed:,}, removed {t.removed:,}, rejected {t.rejected:,}, "
                  f"skipped {t.skipped:,}{sent}; exit {result.exit_code}", markup=False)


def render_sample(console: RichConsole, sync: str, sample: dict[str, Any]) -> None:
    """One sample request of ``plan``: a heading, then the request as indented JSON, cut to a screenful."""
    records = plural(sample["records"], "record")
    console.print(f"{sync}: sample {sample['operation']} request ({records}):", markup=False, style="bold")
    lines = json.dumps(sample["request"], indent=2, default=str, ensure_ascii=False).splitlines()
    for line in lines[:_SAMPLE_LINES]:
        console.print(f"  {line}", markup=False)
    if len(lines) > _SAMPLE_LINES:
        console.print(f"  ... {len(lines) - _SAMPLE_LINES} more line(s): see target/activate_results.json",
                      markup=False, style="dim")


def ls_table(listings: list[SyncListing]) -> Table | str:
    if not listings:
        return "No syncs declared (or none selected): add an `activate` block under a model's config.meta."
    table = _table()
    for name in ("sync", "model", "destination", "object"):
        table.add_column(name, overflow="fold", ratio=1)
    for name in ("mode", "last run (UTC)", "status"):
        table.add_column(name, no_wrap=True)
    table.add_column("retries", justify="right", no_wrap=True)
    for s in listings:
        last = s.last_run
        when = last.run_at[:19].replace("T", " ") if last and last.run_at else ""
        status = Text(last.status, style=_STATUS_STYLE.get(last.status, "")) if last else Text("never run", "dim")
        table.add_row(s.sync, s.model, s.destination, s.object, s.mode, when, status,
                      f"{last.pending_retries:,}" if last else "")
    return table


def destinations_table(types: list[DestinationType]) -> Table:
    table = _table()
    table.add_column("type", no_wrap=True)
    for name in ("objects", "modes"):
        table.add_column(name, overflow="fold", ratio=1)
    table.add_column("batch size", justify="right", no_wrap=True)
    table.add_column("default rate limit", no_wrap=True)
    for t in types:
        if t.error:
            table.add_row(t.kind, Text(f"cannot be loaded: {t.error}", style="red"), "", "", "")
            continue
        table.add_row(t.kind, ", ".join(t.objects) or "any", ", ".join(t.modes),
                      f"{t.batch_size:,}" if t.batch_size else "", t.rate_limit or "none")
    return table
