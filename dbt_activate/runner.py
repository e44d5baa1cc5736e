"""Sequences one invocation: artifacts -> specs -> plan -> per sync (diff, extract, deliver, record).

Nothing is sent before every selected sync has been validated against the manifest, destinations.yml
and the relation's columns: a configuration error stops the run before the first record leaves.
Progress is reported through a ``Reporter``; this module never prints.
"""

from __future__ import annotations

import asyncio

from dbt_activate import alerts, sync_run
from dbt_activate.core.interruption import Interruption
from dbt_activate.core.order import explain
from dbt_activate.core.outcomes import InvocationResult, Reporter, SilentReporter, SyncOutcome
from dbt_activate.dbt import invocations, quarantine
from dbt_activate.delivery import RateLimiter
from dbt_activate.errors import ConfigError
from dbt_activate.invocation import Invocation, RunOptions
from dbt_activate.planner import Decision
from dbt_activate.spec import (
    check_where,
)
from dbt_activate.state.runs import last_runs
from dbt_activate.state.store import StateStore
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Dialect


def _outcome(decision: Decision, status: str) -> SyncOutcome:
    s = decision.spec
    return SyncOutcome(s.name, s.model_name, s.destination, s.object, s.mode.value, status, decision.reason)


def _state_exists(conn: WarehouseConnection, dialect: Dialect, schema: str) -> bool:
    rows = conn.columns(schema, "activate_syncs")
    return bool(rows)


def run(options: RunOptions, reporter: Reporter | None = None, *, command: str = "run",
        interruption: Interruption | None = None) -> InvocationResult:
    """`dbt-activate run` (or `plan` with command='plan', which sends nothing and writes no state).

    While syncs run, SIGINT and SIGTERM go to ``interruption`` (``core/interruption.py``): the run
    stops taking batches, saves what was acknowledged and returns its result with the signal's exit code.
    """
    reporter = reporter or SilentReporter()
    inv = Invocation(options, command=command)
    inv.interruption = interruption or Interruption()
    writer = inv.connect("activate_state")
    reader = inv.connect("activate_reader")
    try:
        if options.from_warehouse:
            inv.results = invocations.latest(writer, inv.dialect, inv.state_schema)
        state = StateStore(writer, inv.state_schema)
        if command == "run":
            state.ensure()
            saved = state.saved_syncs()
        else:
            saved = state.saved_syncs() if _state_exists(writer, inv.dialect, inv.state_schema) else {}
        plan = inv.plan(saved)
        # The status each sync had before this run, for `recovered` alerts.
        previous = ({name: r.status for name, r in last_runs(writer, inv.state_schema).items()}
                    if command == "run" and inv.alert_rules else {})
        notices = [n for n in (inv.target_notice, plan.notice) if n]
        # Validate every sync that will run before anything is sent. A `where` the warehouse refuses
        # is that sync's configuration error (exit 2): the other syncs are planned or run as usual.
        resolved = {d.spec.name: inv.resolve(reader, d.spec) for d in plan.to_run}
        refused: dict[str, ConfigError] = {}
        for d in plan.to_run:
            try:
                check_where(d.spec, reader)
            except ConfigError as exc:
                refused[d.spec.name] = exc
        for d in plan.to_run:
            if d.quarantine and d.spec.name not in refused:
                inv.held_back[d.spec.name] = quarantine.hold_back(reader, inv.dialect, resolved[d.spec.name],
                                                                  d.quarantine)
        outcomes = [_outcome(d, "skipped") for d in plan.skipped]

        async def run_all() -> None:
            # One event loop for the whole invocation: rate limiters are shared by every sync
            # that writes to the same destination account.
            limiters: dict[str, RateLimiter] = {}
            failed = False
            running = [d.spec.name for d in plan.to_run]
            for decision in inv.in_order(plan.to_run):
                outcome = _outcome(decision, "planned")
                if runs_after := explain(decision.spec.name, inv.dependencies, running):
                    outcome.reason, outcome.runs_after = f"{outcome.reason}; {runs_after}", runs_after
                if (held := inv.held_back.get(decision.spec.name)) is not None:
                    outcome.reason, outcome.quarantined = f"{outcome.reason}; {held.reason}", held.rows
                if inv.interruption.requested:
                    outcome.status = "skipped"
                    outcome.reason = f"{inv.interruption.name} received before it started: the next run syncs it"
                    outcomes.append(outcome)
                    continue
                if failed and options.fail_fast:
                    outcome.status, outcome.reason = "skipped", "--fail-fast: an earlier sync failed"
                    outcomes.append(outcome)
                    continue
                rs = resolved[decision.spec.name]
                if (bad := refused.get(decision.spec.name)) is not None:
                    outcome.status, outcome.error, outcome.config_error = "error", inv.redactor(str(bad)), True
                    if command == "run":
                        reporter.sync_started(outcome)
                        reporter.sync_finished(outcome)
                elif command == "plan":
                    sync_run.plan_counts(inv, reader, state, rs, saved, decision, outcome)
                else:
                    reporter.sync_started(outcome)
                    await sync_run.run_one(inv, reader, state, rs, saved, decision, outcome, limiters, reporter)
                    reporter.sync_finished(outcome)
                failed = failed or outcome.status == "error"
                outcomes.append(outcome)
            if inv.alert_rules and command == "run" and not inv.interruption.immediate:
                undelivered = await alerts.announce(inv.destinations, inv.alert_rules, outcomes, previous,
                                                    inv.run_id)
                notices.extend(inv.redactor(n) for n in undelivered)

        async def interruptible() -> None:
            with inv.interruption.handling(asyncio.get_running_loop()):
                await run_all()

        asyncio.run(interruptible())
        if inv.interruption.requested:
            notices.append(f"Interrupted by {inv.interruption.name}: what the destinations acknowledged is saved, "
                           "and the next `dbt-activate run` resumes the rest.")
        result = InvocationResult(inv.run_id, command, " ".join(notices) or None, outcomes,
                                  interrupted_by=inv.interruption.signum)
        inv.write_results(result)
        return result
    finally:
        reader.close()
        writer.close()
        inv.close()
