"""One sync of an invocation: plan counts (`plan`) or diff, deliver and record (`run`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from dbt_activate import crashpoints
from dbt_activate.core.changes import ADD, CHANGE, REMOVE, RowLayout, operation_for
from dbt_activate.core.outcomes import Reporter, SyncOutcome
from dbt_activate.core.types import Batch, Mode, Nulls, Operation, RateLimit, Record, SyncTarget
from dbt_activate.core.wording import plural
from dbt_activate.delivery import (
    RateLimiter,
    RetryPolicy,
    TlsSettings,
    current_observers,
    using_limiter,
    using_tls,
)
from dbt_activate.destinations.base import Destination
from dbt_activate.errors import ActivateError, ConfigError, WarehouseError
from dbt_activate.invocation import Invocation
from dbt_activate.links import Link, Links
from dbt_activate.pipeline import Pipeline, PipelineResult
from dbt_activate.planner import Decision
from dbt_activate.spec import ResolvedSync
from dbt_activate.state.journal import Journal
from dbt_activate.state.locks import LOCK_TABLE, SyncLock
from dbt_activate.state.store import RunRow, StateStore
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import KEY, OP, snapshot_table_name


def needs_everything(decision: Decision, saved: Mapping[str, Any], rs: ResolvedSync) -> bool:
    record = saved.get(rs.spec.name)
    mapping_changed = record is not None and record.fields_signature not in ("", rs.fields_signature)
    return decision.full_resync or mapping_changed


def row_layout(rs: ResolvedSync, destination: Destination, target: SyncTarget) -> RowLayout:
    """How diff rows become records; NULL fields are left out where an absent field keeps its value."""
    drop_nulls = (destination.null_handling is Nulls.OMIT and rs.spec.mode is not Mode.APPEND
                  and not destination.clears_nulls(target))
    # With a `match` apart from the primary key, the identity of a row can change (a new email).
    follows_identity = bool(rs.spec.match) and ({c.lower() for c, _ in rs.spec.match}
                                              != {c.lower() for c in rs.spec.primary_key})
    return RowLayout(tuple(f.field for f in rs.fields), rs.identity, drop_nulls=drop_nulls,
                     follows_identity=follows_identity)


def plan_counts(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
                 saved: Mapping[str, Any], decision: Decision, outcome: SyncOutcome) -> None:
    exists = reader.columns(inv.state_schema, snapshot_table_name(rs.spec.name))
    d = inv.dialect
    snapshot = (state.table(snapshot_table_name(rs.spec.name)) if exists else
                f"(select cast(null as {d.key_type}) as sync_key, cast(null as varchar(32)) as fingerprint, "
                f"cast(null as {d.text_type}) as record_identity where 1 = 0)")
    if exists:
        reader.reserve_memory_for(snapshot)
    sql = inv.diff_sql(rs, snapshot, everything=needs_everything(decision, saved, rs))
    rows_by_op = {str(op): int(n) for op, n in reader.query(f"select {OP}, count(*) from ({sql}) d group by {OP}")}
    c = outcome.counts
    c.added, c.changed, c.removed = (rows_by_op.pop(op, 0) for op in (ADD, CHANGE, REMOVE))
    c.rejected = sum(rows_by_op.values())  # null and duplicate keys
    destination = inv.destinations.build(rs.spec.destination)
    target = inv.target_of(rs)
    per_operation: dict[Operation, int] = {}
    for op, n in ((ADD, c.added), (CHANGE, c.changed), (REMOVE, c.removed)):
        operation = operation_for(rs.spec.mode, op, rs.spec.on_delete)
        if operation is not None and n:
            per_operation[operation] = per_operation.get(operation, 0) + n
    outcome.api_calls = sum(destination.planned_requests(target, op, n) for op, n in per_operation.items())
    if inv.options.samples:
        outcome.samples = _samples(inv, reader, rs, destination, target, sql, inv.options.samples)


def _samples(inv: Invocation, reader: WarehouseConnection, rs: ResolvedSync, destination: Destination,
             target: SyncTarget, sql: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` records per operation, rendered by the destination as ``write`` would send them."""
    layout = row_layout(rs, destination, target)
    batches: dict[Operation, list[Record]] = {}
    for op in (ADD, CHANGE, REMOVE):
        operation = operation_for(rs.spec.mode, op, rs.spec.on_delete)
        if operation is None:
            continue
        rows = reader.query(f"select * from ({sql}) d where {OP} = '{op}' order by {KEY} limit {int(limit)}")
        records = batches.setdefault(operation, [])
        records.extend(layout.record(row)[0] for row in rows if len(records) < limit)
    samples = []
    for operation, records in batches.items():
        if not records:
            continue
        request = destination.describe_request(target, Batch(operation, records))
        # Rendered requests may carry credentials (a webhook URL, a header): redact like every output.
        clean = json.loads(inv.redactor(json.dumps(request, default=str)))
        samples.append({"operation": operation.value, "records": len(records), "request": clean})
    return samples


async def run_one(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
                  saved: Mapping[str, Any], decision: Decision, outcome: SyncOutcome,
                  limiters: dict[str, RateLimiter], reporter: Reporter) -> None:
    """Run one sync while holding its lock (``locks.py``); a sync another run holds is not touched."""
    lock = SyncLock(inv.connect("activate_lock"), state.table(LOCK_TABLE), rs.spec.name, inv.run_id)
    try:
        await asyncio.to_thread(lock.acquire, inv.options.lock_timeout, on_wait=current_observers().on_warning)
    except ActivateError as exc:
        lock.conn.close()
        outcome.status, outcome.error = "error", inv.redactor(str(exc))
        return
    try:
        await _run_locked(inv, reader, state, rs, saved, decision, outcome, limiters, reporter)
    finally:
        # A failed release is harmless: the lock expires on its own; the sync itself is recorded.
        with contextlib.suppress(ActivateError):
            await asyncio.to_thread(lock.release)
        lock.conn.close()


async def _run_locked(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
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
        state=state, journal=journal, layout=row_layout(rs, destination, target),
        key_columns=rs.key_columns, on_delete=spec.on_delete, limiter=limiter, policy=RetryPolicy(),
        on_progress=lambda counts: reporter.sync_progress(spec.name, counts),
        interruption=inv.interruption,
        links=_links(inv, rs, destination),
    )
    previous = saved.get(spec.name)
    error: ActivateError | None = None
    try:
        pipeline.replay_leftovers()
        if pipeline.result.unconfirmed:
            _report_unconfirmed(rs, pipeline.result.unconfirmed, outcome)
        crashpoints.reached("sync.replayed")
        snapshot = state.snapshot(spec.name)
        if state.is_empty(snapshot):
            sql = inv.diff_sql(rs, None, everything=True)
            pipeline.duplicate_keys = inv.duplicate_keys(reader, rs)
            # A first sync sends every row: counting them is cheap and gives the progress bar an ETA.
            reporter.sync_total(spec.name, inv.row_count(reader, rs))
        else:
            reader.reserve_memory_for(snapshot)
            sql = inv.diff_sql(rs, snapshot, everything=needs_everything(decision, saved, rs))
        result = await _deliver(destination, target, pipeline, sql)
        error = result.error
        outcome.counts, outcome.rejected_samples = result.counts, result.rejected_samples
        if error is None and result.interrupted:
            error = ActivateError(_interrupted(inv, outcome, decision))
    except ActivateError as exc:
        error = exc
    outcome.duration = time.monotonic() - started
    outcome.status = "error" if error else ("partial" if outcome.counts.rejected else "success")
    outcome.error = inv.redactor(_with_advice(error, journal)) if error else None
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
    crashpoints.reached("state.finish")
    try:
        state.finish(row, config_hash=config_hash, fields_signature=signature, complete=complete)
    except ActivateError as exc:
        outcome.status = "error"
        outcome.error = outcome.error or inv.redactor(str(exc))
    crashpoints.reached("state.finished")


def _interrupted(inv: Invocation, outcome: SyncOutcome, decision: Decision) -> str:
    """What a stopped sync sent, and what the next run does about the rest."""
    rest = ("run `dbt-activate run --full-resync` again to resend the rows this one did not reach"
            if decision.full_resync else "the next run sends the rest")
    return (f"interrupted by {inv.interruption.name} after {plural(outcome.counts.sent, 'record')} sent and "
            f"acknowledged, which are saved; {rest}")


def _links(inv: Invocation, rs: ResolvedSync, destination: Destination) -> Links | None:
    """Resolve the sync's references; keep its record ids when other syncs reference it (links.py)."""
    name = rs.spec.name
    referenced = any(r.sync == name for s in inv.specs for r in s.references)
    if not destination.references or not (referenced or rs.spec.references):
        return None
    links = [Link(r.relationship, r.sync) for r in rs.spec.references]
    return Links(name, links, inv.id_store(rs.spec.destination), keep_ids=referenced)


def _with_advice(error: ActivateError, journal: Journal) -> str:
    """A lost warehouse connection: say that nothing acknowledged is lost, and what to do."""
    if not isinstance(error, WarehouseError):
        return str(error)
    return (f"{error}. Nothing the destination acknowledged is lost: it is kept in {journal.directory} and "
            "applied to the state by the next run, which sends only the rest. Rerun `dbt-activate run` once "
            "the warehouse is reachable, with the same target/ directory (a fresh one resends the rows "
            "acknowledged since the last checkpoint; idempotent modes absorb that)")


def _report_unconfirmed(rs: ResolvedSync, records: int, outcome: SyncOutcome) -> None:
    """A killed run's batches in flight are sent again: say how many, and what it means for the mode."""
    mode = rs.spec.mode.value
    effect = (f"mode {mode} cannot tell them apart, so the destination may now hold up to {records} of them twice"
              if mode in ("create", "append") else f"harmless: mode {mode} writes them idempotently")
    note = (f"the previous run stopped with {records} records sent but not confirmed; they are sent again "
            f"({effect})")
    outcome.reason = f"{outcome.reason}; {note}"
    warn = current_observers().on_warning
    if warn is not None:
        warn(f"{rs.spec.name}: {note}")


async def _deliver(destination: Destination, target: SyncTarget, pipeline: Pipeline, sql: str) -> PipelineResult:
    tls = TlsSettings.of_config(destination.config)
    try:
        with using_tls(tls):  # every session the destination opens, now or in a batch's task
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
