"""The last run of every sync, as the ``activate_syncs`` table of the state schema remembers it.

Read by ``ls`` and by the runner (alerts compare a sync's outcome with its previous status).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dbt_activate.state.store import WarehouseStateStore
from dbt_activate.warehouse.connection import WarehouseConnection


@dataclass(frozen=True)
class LastRun:
    run_id: str
    run_at: str | None  # ISO 8601, UTC
    status: str
    pending_retries: int


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        # The state tables store naive UTC timestamps.
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return str(value)


def last_runs(conn: WarehouseConnection, schema: str) -> dict[str, LastRun]:
    """The last run of every sync the state schema knows; empty when the schema was never created."""
    if not conn.columns(schema, "activate_syncs"):
        return {}
    table = conn.dialect.current_rows(WarehouseStateStore(conn, schema).table("activate_syncs"), "sync_name",
                                      "last_run_at")
    rows = conn.query(f"select sync_name, last_run_id, last_run_at, last_status, pending_retries from {table} t")
    return {str(r[0]): LastRun(str(r[1] or ""), _iso(r[2]), str(r[3] or ""), int(r[4] or 0)) for r in rows}
