"""Which syncs run, and why the others do not (DESIGN §4.1). Pure: no IO, no clock.

A sync runs when its model was rebuilt successfully in the last dbt invocation, when its `activate`
block is new or changed since its last run, when it has rejected rows waiting for a retry, or with
``--all`` / ``--full-resync``. A model whose build failed or was skipped, or whose tests failed in
that invocation, is never synced: stale or half-built data never leaves the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from dbt_activate.dbt import selectors as selectors_mod
from dbt_activate.dbt.artifacts import REBUILT_STATUS, Manifest, RunResults
from dbt_activate.dbt.gating import Quarantine, TestResult, gate, tests_by_model
from dbt_activate.spec import SyncSpec
from dbt_activate.state.store import SavedSync

# Commands whose run_results tell whether models or their tests failed.
_COMMANDS_WITH_FAILURES = frozenset({"build", "run", "test"})


@dataclass(frozen=True)
class Decision:
    spec: SyncSpec
    run: bool
    reason: str
    full_resync: bool = False
    quarantine: tuple[Quarantine, ...] = ()  # failing tests whose rows are held back (gating.py)


@dataclass(frozen=True)
class Plan:
    decisions: tuple[Decision, ...]
    not_selected: int
    notice: str | None = None  # said once, e.g. "the last dbt command was `docs`"

    @property
    def to_run(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.run)

    @property
    def skipped(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.run)


# --- selection (dbt's syntax, graph operators and state: live in selectors.py) ---------------------


def unknown_selector_methods(selectors: Iterable[str]) -> list[str]:
    return selectors_mod.unknown_methods(_split(selectors))


def _split(selectors: Iterable[str]) -> list[str]:
    return [t for s in selectors for t in s.split() if t]


def select(specs: Sequence[SyncSpec], select: Sequence[str], exclude: Sequence[str], *,
           manifest: Manifest | None = None,
           state: tuple[frozenset[str], frozenset[str]] | None = None) -> list[SyncSpec]:
    """``manifest`` enables graph operators (``+model``, ``model+``); ``state`` (modified, new model ids,
    from ``--state``) enables ``state:modified`` / ``state:new``."""
    graph = None
    if manifest is not None:
        graph = selectors_mod.Graph.of(manifest, *(state or (None, frozenset())))
    return selectors_mod.select(specs, _split(select), _split(exclude), graph)


def unmatched_selectors(specs: Sequence[SyncSpec], select_terms: Sequence[str], *,
                        manifest: Manifest | None = None,
                        state: tuple[frozenset[str], frozenset[str]] | None = None) -> list[str]:
    """The ``--select`` terms that match no sync, as dbt warns of a criterion that matches no node:
    a typo in a CI job would otherwise sync nothing without a word."""
    return [term for term in _split(select_terms)
            if not select(specs, [term], (), manifest=manifest, state=state)]


# --- decisions --------------------------------------------------------------------------------------


def _blocked_reason(spec: SyncSpec, results: RunResults, tests: Mapping[str, Sequence[TestResult]]
                    ) -> tuple[str | None, tuple[Quarantine, ...]]:
    """Why this sync's data must not leave the warehouse, if it must not; else the rows held back."""
    if results.command not in _COMMANDS_WITH_FAILURES:
        return None, ()
    status = results.statuses.get(spec.model_id)
    if status == "error":
        message = results.messages.get(spec.model_id, "").splitlines()
        detail = f": {message[0]}" if message else ""
        return f"model {spec.model_name} failed to build in the last `dbt {results.command}`{detail}", ()
    if status == "skipped":
        return (f"model {spec.model_name} was skipped in the last `dbt {results.command}` (an upstream node "
                "failed)"), ()
    return gate(spec, tests.get(spec.model_id, ()))


def decide(
    spec: SyncSpec,
    results: RunResults | None,
    tests: Mapping[str, Sequence[TestResult]],
    saved: SavedSync | None,
    *,
    run_all: bool,
    full_resync: bool,
) -> Decision:
    quarantine: tuple[Quarantine, ...] = ()
    if results is not None:
        blocked, quarantine = _blocked_reason(spec, results, tests)
        if blocked:
            return Decision(spec, False, blocked)
    decision = _decide_run(spec, results, saved, run_all=run_all, full_resync=full_resync)
    return replace(decision, quarantine=quarantine) if decision.run and quarantine else decision


def _decide_run(spec: SyncSpec, results: RunResults | None, saved: SavedSync | None, *, run_all: bool,
                full_resync: bool) -> Decision:
    if full_resync:
        return Decision(spec, True, "--full-resync: every row is sent again", full_resync=True)
    if run_all:
        return Decision(spec, True, "--all")
    assert results is not None, "without run_results only --all or --full-resync can run"
    if not results.is_build:
        return Decision(spec, False, f"the last dbt command was `{results.command or 'unknown'}`, not build/run")
    status = results.statuses.get(spec.model_id)
    if status == REBUILT_STATUS:
        return Decision(spec, True, f"model {spec.model_name} was rebuilt by `dbt {results.command}`")
    if saved is None:
        return Decision(spec, True, "new sync: never run before")
    if saved.config_hash != spec.config_hash:
        return Decision(spec, True, "its activate block changed since the last run")
    if saved.pending_retries:
        return Decision(spec, True, f"{saved.pending_retries} rejected row(s) waiting for retry")
    if status is None:
        return Decision(spec, False, f"model {spec.model_name} was not part of the last `dbt {results.command}`")
    return Decision(spec, False, f"model {spec.model_name} was not rebuilt (status: {status})")


def _with_rename_hint(decision: Decision, saved: Mapping[str, SavedSync], declared: set[str]) -> Decision:
    """A sync never run before while a saved sync of the same model and destination is no longer declared:
    most likely the same sync under a new default name (`<model>__<destination>__<object>` changes with
    `object`), which would resend every row and leave the old destination object behind."""
    spec = decision.spec
    if spec.name in saved:
        return decision
    gone = sorted(name for name, s in saved.items()
                  if name not in declared and s.model == spec.model_name and s.destination == spec.destination)
    if not gone:
        return decision
    was = ", ".join(f"{name} (object {saved[name].object})" if saved[name].object else name for name in gone)
    names = " or ".join(f"`name: {name}`" for name in gone)
    return replace(decision, reason=f"{decision.reason}; new sync while {was} of the same model and destination "
                                    f"is no longer declared: renamed? set {names} to keep its state")


def make_plan(
    specs: Sequence[SyncSpec],
    manifest: Manifest,
    results: RunResults | None,
    saved: Mapping[str, SavedSync],
    *,
    select_terms: Sequence[str] = (),
    exclude_terms: Sequence[str] = (),
    run_all: bool = False,
    full_resync: bool = False,
    state: tuple[frozenset[str], frozenset[str]] | None = None,
) -> Plan:
    chosen = select(specs, select_terms, exclude_terms, manifest=manifest, state=state)
    tests = tests_by_model(manifest, results) if results is not None else {}
    notice = None
    if results is not None and not results.is_build:
        notice = (f"The last dbt command was `{results.command or 'unknown'}`, not `dbt build` or `dbt run`: "
                  "its run_results do not say which models were rebuilt. Nothing is synced unless --all.")
    decisions = tuple(
        _with_rename_hint(decide(s, results, tests, saved.get(s.name), run_all=run_all, full_resync=full_resync),
                          saved, {s.name for s in specs})
        for s in chosen
    )
    return Plan(decisions=decisions, not_selected=len(specs) - len(chosen), notice=notice)
