"""Test gating: which results of a model's dbt tests block its syncs, and which rows are quarantined.

Pure: reads the manifest and run results, no IO. Per sync, ``gate`` says which test statuses block
(``error``: a test that failed or could not run; ``warn``: also a test that warned; ``none``: tests
never block) and ``quarantine: true`` turns a blocking test that stored its failing rows
(``store_failures: true``) into a list of rows to hold back instead: the sync runs without the rows
whose primary key is in that test's failures table (see quarantine.py for the SQL).

A test attaches to the model it is declared on (the manifest's ``attached_node``) or, without one
(a singular test), to every model it depends on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dbt_activate.dbt.artifacts import Manifest, RunResults
from dbt_activate.spec import SyncSpec

# Test statuses that block a sync, per gate. dbt writes pass, fail, warn, error or skipped for a test.
BLOCKING_STATUSES: Mapping[str, frozenset[str]] = {
    "error": frozenset({"fail", "error"}),
    "warn": frozenset({"fail", "error", "warn"}),
    "none": frozenset(),
}


@dataclass(frozen=True)
class TestResult:
    """A test of a model in the last invocation."""

    __test__ = False  # not a pytest test class

    unique_id: str
    name: str
    status: str
    failures_relation: str | None = None  # its store_failures table, when it stored its failures
    column_name: str | None = None  # the column a column-level test is declared on


@dataclass(frozen=True)
class Quarantine:
    """The failing rows of one test, to hold back from a sync by primary key."""

    test: str
    relation: str
    column_name: str | None = None


def tests_by_model(manifest: Manifest, results: RunResults) -> dict[str, list[TestResult]]:
    """model unique_id -> the results of its tests in ``results``."""
    by_model: dict[str, list[TestResult]] = {}
    for uid, status in results.statuses.items():
        test = manifest.tests.get(uid)
        if test is None:
            continue
        # The invocation's own relation first: the manifest may come from another `dbt parse`.
        relation = results.relations.get(uid) or test.relation_name
        outcome = TestResult(uid, test.name, status, relation, test.column_name)
        for model_id in test.tested_models:
            by_model.setdefault(model_id, []).append(outcome)
    return by_model


def _names(tests: Sequence[TestResult]) -> str:
    return ", ".join(sorted(t.name if t.status == "fail" else f"{t.name} ({t.status})" for t in tests))


def gate(spec: SyncSpec, tests: Sequence[TestResult]) -> tuple[str | None, tuple[Quarantine, ...]]:
    """(why the sync is blocked, or None; the quarantines it runs with)."""
    blocking = [t for t in tests if t.status in BLOCKING_STATUSES[spec.gate]]
    if not blocking:
        return None, ()
    if not spec.quarantine:
        return f"tests failed on model {spec.model_name}: {_names(blocking)}", ()
    # A test that errored ran no query, so it listed no rows: nothing to hold back, the sync waits.
    held = [t for t in blocking if t.status != "error" and t.failures_relation]
    unheld = [t for t in blocking if t not in held]
    if unheld:
        return (f"tests failed on model {spec.model_name}: {_names(unheld)} (quarantine needs tests that ran "
                "with `store_failures: true`)"), ()
    return None, tuple(Quarantine(t.name, str(t.failures_relation), t.column_name)
                       for t in sorted(held, key=lambda t: t.name))
