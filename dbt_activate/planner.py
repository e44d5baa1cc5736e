"""Which syncs run, and why the others do not (DESIGN §4.1). Pure: no IO, no clock.

A sync runs when its model was rebuilt successfully in the last dbt invocation, when its `activate`
block is new or changed since its last run, when it has rejected rows waiting for a retry, or with
``--all`` / ``--full-resync``. A model whose build failed or was skipped, or whose tests failed in
that invocation, is never synced: stale or half-built data never leaves the warehouse.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dbt_activate.artifacts import FAILED_TEST_STATUSES, REBUILT_STATUS, Manifest, RunResults
from dbt_activate.spec import SyncSpec

# Commands whose run_results tell whether models or their tests failed.
_COMMANDS_WITH_FAILURES = frozenset({"build", "run", "test"})


@dataclass(frozen=True)
class SavedSync:
    """What the state schema remembers of a sync."""

    config_hash: str
    pending_retries: int = 0


@dataclass(frozen=True)
class Decision:
    spec: SyncSpec
    run: bool
    reason: str
    full_resync: bool = False


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


# --- selection --------------------------------------------------------------------------------------


def _matches(term: str, spec: SyncSpec) -> bool:
    method, _, value = term.partition(":") if ":" in term else ("", "", term)
    if method == "tag":
        return any(fnmatch.fnmatchcase(t, value) for t in spec.tags)
    if method == "path" or (not method and ("/" in value or value.endswith(".sql"))):
        path = spec.path.rstrip("/")
        return path == value.rstrip("/") or path.startswith(value.rstrip("/") + "/") or fnmatch.fnmatchcase(
            path, value)
    if method == "destination":
        return fnmatch.fnmatchcase(spec.destination, value)
    if method == "sync":
        return fnmatch.fnmatchcase(spec.name, value)
    if method in ("model", ""):
        return fnmatch.fnmatchcase(spec.model_name, value) or (
            not method and fnmatch.fnmatchcase(spec.name, value))
    return False


def _selected_by(terms: Sequence[str], spec: SyncSpec) -> bool:
    """dbt semantics: space-separated terms are a union; comma-joined parts an intersection."""
    return any(all(_matches(part, spec) for part in term.split(",") if part) for term in terms)


def _split(selectors: Iterable[str]) -> list[str]:
    return [t for s in selectors for t in s.split() if t]


def unknown_selector_methods(selectors: Iterable[str]) -> list[str]:
    known = {"", "tag", "path", "destination", "sync", "model"}
    return [t for t in _split(selectors) for part in t.split(",")
            if ":" in part and part.split(":", 1)[0] not in known]


def select(specs: Sequence[SyncSpec], select: Sequence[str], exclude: Sequence[str]) -> list[SyncSpec]:
    include_terms, exclude_terms = _split(select), _split(exclude)
    return [s for s in specs
            if (not include_terms or _selected_by(include_terms, s))
            and not (exclude_terms and _selected_by(exclude_terms, s))]


# --- decisions --------------------------------------------------------------------------------------


def _failed_tests_by_model(manifest: Manifest, results: RunResults) -> dict[str, list[str]]:
    failed: dict[str, list[str]] = {}
    for uid, status in results.statuses.items():
        test = manifest.tests.get(uid)
        if test is None or status not in FAILED_TEST_STATUSES:
            continue
        for model_id in test.tested_models:
            failed.setdefault(model_id, []).append(test.name)
    return failed


def _blocked_reason(spec: SyncSpec, results: RunResults, failed_tests: Mapping[str, list[str]]) -> str | None:
    """Why this sync's data must not leave the warehouse, if it must not."""
    if results.command not in _COMMANDS_WITH_FAILURES:
        return None
    status = results.statuses.get(spec.model_id)
    if status == "error":
        message = results.messages.get(spec.model_id, "").splitlines()
        detail = f": {message[0]}" if message else ""
        return f"model {spec.model_name} failed to build in the last `dbt {results.command}`{detail}"
    if status == "skipped":
        return f"model {spec.model_name} was skipped in the last `dbt {results.command}` (an upstream node failed)"
    tests = failed_tests.get(spec.model_id)
    if tests:
        return f"tests failed on model {spec.model_name}: {', '.join(sorted(tests))}"
    return None


def decide(
    spec: SyncSpec,
    results: RunResults | None,
    failed_tests: Mapping[str, list[str]],
    saved: SavedSync | None,
    *,
    run_all: bool,
    full_resync: bool,
) -> Decision:
    if results is not None:
        blocked = _blocked_reason(spec, results, failed_tests)
        if blocked:
            return Decision(spec, False, blocked)
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
) -> Plan:
    chosen = select(specs, select_terms, exclude_terms)
    failed_tests = _failed_tests_by_model(manifest, results) if results is not None else {}
    notice = None
    if results is not None and not results.is_build:
        notice = (f"The last dbt command was `{results.command or 'unknown'}`, not `dbt build` or `dbt run`: "
                  "its run_results do not say which models were rebuilt. Nothing is synced unless --all.")
    decisions = tuple(
        decide(s, results, failed_tests, saved.get(s.name), run_all=run_all, full_resync=full_resync)
        for s in chosen
    )
    return Plan(decisions=decisions, not_selected=len(specs) - len(chosen), notice=notice)
