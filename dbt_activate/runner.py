"""The flow of a run. ``run()``: load -> plan -> resolve -> each sync -> alerts -> results.
``run_sync(sync)``: lock -> replay -> diff -> stream -> deliver -> checkpoint -> finish.

Nothing is sent before every selected sync has been validated against the manifest, destinations.yml
and the relation's columns: a configuration error stops the run before the first record leaves.
Every event goes through the ``Reporter`` (core/outcomes.py); this module never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dbt_activate import alerts, crashpoints
from dbt_activate.core.interruption import Interruption
from dbt_activate.core.order import explain
from dbt_activate.core.outcomes import InvocationResult, Reporter, SilentReporter, SyncOutcome
from dbt_activate.core.types import RateLimit
from dbt_activate.core.wording import plural
from dbt_activate.dbt import invocations, quarantine
from dbt_activate.delivery import RateLimiter, TlsSettings, using_limiter, using_tls
from dbt_activate.destinations.base import Destination
from dbt_activate.diff import WarehouseSource, needs_everything, plan_counts, row_layout
from dbt_activate.errors import ActivateError, ConfigError, WarehouseError
from dbt_activate.invocation import Invocation, RunOptions
from dbt_activate.links import Link, Links
from dbt_activate.planner import Decision
from dbt_activate.spec import ResolvedSync, check_where
from dbt_activate.state.journal import Journal
from dbt_activate.state.runs import last_runs
from dbt_activate.state.store import RunRow, SyncRecord, WarehouseStateStore
from dbt_activate.stream import Stream, StreamResult
from dbt_activate.sync import Chunks, Sync
from dbt_activate.warehouse.connection import WarehouseConnection

# --- run(): the invocation ------------------------------------------------------------------------


def run(options: RunOptions, reporter: Reporter | None = None, *, command: str = "run",
        interruption: Interruption | None = None) -> InvocationResult:
    """`dbt-activate run` (or `plan` with command='plan', which sends nothing and writes no state).

    While syncs run, SIGINT and SIGTERM go to ``interruption`` (``core/interruption.py``): the run
    stops taking batches, saves what was acknowledged and returns its result with the signal's exit code.
    """
    reporter = reporter or SilentReporter()
    inv = Invocation(options, command=command, reporter=reporter)  # load
    writer, reader = inv.connect("activate_state"), inv.connect("activate_reader")
    try:
        state = WarehouseStateStore(writer, inv.state_schema, lock_connection=lambda: inv.connect("activate_lock"))
        saved = _saved_syncs(inv, writer, state)
        plan = inv.plan(saved)  # plan
        runs = _Run(inv, reader, state, saved, reporter, interruption or Interruption())
        runs.resolve(plan.to_run)  # resolve
        notices = [n for n in (inv.target_notice, plan.notice) if n]
        outcomes = [_outcome(d, "skipped") for d in plan.skipped]
        # The status each sync had before this run, for `recovered` alerts.
        previous = ({name: r.status for name, r in last_runs(writer, inv.state_schema).items()}
                    if command == "run" and inv.alert_rules else {})

        async def each_sync() -> None:
            # One event loop for the whole invocation: rate limiters are shared by every sync
            # that writes to the same destination account.
            with runs.interruption.handling(asyncio.get_running_loop()):
                running = [d.spec.name for d in plan.to_run]
                for decision in inv.in_order(plan.to_run):
                    outcomes.append(await runs.one(decision, running, failed=_failed(outcomes)))
                if inv.alert_rules and command == "run" and not runs.interruption.immediate:  # alerts
                    undelivered = await alerts.announce(inv.destinations, inv.alert_rules, outcomes, previous,
                                                        inv.run_id)
                    notices.extend(inv.redactor(n) for n in undelivered)

        asyncio.run(each_sync())
        return _results(inv, notices, outcomes, runs.interruption)  # results
    finally:
        reader.close()
        writer.close()
        inv.close()


def _saved_syncs(inv: Invocation, writer: WarehouseConnection, state: WarehouseStateStore) -> dict[str, SyncRecord]:
    """What the state remembers of every sync; `plan` creates no state schema to find out."""
    if inv.options.from_warehouse:
        inv.results = invocations.latest(writer, inv.dialect, inv.state_schema)
    if inv.command == "run":
        state.ensure()
        return state.saved_syncs()
    exists = writer.columns(inv.state_schema, "activate_syncs")
    return state.saved_syncs() if exists else {}


def _failed(outcomes: list[SyncOutcome]) -> bool:
    return any(o.status == "error" for o in outcomes)


def _outcome(decision: Decision, status: str) -> SyncOutcome:
    s = decision.spec
    return SyncOutcome(s.name, s.model_name, s.destination, s.object, s.mode.value, status, decision.reason)


def _results(inv: Invocation, notices: list[str], outcomes: list[SyncOutcome],
             interruption: Interruption) -> InvocationResult:
    if interruption.requested:
        notices.append(f"Interrupted by {interruption.name}: what the destinations acknowledged is saved, "
                       "and the next `dbt-activate run` resumes the rest.")
    result = InvocationResult(inv.run_id, inv.command, " ".join(notices) or None, outcomes,
                              interrupted_by=interruption.signum)
    inv.write_results(result)
    return result


@dataclass
class _Run:
    """The syncs of one invocation: each validated before any is sent, then planned or run in order."""

    inv: Invocation
    reader: WarehouseConnection
    state: WarehouseStateStore
    saved: Mapping[str, SyncRecord]
    reporter: Reporter
    interruption: Interruption
    resolved: dict[str, ResolvedSync] = field(default_factory=dict)
    refused: dict[str, ConfigError] = field(default_factory=dict)
    held_back: dict[str, quarantine.HeldBack] = field(default_factory=dict)  # sync -> its quarantined rows
    limiters: dict[str, RateLimiter] = field(default_factory=dict)  # destination -> its account's limiter

    def resolve(self, decisions: tuple[Decision, ...]) -> None:
        """Validate every sync that will run before anything is sent. A `where` the warehouse refuses
        is that sync's configuration error (exit 2): the other syncs are planned or run as usual."""
        self.resolved = {d.spec.name: self.inv.resolve(self.reader, d.spec) for d in decisions}
        for d in decisions:
            try:
                check_where(d.spec, self.reader)
            except ConfigError as exc:
                self.refused[d.spec.name] = exc
        for d in decisions:
            if d.quarantine and d.spec.name not in self.refused:
                self.held_back[d.spec.name] = quarantine.hold_back(self.reader, self.inv.dialect,
                                                                   self.resolved[d.spec.name], d.quarantine)

    async def one(self, decision: Decision, running: list[str], *, failed: bool) -> SyncOutcome:
        inv, name = self.inv, decision.spec.name
        outcome = _outcome(decision, "planned")
        if runs_after := explain(name, inv.dependencies, running):
            outcome.reason, outcome.runs_after = f"{outcome.reason}; {runs_after}", runs_after
        if (held := self.held_back.get(name)) is not None:
            outcome.reason, outcome.quarantined = f"{outcome.reason}; {held.reason}", held.rows
        if self.interruption.requested:
            outcome.status = "skipped"
            outcome.reason = f"{self.interruption.name} received before it started: the next run syncs it"
        elif failed and inv.options.fail_fast:
            outcome.status, outcome.reason = "skipped", "--fail-fast: an earlier sync failed"
        elif (bad := self.refused.get(name)) is not None:
            outcome.status, outcome.error, outcome.config_error = "error", inv.redactor(str(bad)), True
            if inv.command == "run":
                self.reporter.sync_started(outcome)
                self.reporter.sync_finished(outcome)
        elif inv.command == "plan":
            resolved = self.resolved[name]
            plan_counts(WarehouseSource(self.reader, resolved, self.held_back.get(name)), self.state, decision,
                        self.saved.get(name), inv.destinations.build(decision.spec.destination),
                        inv.target_of(resolved), outcome, samples=inv.options.samples, redact=inv.redactor)
        else:
            self.reporter.sync_started(outcome)
            await run_sync(self.sync_of(decision), outcome)
            self.reporter.sync_finished(outcome)
        return outcome

    def sync_of(self, decision: Decision) -> Sync:
        inv, spec = self.inv, decision.spec
        resolved = self.resolved[spec.name]
        destination: Destination = inv.destinations.build(spec.destination)
        if destination.uses_id_store:
            destination.id_store = inv.id_store(spec.destination)
        target = inv.target_of(resolved)
        return Sync(
            resolved=resolved, decision=decision, target=target, destination=destination,
            layout=row_layout(resolved, destination, target),
            source=WarehouseSource(self.reader, resolved, self.held_back.get(spec.name)), state=self.state,
            journal=Journal(inv.paths.target_path / "activate" / "journal", spec.name), run_id=inv.run_id,
            previous=self.saved.get(spec.name), limiter=self._limiter(spec.destination, destination),
            links=_links(inv, resolved, destination), tunables=inv.options.tunables,
            lock_timeout=inv.options.lock_timeout, interruption=self.interruption, reporter=self.reporter,
            redact=inv.redactor, dbt_invocation_id=inv.results.invocation_id if inv.results else "")

    def _limiter(self, name: str, destination: Destination) -> RateLimiter | None:
        limiter = self.limiters.get(name)
        if limiter is None and (rate := _rate_limit(destination)) is not None:
            limiter = self.limiters[name] = RateLimiter(RateLimit(*rate))
        return limiter


def _links(inv: Invocation, rs: ResolvedSync, destination: Destination) -> Links | None:
    """Resolve the sync's references; keep its record ids when other syncs reference it (links.py)."""
    name = rs.spec.name
    referenced = any(r.sync == name for s in inv.specs for r in s.references)
    if not destination.references or not (referenced or rs.spec.references):
        return None
    links = [Link(r.relationship, r.sync) for r in rs.spec.references]
    return Links(name, links, inv.id_store(rs.spec.destination), keep_ids=referenced)


def _rate_limit(destination: Destination) -> tuple[int, float] | None:
    configured = destination.config.get("rate_limit")
    if isinstance(configured, dict) and configured.get("requests"):
        return int(configured["requests"]), float(configured.get("per_seconds", 1))
    if destination.rate_limit is not None:
        return destination.rate_limit.requests, destination.rate_limit.per_seconds
    return None


# --- run_sync(): one sync -------------------------------------------------------------------------


async def run_sync(sync: Sync, outcome: SyncOutcome | None = None) -> SyncOutcome:
    """Run one sync while holding its lock; a sync another run holds is not touched.

    The state is never ahead of the destination: acknowledged rows reach the journal, the journal
    reaches the state at checkpoints, and a run that died is replayed from the journal first.
    """
    outcome = outcome or _outcome(sync.decision, "planned")
    async with _locked(sync, outcome) as held:  # lock
        if not held:
            return outcome
        started, started_at = time.monotonic(), _now()
        stream = Stream(sync)
        try:
            _replay(sync, stream, outcome)  # replay
            rows, duplicate_keys = _diff(sync)  # diff
            await _deliver(sync, stream, rows, duplicate_keys)  # stream -> deliver
            await stream.checkpoint()  # checkpoint
            error = _stopped(sync, stream.result, outcome)
        except ActivateError as exc:
            error = exc
        _finish(sync, outcome, error, time.monotonic() - started, started_at)  # finish
    return outcome


@asynccontextmanager
async def _locked(sync: Sync, outcome: SyncOutcome) -> AsyncIterator[bool]:
    """The sync's lock (``state/locks.py``); False, with the outcome's error, when another run holds it."""
    lock = sync.state.lock(sync.name, sync.run_id, ttl=sync.tunables.lock_ttl)
    try:
        await asyncio.to_thread(lock.acquire, sync.lock_timeout, on_wait=sync.reporter.warning)
    except ActivateError as exc:
        lock.close()
        outcome.status, outcome.error = "error", sync.redact(str(exc))
        yield False
        return
    try:
        yield True
    finally:
        # A failed release is harmless: the lock expires on its own; the sync itself is recorded.
        with contextlib.suppress(ActivateError):
            await asyncio.to_thread(lock.release)
        lock.close()


def _replay(sync: Sync, stream: Stream, outcome: SyncOutcome) -> None:
    """Apply what a killed run journaled; say how many of its records were in flight unanswered."""
    stream.replay_leftovers()
    if records := stream.result.unconfirmed:
        mode = sync.spec.mode.value
        effect = (f"mode {mode} cannot tell them apart, so the destination may now hold up to {records} of them "
                  f"twice" if mode in ("create", "append") else f"harmless: mode {mode} writes them idempotently")
        note = (f"the previous run stopped with {records} records sent but not confirmed; they are sent again "
                f"({effect})")
        outcome.reason = f"{outcome.reason}; {note}"
        sync.reporter.warning(f"{sync.name}: {note}")
    crashpoints.reached("sync.replayed")


def _diff(sync: Sync) -> tuple[Chunks, Mapping[str, int]]:
    """A first sync sends the whole model; a later one what changed since the snapshot (diff.py)."""
    if sync.links is not None:  # children of deleted parents: sent again, unlinked (links.py)
        sync.links.take_orphans(lambda keys: sync.state.resend(sync.name, keys))
    snapshot = sync.state.snapshot(sync.name)
    if not sync.state.is_empty(snapshot):
        everything = needs_everything(sync.decision, sync.previous, sync.resolved)
        return sync.source.rows(snapshot, everything=everything), {}
    duplicate_keys = sync.source.duplicate_keys()
    # A first sync sends every row: counting them is cheap and gives the progress bar an ETA.
    sync.reporter.sync_total(sync.name, sync.source.row_count())
    return sync.source.rows(None, everything=True), duplicate_keys


async def _deliver(sync: Sync, stream: Stream, rows: Chunks, duplicate_keys: Mapping[str, int]) -> StreamResult:
    destination = sync.destination
    try:
        with using_tls(TlsSettings.of_config(destination.config)):  # every session, now or in a batch's task
            # open() may call the vendor (field lookups): it waits for the same rate limiter.
            with using_limiter(sync.limiter):
                await destination.open(sync.target)
            return await stream.run(rows, duplicate_keys)
    finally:
        await destination.close()


def _stopped(sync: Sync, result: StreamResult, outcome: SyncOutcome) -> ActivateError | None:
    """The error that stopped the sync, if one did (a stop request is one: the rest is not sent)."""
    outcome.counts, outcome.rejected_samples = result.counts, result.rejected_samples
    if result.error is None and result.interrupted:
        rest = ("run `dbt-activate run --full-resync` again to resend the rows this one did not reach"
                if sync.decision.full_resync else "the next run sends the rest")
        return ActivateError(f"interrupted by {sync.interruption.name} after {plural(outcome.counts.sent, 'record')} "
                             f"sent and acknowledged, which are saved; {rest}")
    return result.error


def _finish(sync: Sync, outcome: SyncOutcome, error: ActivateError | None, duration: float,
            started_at: str) -> None:
    """Record the run in the state (sync_runs, activate_syncs) and settle the outcome."""
    spec = sync.spec
    outcome.duration = duration
    outcome.status = "error" if error else ("partial" if outcome.counts.rejected else "success")
    outcome.error = sync.redact(_with_advice(error, sync.journal)) if error else None
    outcome.config_error = isinstance(error, ConfigError)
    complete = error is None
    row = RunRow(
        run_id=sync.run_id, dbt_invocation_id=sync.dbt_invocation_id, sync_name=spec.name, model=spec.model_name,
        destination=spec.destination, object=spec.object, mode=spec.mode.value, status=outcome.status,
        started_at=started_at, finished_at=_now(), duration_seconds=outcome.duration,
        counts=outcome.counts.as_columns(), error=outcome.error)
    # An incomplete run keeps what the last complete run saved, so the next run still sees a
    # changed activate block or field mapping; a sync that never completed stays "new".
    if complete:
        config_hash, signature = spec.config_hash, sync.resolved.fields_signature
    elif sync.previous is not None:
        config_hash, signature = sync.previous.saved.config_hash, sync.previous.fields_signature
    else:
        config_hash, signature = "", ""
    crashpoints.reached("state.finish")
    try:
        sync.state.finish(row, config_hash=config_hash, fields_signature=signature, complete=complete)
    except ActivateError as exc:
        outcome.status = "error"
        outcome.error = outcome.error or sync.redact(str(exc))
    crashpoints.reached("state.finished")


def _with_advice(error: ActivateError, journal: Journal) -> str:
    """A lost warehouse connection: say that nothing acknowledged is lost, and what to do."""
    if not isinstance(error, WarehouseError):
        return str(error)
    return (f"{error}. Nothing the destination acknowledged is lost: it is kept in {journal.directory} and "
            "applied to the state by the next run, which sends only the rest. Rerun `dbt-activate run` once "
            "the warehouse is reachable, with the same target/ directory (a fresh one resends the rows "
            "acknowledged since the last checkpoint; idempotent modes absorb that)")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
