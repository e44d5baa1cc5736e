"""What a run reports: one outcome per sync, the invocation's result and its exit code, and the
``Reporter`` protocol through which the engine tells the edge (console, JSON) what happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from dbt_activate.core.types import Counts


@dataclass
class SyncOutcome:
    name: str
    model: str
    destination: str
    object: str
    mode: str
    status: str  # success | partial | error | skipped | planned
    reason: str
    counts: Counts = field(default_factory=Counts)
    rejected_samples: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    config_error: bool = False  # the error needs a configuration fix (exit 2), not a retry
    duration: float = 0.0
    api_calls: int | None = None  # plan: requests the sync would make
    samples: list[dict[str, Any]] = field(default_factory=list)  # plan: requests as they would be sent
    quarantined: int = 0  # rows held back because a failing test listed them (quarantine.py)
    runs_after: str = ""  # why it waits for other syncs of the invocation (core/order.py), for `plan`


@dataclass
class InvocationResult:
    run_id: str
    command: str
    notice: str | None
    outcomes: list[SyncOutcome]
    interrupted_by: int | None = None  # the signal (SIGINT, SIGTERM) that stopped the run

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:
            return 128 + self.interrupted_by  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
        if any(o.config_error for o in self.outcomes):
            return 2
        return 1 if any(o.status in ("error", "partial") for o in self.outcomes) else 0


class Reporter(Protocol):
    """Every event of a run reaches the edge through here: the engine itself never prints or logs."""

    def sync_started(self, outcome: SyncOutcome) -> None: ...
    def sync_total(self, name: str, total: int) -> None: ...
    def sync_progress(self, name: str, counts: Counts) -> None: ...
    def sync_finished(self, outcome: SyncOutcome) -> None: ...
    def warning(self, message: str) -> None: ...


class SilentReporter:
    def sync_started(self, outcome: SyncOutcome) -> None:
        return None

    def sync_total(self, name: str, total: int) -> None:
        return None

    def sync_progress(self, name: str, counts: Counts) -> None:
        return None

    def sync_finished(self, outcome: SyncOutcome) -> None:
        return None

    def warning(self, message: str) -> None:
        return None


def results_document(result: InvocationResult) -> dict[str, Any]:
    return {
        "metadata": {"schema_version": "activate_results/v1", "run_id": result.run_id,
                     "command": result.command, "generated_at": datetime.now(timezone.utc).isoformat()},
        "notice": result.notice,
        "exit_code": result.exit_code,
        "results": [
            {"sync": o.name, "model": o.model, "destination": o.destination, "object": o.object, "mode": o.mode,
             "status": o.status, "reason": o.reason, "duration_seconds": round(o.duration, 3),
             "counts": {"added": o.counts.added, "changed": o.counts.changed, "removed": o.counts.removed,
                        "rejected": o.counts.rejected, "skipped": o.counts.skipped, "sent": o.counts.sent,
                        "quarantined": o.quarantined},
             "rejected_samples": [{"key": k, "reason": r} for k, r in o.rejected_samples],
             "error": o.error,
             "api_calls": o.api_calls, "samples": o.samples}
            for o in result.outcomes
        ],
    }
