"""Rendering only: the plain summary on stderr, JSON on stdout. rich lives here and in cli.py only.

Humans read stderr; machines read stdout with ``--output json`` (and target/activate_results.json).
"""

from __future__ import annotations

import json
import sys
from typing import IO

from rich.console import Console as RichConsole
from rich.markup import escape

from dbt_activate.pipeline import Counts
from dbt_activate.runner import InvocationResult, SyncOutcome, results_document

_STATUS_STYLE = {"success": "green", "partial": "yellow", "error": "red", "skipped": "dim", "planned": "cyan"}


class _Reporter:
    def __init__(self, console: RichConsole) -> None:
        self._console = console

    def sync_started(self, outcome: SyncOutcome) -> None:
        self._console.print(f"[bold]{escape(outcome.name)}[/]: syncing ({escape(outcome.reason)})")

    def sync_progress(self, name: str, counts: Counts) -> None:
        return None

    def sync_finished(self, outcome: SyncOutcome) -> None:
        style = _STATUS_STYLE.get(outcome.status, "")
        self._console.print(f"[bold]{escape(outcome.name)}[/]: [{style}]{outcome.status}[/] "
                            f"in {outcome.duration:.1f}s")


class Console:
    def __init__(self, output: str = "text", stderr: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
        self.output = output
        self._err = RichConsole(file=stderr or sys.stderr, highlight=False, soft_wrap=True)
        self._out = stdout or sys.stdout

    def reporter(self) -> _Reporter:
        return _Reporter(self._err)

    def error(self, message: str) -> None:
        self._err.print(f"[red]Error:[/] {escape(message)}")

    def result(self, result: InvocationResult) -> None:
        if self.output == "json":
            self._out.write(json.dumps(results_document(result), indent=2, default=str) + "\n")
        self._err.print(render_summary(result), markup=False)


def _counts(c: Counts) -> str:
    return (f"added {c.added}, changed {c.changed}, removed {c.removed}, rejected {c.rejected}, "
            f"skipped {c.skipped}, sent {c.sent}")


def render_summary(result: InvocationResult) -> str:
    lines = []
    if result.notice:
        lines.append(f"Note: {result.notice}")
    verb = "would send" if result.command == "plan" else "sync"
    for o in result.outcomes:
        head = f"{o.name} ({o.model} -> {o.destination}.{o.object}, {o.mode}): {o.status}"
        if o.status == "skipped":
            lines.append(f"{head}: {o.reason}")
            continue
        lines.append(f"{head}: {verb} {_counts(o.counts)}")
        for key, reason in o.rejected_samples[:5]:
            lines.append(f"    rejected {key}: {reason}")
        if o.error:
            lines.append(f"    error: {o.error}")
    ran = [o for o in result.outcomes if o.status != "skipped"]
    totals = Counts()
    for o in ran:
        for name in vars(totals):
            setattr(totals, name, getattr(totals, name) + getattr(o.counts, name))
    lines.append(f"{result.command}: {len(ran)} sync(s) run, {len(result.outcomes) - len(ran)} skipped; "
                 f"{_counts(totals)}; exit {result.exit_code}")
    return "\n".join(lines)
