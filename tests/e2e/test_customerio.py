"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> CustomerIOEmulator over HTTP.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds Customer.io people identified by ``customer_id`` as their ``id``, runs the real CLI, and
compares what the emulator holds with the model, formatted as Customer.io stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.destinations.customerio.payload import cio_attributes
from dbt_activate.testing.customerio.emulator import CustomerIOEmulator
from tests.e2e.project import COLUMNS, Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

SITE, KEY = "site-e2e-4b5a6978", "track-e2e-key-8796a5b40f1e2d3c"
SEGMENT = "country in ('FR', 'GB')"
SYNC = "customers_cio"


@pytest.fixture
def emu() -> Iterator[CustomerIOEmulator]:
    with CustomerIOEmulator(token=KEY, site_id=SITE) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def activate(mode: str, obj: str = "people", **extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "cio", "object": obj, "mode": mode, "primary_key": "customer_id", "where": SEGMENT,
             "name": SYNC, **extra}]


def destinations(emu: CustomerIOEmulator, **config: Any) -> dict[str, Any]:
    return {"cio": {"type": "customerio", "site_id": SITE, "api_key": KEY, "base_url": emu.base_url, "timeout": 10,
                    **config}}


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of(SYNC)


def model_as_cio(project: Project) -> dict[str, dict[str, Any]]:
    """The segment's rows as Customer.io stores them: by id, NULLs absent, times as Unix seconds."""
    out: dict[str, dict[str, Any]] = {}
    for row in project.model_rows(where=SEGMENT):
        values = dict(zip(COLUMNS, row, strict=True))
        attributes = cio_attributes(values, exclude=("customer_id",))
        out[str(values["customer_id"])] = {k: v for k, v in attributes.items() if v != ""}
    return out


def people(emu: CustomerIOEmulator) -> dict[str, dict[str, Any]]:
    return {p["id"]: {k: v for k, v in p.items() if k not in ("id", "cio_id")} for p in emu.records()}


def test_mirror_makes_customer_io_equal_the_model(project: Project, emu: CustomerIOEmulator) -> None:
    rows = [customer(i) for i in range(1, 41)]
    rows[4]["full_name"] = None  # a NULL is an absent attribute
    project.write(rows, activate("mirror"), destinations(emu))
    project.dbt("build")
    assert sync(project)["counts"]["sent"] == len(model_as_cio(project))
    assert people(emu) == model_as_cio(project)
    changed = {r["customer_id"]: dict(r) for r in rows}
    changed[7]["full_name"] = "Renamed 7"
    del changed[1], changed[4]
    changed[3]["country"] = "RU"
    project.write_rows(list(changed.values()))
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["removed"] == 3
    assert people(emu) == model_as_cio(project)
    assert people(emu)["7"]["updated_at"] == 1749377220  # 2025-06-08 10:07:00 UTC as Unix seconds


@pytest.mark.slow
def test_append_sends_each_change_as_an_event(project: Project, emu: CustomerIOEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    project.write(rows, activate("append", obj="customer_changed"), destinations(emu))
    project.dbt("build")
    first = sync(project)
    rows[5]["full_name"] = "Renamed 6"
    project.write_rows(rows)
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["sent"] == 1
    assert len(emu.events) == first["counts"]["sent"] + 1
    assert emu.events[-1]["identifiers"] == {"id": "6"} and emu.events[-1]["attributes"]["full_name"] == "Renamed 6"
    assert len({e["id"] for e in emu.events}) == len(emu.events)
    assert emu.people == {}


@pytest.mark.slow
def test_a_refused_row_is_rejected_with_the_reason_and_the_next_run_sends_only_it(
        project: Project, emu: CustomerIOEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    rows[3]["full_name"] = "x" * 1500  # customer 4 (GB): over Customer.io's 1000-byte attribute value limit
    project.write(rows, activate("upsert"), destinations(emu))
    project.dbt("build")
    result = sync(project, expect_exit=1)
    assert result["status"] == "partial"
    assert result["rejected_samples"] == [
        {"key": "4", "reason": "value for attribute 'full_name' cannot be longer than 1000 bytes"}]
    assert set(people(emu)) == set(model_as_cio(project)) - {"4"}
    rows[3]["full_name"] = "Customer 4"
    project.write_rows(rows)
    project.dbt("build")
    assert sync(project)["counts"]["sent"] == 1
    assert people(emu) == model_as_cio(project)
    assert KEY not in (project.root / "target" / "activate_results.json").read_text()
