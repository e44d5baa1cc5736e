"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> GoogleSheetsEmulator over HTTP.

The service account is a throwaway RSA key the emulator trusts; its key file's ``token_uri`` points
at the emulator, so the CLI signs a real JWT and exchanges it for a token before writing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.destinations.google_sheets.values import cell_value
from dbt_activate.testing.google_sheets.emulator import GoogleSheetsEmulator
from tests.e2e.project import COLUMNS, Project, customer
from tests.e2e.vendor_runs import changed

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

SEGMENT = "country in ('FR', 'GB')"
TAB = "Customers FR/GB"  # a space and a slash: quoted in A1 notation and in the URL


@pytest.fixture
def emu() -> Iterator[GoogleSheetsEmulator]:
    with GoogleSheetsEmulator() as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def setup(project: Project, emu: GoogleSheetsEmulator, rows: list[dict[str, Any]], mode: str,
          **config: Any) -> dict[str, Any]:
    key_file = project.root / "sa.json"
    project.root.mkdir(parents=True, exist_ok=True)
    account = emu.service_account()
    key_file.write_text(json.dumps(account))
    project.write(rows, [{"destination": "sheet", "object": TAB, "mode": mode, "primary_key": "customer_id",
                          "where": SEGMENT, "name": "customers_sheet"}],
                  {"sheet": {"type": "google_sheets", "spreadsheet_id": "test-spreadsheet",
                             "credentials_file": str(key_file), "base_url": emu.base_url, **config}})
    project.dbt("build")
    return account


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of("customers_sheet")


def sheet(emu: GoogleSheetsEmulator) -> dict[Any, dict[str, Any]]:
    rows = emu.values(TAB)
    assert rows[0] == COLUMNS  # the header row, in the model's column order
    return {r[0]: dict(zip(COLUMNS, r + [""] * (len(COLUMNS) - len(r)), strict=True)) for r in rows[1:]}


def model_as_cells(project: Project) -> dict[Any, dict[str, Any]]:
    return {row[0]: {c: cell_value(v) for c, v in zip(COLUMNS, row, strict=True)}
            for row in project.model_rows(where=SEGMENT)}


def mutate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return changed(rows, renamed=(6, 9), deleted=(1, 4, 7), added=(100, 102))


def test_mirror_keeps_the_tab_equal_to_the_model(project: Project, emu: GoogleSheetsEmulator) -> None:
    rows = [customer(i) for i in range(1, 31)]
    setup(project, emu, rows, "mirror")
    first = sync(project)
    assert first["status"] == "success"
    assert sheet(emu) == model_as_cells(project)
    assert sheet(emu)[3]["signup_date"] == "2024-01-04" and sheet(emu)[3]["score"] == 4.5  # RAW: text and number

    project.write_rows(mutate(rows))
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["removed"] == 3  # 1, 4, 7 are GB
    assert sheet(emu) == model_as_cells(project)  # rows deleted, renamed in place, new ones added
    assert sync(project)["counts"]["sent"] == 0
    assert emu.counters.by_status.get(401, 0) == 0


@pytest.mark.slow
def test_upsert_leaves_hand_made_columns_alone(project: Project, emu: GoogleSheetsEmulator) -> None:
    rows = [customer(i) for i in range(1, 7)]
    setup(project, emu, rows, "upsert")
    sync(project)
    tab = emu.tab(TAB)
    for number, row in enumerate(tab.cells[1:], start=1):  # a user adds a notes column by hand
        row.extend([""] * (len(COLUMNS) - len(row)) + [f"note {number}"])
    tab.cells[0].append("notes")
    rows[0]["full_name"] = "Renamed 1"
    project.write_rows(rows)
    project.dbt("build")
    assert sync(project)["counts"]["changed"] == 1
    values = emu.values(TAB)
    assert values[0][-1] == "notes"
    renamed = next(r for r in values[1:] if r[0] == 1)
    assert renamed[COLUMNS.index("full_name")] == "Renamed 1" and renamed[-1] == "note 1"


@pytest.mark.slow
def test_a_cell_over_50000_characters_rejects_its_row_only(project: Project, emu: GoogleSheetsEmulator) -> None:
    rows = [customer(i) for i in range(1, 7)]
    rows[0]["full_name"] = "x" * 50_001  # customer 1, GB
    setup(project, emu, rows, "upsert")
    result = sync(project, expect_exit=1)
    assert result["status"] == "partial" and result["counts"]["rejected"] == 1
    assert result["rejected_samples"][0]["key"] == "1"
    assert "50,000" in result["rejected_samples"][0]["reason"]
    assert set(sheet(emu)) == {3, 4, 6}


@pytest.mark.slow
def test_an_untrusted_key_fails_the_sync_without_printing_it(project: Project, emu: GoogleSheetsEmulator) -> None:
    account = setup(project, emu, [customer(i) for i in range(1, 4)], "upsert")
    emu.service_accounts = {}  # the key was deleted in the Cloud console
    result = sync(project, expect_exit=1)
    assert result["status"] == "error" and "invalid_grant" in result["error"]
    proc = project.activate("run")
    assert account["private_key"].splitlines()[1] not in proc.stderr + json.dumps(project.results())
