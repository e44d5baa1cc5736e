"""One sync of an invocation: plan counts (`plan`) or diff, deliver and record (`run`)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dbt_activate.changes import RowLayout
from dbt_activate.delivery import RateLimiter, RetryPolicy, using_limiter
from dbt_activate.destinations.base import Destination, RateLimit, SyncTarget
from dbt_activate.errors import ActivateError, ConfigError
from dbt_activate.journal import Journal
from dbt_activate.pipeline import Pipeline, PipelineResult
from dbt_activate.planner import Decision
from dbt_activate.spec import ResolvedSync
from dbt_activate.state import RunRow, StateStore
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import OP, snapshot_table_name

if TYPE_CHECKING:
    from dbt_activate.runner import Invocation, Reporter, SyncOutcome

def needs_everything(decision: Decision, saved: Mapping[str, Any], rs: ResolvedSync) -> bool:
    record = saved.get(rs.spec.name)
    mapping_changed = record is not None and record.fields_signature not in ("", rs.fields_signature)
    return decision.full_resync or mapping_changed


def plan_counts(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
                 saved: Mapping[str, Any], decision: Decision, outcome: SyncOutcome) -> None:
    exists = reader.query(inv.dialect.columns_query(),
                          [inv.state_schema, snapshot_table_name(rs.spec.name), None, None])
    d = inv.dialect
    snapshot = (state.table(snapshot_table_name(rs.spec.name)) if exists else
                f"(select cast(null as {d.key_type}) as sync_key, cast(null as varchar(32)) as fingerprint, "
                f"cast(null as {d.text_type}) as record_identity where 1 = 0)")
    sql = inv.diff_sql(rs, snapshot, everything=needs_everything(decision, saved, rs))
    for op, n in reader.query(f"select {OP}, count(*) from ({sql}) d group by {OP}"):
        c = outcome.counts
        if op == "add":
            c.added = int(n)
        elif op == "change":
            c.changed = int(n)
        elif op == "remove":
            c.removed = int(n)
        else:
            c.rejected += int(n)


async def run_one(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
             saved: Mapping[str, Any], decision: Decision, outcome: SyncOutcome,
             limiters: dict[str, RateLimiter], reporter: Reporter) -> None:
    spec = rs.spec
    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    destination: Destination = inv.destinations.build(spec.destination)
    if destination.uses_id_store:
        destination.id_store = inv.id_store(spec.destination)
    limiter = limiters.get(spec.destination)
    if limiter is None and (rate := _rate_limit(destination)) is not None:
        limiter = limiters[spec.destination] = RateLimiter(RateLimit(*rate))
    target = inv.target_of(rs)
    journal = Journal(inv.paths.target_path / "activate" / "journal", spec.name)
    pipeline = Pipeline(
        checkpoint_rows=int(os.environ.get("DBT_ACTIVATE_CHECKPOINT_ROWS", "50000")),
        checkpoint_seconds=float(os.environ.get("DBT_ACTIVATE_CHECKPOINT_SECONDS", "30")),
        sync_name=spec.name, run_id=inv.run_id, target=target, destination=destination, reader=reader,
        state=state, journal=journal, layout=RowLayout(tuple(f.field for f in rs.fields), rs.identity),
        key_columns=rs.key_columns, on_delete=spec.on_delete, limiter=limiter, policy=RetryPolicy(),
        on_progress=lambda counts: reporter.sync_progress(spec.name, counts),
    )
    previous = saved.get(spec.name)
    error: ActivateError | None = None
    try:
        pipeline.replay_leftovers()
        snapshot = state.snapshot(spec.name)
        if state.is_empty(snapshot):
            sql = inv.diff_sql(rs, None, everything=True)
            pipeline.duplicate_keys = inv.duplicate_keys(reader, rs)
        else:
            sql = inv.diff_sql(rs, snapshot, everything=needs_everything(decision, saved, rs))
        result = await _deliver(destination, target, pipeline, sql)
        error = result.error
        outcome.counts, outcome.rejected_samples = result.counts, result.rejected_samples
    except ActivateError as exc:
        error = exc
    outcome.duration = time.monotonic() - started
    outcome.status = "error" if error else ("partial" if outcome.counts.rejected else "success")
    outcome.error = inv.redactor(str(error)) if error else None
    outcome.config_error = isinstance(error, ConfigError)
    complete = error is None
    row = RunRow(
        run_id=inv.run_id, dbt_invocation_id=inv.results.invocation_id if inv.results else "",
        sync_name=spec.name, model=spec.model_name, destination=spec.destination, object=spec.object,
        mode=spec.mode.value, status=outcome.status, started_at=started_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        finished_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        duration_seconds=outcome.duration, counts=outcome.counts.as_columns(), error=outcome.error)
    # An incomplete run keeps what the last complete run saved, so the next run still sees a
    # changed activate block or field mapping; a sync that never completed stays "new".
    if complete:
        config_hash, signature = spec.config_hash, rs.fields_signature
    elif previous is not None:
        config_hash, signature = previous.saved.config_hash, previous.fields_signature
    else:
        config_hash, signature = "", ""
    try:
        state.finish(row, config_hash=config_hash, fields_signature=signature, complete=complete)
    except ActivateError as exc:
        outcome.status = "error"
        outcome.error = outcome.error or inv.redactor(str(exc))


async def _deliver(destination: Destination, target: SyncTarget, pipeline: Pipeline, sql: str) -> PipelineResult:
    try:
        # open() may call the vendor (field lookups): it waits for the same rate limiter.
        with using_limiter(pipeline.limiter):
            await destination.open(target)
        return await pipeline.run(sql)
    finally:
        await destination.close()


def _rate_limit(destination: Destination) -> tuple[int, float] | None:
    configured = destination.config.get("rate_limit")
    if isinstance(configured, dict) and configured.get("requests"):
        return int(configured["requests"]), float(configured.get("per_seconds", 1))
    if destination.rate_limit is not None:
        return destination.rate_limit.requests, destination.rate_limit.per_seconds
    return None
