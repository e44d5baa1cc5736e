"""Sequences one invocation: artifacts -> specs -> plan -> per sync (diff, extract, deliver, record).

Nothing is sent before every selected sync has been validated against the manifest, destinations.yml
and the relation's columns: a configuration error stops the run before the first record leaves.
Progress is reported through a ``Reporter``; this module never prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from dbt_activate import artifacts
from dbt_activate.changes import RowLayout
from dbt_activate.delivery import RateLimiter, RetryPolicy
from dbt_activate.destinations.base import Destination, RateLimit, SyncTarget
from dbt_activate.errors import ActivateError, ArtifactsError, ConfigError, Redactor
from dbt_activate.journal import Journal
from dbt_activate.pipeline import Counts, Pipeline
from dbt_activate.planner import Decision, Plan, make_plan, unknown_selector_methods
from dbt_activate.project import DestinationsFile, load_destinations, resolve_paths
from dbt_activate.spec import ResolvedSync, SyncSpec, parse_manifest_syncs, resolve_columns
from dbt_activate.state import RunRow, StateStore
from dbt_activate.warehouse.adapter import DbtAdapter
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import OP, Column, Dialect, dialect_for, snapshot_table_name


@dataclass(frozen=True)
class RunOptions:
    project_dir: str | None = None
    profiles_dir: str | None = None
    profile: str | None = None
    target: str | None = None
    target_path: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    destinations_dir: str | None = None
    select: Sequence[str] = ()
    exclude: Sequence[str] = ()
    run_all: bool = False
    full_resync: bool = False
    fail_fast: bool = False
    state_schema: str | None = None


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


@dataclass
class InvocationResult:
    run_id: str
    command: str
    notice: str | None
    outcomes: list[SyncOutcome]

    @property
    def exit_code(self) -> int:
        if any(o.config_error for o in self.outcomes):
            return 2
        return 1 if any(o.status in ("error", "partial") for o in self.outcomes) else 0


class Reporter(Protocol):
    def sync_started(self, outcome: SyncOutcome) -> None: ...
    def sync_progress(self, name: str, counts: Counts) -> None: ...
    def sync_finished(self, outcome: SyncOutcome) -> None: ...


class SilentReporter:
    def sync_started(self, outcome: SyncOutcome) -> None:
        return None

    def sync_progress(self, name: str, counts: Counts) -> None:
        return None

    def sync_finished(self, outcome: SyncOutcome) -> None:
        return None


def fields_signature(resolved: ResolvedSync) -> str:
    import hashlib

    text = "|".join(f"{f.column}>{f.field}" for f in resolved.fields) + "#" + ",".join(resolved.identity)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _outcome(decision: Decision, status: str) -> SyncOutcome:
    s = decision.spec
    return SyncOutcome(s.name, s.model_name, s.destination, s.object, s.mode.value, status, decision.reason)


class Invocation:
    """Everything one `run` or `plan` needs, loaded and validated up front."""

    def __init__(self, options: RunOptions, *, command: str) -> None:
        self.options = options
        self.command = command
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.paths = resolve_paths(options.project_dir, options.profiles_dir, options.target_path,
                                   options.destinations_dir)
        bad = unknown_selector_methods([*options.select, *options.exclude])
        if bad:
            raise ConfigError(f"unknown selector {bad[0]!r}: use a model or sync name, tag:, path:, "
                              "destination:, sync: or model:")
        self.manifest = artifacts.load_manifest(self.paths.target_path)
        self.results: artifacts.RunResults | None
        try:
            self.results = artifacts.load_run_results(self.paths.target_path)
        except ArtifactsError:
            if not (options.run_all or options.full_resync):
                raise
            self.results = None
        self.specs = parse_manifest_syncs(self.manifest)
        self.destinations: DestinationsFile = load_destinations(self.paths.destinations_file)
        self.redactor = Redactor(self.destinations.secrets)
        self._check_destinations(self.specs)
        self.adapter = DbtAdapter(self.paths.project_dir, self.paths.profiles_dir, profile=options.profile,
                                  target=options.target, cli_vars=options.vars)
        self.redactor.add(self.adapter.target.secrets)
        self.dialect: Dialect = dialect_for(self.adapter.target.adapter_type)
        self.state_schema = (options.state_schema or os.environ.get("DBT_ACTIVATE_STATE_SCHEMA")
                             or f"{self.adapter.target.schema}_activate")

    def _check_destinations(self, specs: Sequence[SyncSpec]) -> None:
        for spec in specs:
            destination = self.destinations.build(spec.destination, used_at=f"{spec.location}.destination")
            self.redactor.add(destination.secrets())
            if spec.mode not in destination.modes:
                raise ConfigError(f"destination type {destination.kind!r} does not support mode "
                                  f"{spec.mode.value!r} (supported: {', '.join(sorted(m.value for m in destination.modes))})",
                                  location=f"{spec.location}.mode")

    def connect(self, name: str) -> WarehouseConnection:
        return WarehouseConnection(self.adapter.open(name), self.dialect, self.redactor)

    def plan(self, saved: Mapping[str, Any]) -> Plan:
        return make_plan(self.specs, self.manifest, self.results,
                         {k: v.saved for k, v in saved.items()},
                         select_terms=self.options.select, exclude_terms=self.options.exclude,
                         run_all=self.options.run_all, full_resync=self.options.full_resync)

    def resolve(self, conn: WarehouseConnection, spec: SyncSpec) -> ResolvedSync:
        node = self.manifest.models[spec.model_id]
        rows = conn.query(self.dialect.columns_query(), [node.schema, node.alias, node.database, node.database])
        if not rows:
            raise ConfigError(f"relation {spec.relation} does not exist in the warehouse: run `dbt build` "
                              f"for model {spec.model_name} first", location=spec.location)
        resolved = resolve_columns(spec, {str(r[0]): str(r[1]) for r in rows})
        destination = self.destinations.build(spec.destination)
        destination.check_target(self.target_of(resolved))
        return resolved

    def target_of(self, resolved: ResolvedSync) -> SyncTarget:
        spec = resolved.spec
        return SyncTarget(sync_name=spec.name, object=spec.object, mode=spec.mode, fields=resolved.fields,
                          identity=resolved.identity, run_id=self.run_id)

    def diff_sql(self, resolved: ResolvedSync, snapshot: str | None, *, everything: bool) -> str:
        """The diff against ``snapshot``; with None (nothing synced yet) a plain scan of the model."""
        spec = resolved.spec
        keys, fields = self._columns(resolved)
        if snapshot is None:
            return self.dialect.initial_query(spec.relation, keys, fields, spec.where).sql
        return self.dialect.diff_query(
            spec.relation, snapshot, keys, fields, spec.where,
            include_changed=spec.mode.value != "create",
            include_removed=spec.sends_deletes,
            include_unchanged=everything,
        ).sql

    def _columns(self, resolved: ResolvedSync) -> tuple[list[Column], list[Column]]:
        types = dict(resolved.column_types)
        keys = [Column(c, types.get(c, "")) for c in resolved.key_columns]
        return keys, [Column(f.column, f.data_type) for f in resolved.fields]

    def duplicate_keys(self, conn: WarehouseConnection, resolved: ResolvedSync) -> dict[str, int]:
        keys, _ = self._columns(resolved)
        sql = self.dialect.duplicate_keys_query(resolved.spec.relation, keys, resolved.spec.where)
        return {str(k): int(n) for k, n in conn.query(sql)}

    def write_results(self, result: InvocationResult) -> Path:
        path = self.paths.target_path / "activate_results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        document = results_document(result)
        path.write_text(self.redactor(json.dumps(document, indent=2, default=str)), encoding="utf-8")
        return path


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
                        "rejected": o.counts.rejected, "skipped": o.counts.skipped, "sent": o.counts.sent},
             "rejected_samples": [{"key": k, "reason": r} for k, r in o.rejected_samples],
             "error": o.error}
            for o in result.outcomes
        ],
    }


def _state_exists(conn: WarehouseConnection, dialect: Dialect, schema: str) -> bool:
    rows = conn.query(dialect.columns_query(), [schema, "activate_syncs", None, None])
    return bool(rows)


def run(options: RunOptions, reporter: Reporter | None = None, *, command: str = "run") -> InvocationResult:
    """`dbt-activate run` (or `plan` with command='plan', which sends nothing and writes no state)."""
    reporter = reporter or SilentReporter()
    inv = Invocation(options, command=command)
    writer = inv.connect("activate_state")
    reader = inv.connect("activate_reader")
    try:
        state = StateStore(writer, inv.state_schema)
        if command == "run":
            state.ensure()
            saved = state.saved_syncs()
        else:
            saved = state.saved_syncs() if _state_exists(writer, inv.dialect, inv.state_schema) else {}
        plan = inv.plan(saved)
        # Validate every sync that will run before anything is sent.
        resolved = {d.spec.name: inv.resolve(reader, d.spec) for d in plan.to_run}
        outcomes = [_outcome(d, "skipped") for d in plan.skipped]

        async def run_all() -> None:
            # One event loop for the whole invocation: rate limiters are shared by every sync
            # that writes to the same destination account.
            limiters: dict[str, RateLimiter] = {}
            failed = False
            for decision in plan.to_run:
                outcome = _outcome(decision, "planned")
                if failed and options.fail_fast:
                    outcome.status, outcome.reason = "skipped", "--fail-fast: an earlier sync failed"
                    outcomes.append(outcome)
                    continue
                rs = resolved[decision.spec.name]
                if command == "plan":
                    _plan_counts(inv, reader, state, rs, saved, decision, outcome)
                else:
                    reporter.sync_started(outcome)
                    await _run_one(inv, reader, state, rs, saved, decision, outcome, limiters, reporter)
                    reporter.sync_finished(outcome)
                failed = failed or outcome.status == "error"
                outcomes.append(outcome)

        asyncio.run(run_all())
        result = InvocationResult(inv.run_id, command, plan.notice, outcomes)
        inv.write_results(result)
        return result
    finally:
        reader.close()
        writer.close()


def _everything(decision: Decision, saved: Mapping[str, Any], rs: ResolvedSync) -> bool:
    record = saved.get(rs.spec.name)
    return decision.full_resync or (record is not None and record.fields_signature not in ("", fields_signature(rs)))


def _plan_counts(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
                 saved: Mapping[str, Any], decision: Decision, outcome: SyncOutcome) -> None:
    exists = reader.query(inv.dialect.columns_query(),
                          [inv.state_schema, snapshot_table_name(rs.spec.name), None, None])
    d = inv.dialect
    snapshot = (state.table(snapshot_table_name(rs.spec.name)) if exists else
                f"(select cast(null as {d.key_type}) as sync_key, cast(null as varchar(32)) as fingerprint, "
                f"cast(null as {d.text_type}) as record_identity where 1 = 0)")
    sql = inv.diff_sql(rs, snapshot, everything=_everything(decision, saved, rs))
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


async def _run_one(inv: Invocation, reader: WarehouseConnection, state: StateStore, rs: ResolvedSync,
             saved: Mapping[str, Any], decision: Decision, outcome: SyncOutcome,
             limiters: dict[str, RateLimiter], reporter: Reporter) -> None:
    spec = rs.spec
    started, started_at = time.monotonic(), datetime.now(timezone.utc)
    destination: Destination = inv.destinations.build(spec.destination)
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
            sql = inv.diff_sql(rs, snapshot, everything=_everything(decision, saved, rs))
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
    keep_hash = previous.saved.config_hash if (previous and not complete) else spec.config_hash
    keep_signature = previous.fields_signature if (previous and not complete) else fields_signature(rs)
    try:
        state.finish(row, config_hash=keep_hash if complete or previous else "",
                     fields_signature=keep_signature if complete or previous else "", complete=complete)
    except ActivateError as exc:
        outcome.status = "error"
        outcome.error = outcome.error or inv.redactor(str(exc))


async def _deliver(destination: Destination, target: SyncTarget, pipeline: Pipeline, sql: str) -> Any:
    try:
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
