"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> BrazeEmulator over HTTP.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds Braze users identified by ``customer_id`` as their external_id, runs the real CLI, and
compares what the emulator holds with the model, formatted as Braze stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.destinations.braze.payload import braze_values
from dbt_activate.testing import Fault
from dbt_activate.testing.braze.emulator import BrazeEmulator
from tests.e2e.project import COLUMNS, Project, customer
from tests.e2e.vendor_runs import changed

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

KEY = "braze-e2e-key-0f1e2d3c4b5a69788796a5b4"
SEGMENT = "country in ('FR', 'GB')"
SYNC = "customers_braze"


@pytest.fixture
def emu() -> Iterator[BrazeEmulator]:
    with BrazeEmulator(token=KEY) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def activate(mode: str, obj: str = "users", **extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "engage", "object": obj, "mode": mode, "primary_key": "customer_id", "where": SEGMENT,
             "name": SYNC, **extra}]


def destinations(emu: BrazeEmulator, **config: Any) -> dict[str, Any]:
    return {"engage": {"type": "braze", "api_key": KEY, "base_url": emu.base_url, "timeout": 10, **config}}


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of(SYNC)


def model_as_braze(project: Project) -> dict[str, dict[str, Any]]:
    """The segment's rows as Braze stores them: by external_id, NULLs absent, times ISO 8601 UTC."""
    out: dict[str, dict[str, Any]] = {}
    for row in project.model_rows(where=SEGMENT):
        values = dict(zip(COLUMNS, row, strict=True))
        attributes = braze_values(values, exclude=("customer_id",))
        out[str(values["customer_id"])] = {k: v for k, v in attributes.items() if v is not None}
    return out


def users(emu: BrazeEmulator) -> dict[str, dict[str, Any]]:
    return {u["external_id"]: emu.user(u["external_id"]) or {} for u in emu.records()}


def mutate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rename 6 and 9; delete 1 and 4; add 100 and 102; move 3 (FR) out of the segment."""
    return changed(rows, renamed=(6, 9), deleted=(1, 4), added=(100, 102), moved_out=(3,))


def test_mirror_makes_braze_equal_the_model(project: Project, emu: BrazeEmulator) -> None:
    rows = [customer(i) for i in range(1, 41)]
    project.write(rows, activate("mirror"), destinations(emu))
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["sent"] == len(model_as_braze(project))
    assert users(emu) == model_as_braze(project)
    project.write_rows(mutate(rows))
    project.dbt("build")
    second = sync(project)
    assert users(emu) == model_as_braze(project)  # 1, 3 and 4 deleted through /users/delete
    assert second["counts"]["removed"] == 3
    assert sync(project)["counts"]["sent"] == 0


@pytest.mark.slow
def test_append_records_an_event_per_change(project: Project, emu: BrazeEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    project.write(rows, activate("append", obj="customer_changed"), destinations(emu))
    project.dbt("build")
    first = sync(project)
    project.write_rows(mutate(rows))
    project.dbt("build")
    second = sync(project)
    assert len(emu.events) == first["counts"]["sent"] + second["counts"]["sent"]
    assert {e["name"] for e in emu.events} == {"customer_changed"}
    renamed = [e for e in emu.events if e["properties"]["full_name"] == "Renamed 6"]
    assert len(renamed) == 1 and renamed[0]["external_id"] == "6"
    assert renamed[0]["properties"]["signup_date"] == "2024-01-07T00:00:00Z"


@pytest.mark.slow
def test_a_minor_error_rejects_one_row_and_the_next_run_sends_only_it(project: Project, emu: BrazeEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    project.write(rows, activate("upsert"), destinations(emu))
    project.dbt("build")
    emu.inject(Fault("partial", fail_indexes=(0,)))
    result = sync(project, expect_exit=1)
    assert result["status"] == "partial"
    assert result["counts"]["rejected"] == 1
    assert result["rejected_samples"][0]["reason"] == "injected failure"
    assert len(users(emu)) == len(model_as_braze(project)) - 1
    again = sync(project)
    assert again["counts"]["sent"] == 1
    assert users(emu) == model_as_braze(project)


@pytest.mark.slow
def test_throttling_waits_for_the_reset_and_every_row_arrives(project: Project, emu: BrazeEmulator) -> None:
    emu.rate_limit = (3, 1.0)  # the workspace allows less than destinations.yml claims
    rows = [customer(i) for i in range(1, 46)]
    project.write(rows, activate("upsert"), destinations(emu, batch_size=5, rate_limit={"requests": 20,
                                                                                        "per_seconds": 1}))
    project.dbt("build")
    result = sync(project)
    assert emu.counters.throttled > 0
    assert result["counts"]["sent"] == len(model_as_braze(project))
    assert users(emu) == model_as_braze(project)
    assert KEY not in (project.root / "target" / "activate_results.json").read_text()
