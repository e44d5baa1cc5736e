"""`dbt-activate ls`: every declared sync with what the state schema remembers of its last run.

Reads only: the manifest, destinations.yml (as a file: no destination is rendered, so `ls` needs none of
their secrets) and the ``activate_syncs`` table of the state schema. Nothing is sent and nothing is
written, not even the state schema: a project that never ran lists its syncs as never run. A
``--select`` term that matches no sync is warned of, as on `run`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dbt_activate.core.outcomes import Reporter
from dbt_activate.invocation import Invocation, RunOptions
from dbt_activate.planner import select
from dbt_activate.state.runs import LastRun, last_runs

LS_SCHEMA_VERSION = "activate_ls/v1"


@dataclass(frozen=True)
class SyncListing:
    sync: str
    model: str
    destination: str
    object: str
    mode: str
    last_run: LastRun | None  # None: never run (or the state schema does not exist yet)


def list_syncs(options: RunOptions, reporter: Reporter | None = None) -> list[SyncListing]:
    # ls needs no run_results.json: it says what is declared, not what would run.
    inv = Invocation(dataclasses.replace(options, run_all=True), command="ls", reporter=reporter)
    conn = inv.connect("activate_ls")
    try:
        runs = last_runs(conn, inv.state_schema)
    finally:
        conn.close()
        inv.close()
    specs = sorted(select(inv.specs, options.select, options.exclude, manifest=inv.manifest), key=lambda s: s.name)
    return [SyncListing(s.name, s.model_name, s.destination, s.object, s.mode.value, runs.get(s.name))
            for s in specs]


def ls_document(listings: list[SyncListing]) -> dict[str, Any]:
    """``dbt-activate ls --output json`` (schema: dbt_activate/schemas/activate_ls.v1.json)."""
    return {
        "metadata": {"schema_version": LS_SCHEMA_VERSION,
                     "generated_at": datetime.now(timezone.utc).isoformat()},
        "syncs": [
            {"sync": s.sync, "model": s.model, "destination": s.destination, "object": s.object, "mode": s.mode,
             "last_run_id": s.last_run.run_id if s.last_run else None,
             "last_run_at": s.last_run.run_at if s.last_run else None,
             "last_status": s.last_run.status if s.last_run else None,
             "pending_retries": s.last_run.pending_retries if s.last_run else 0}
            for s in listings
        ],
    }
