"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> RestEmulator over HTTP, via `http`.

The destination is declared only in destinations.yml: batch upserts whose per-record errors are
found by JSONPath, deletes one request per record. The request templates are written plainly:
``requests`` is a deferred key that destinations.yml leaves for the destination to render.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.rest import RestEmulator
from tests.e2e.project import COLUMNS, Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "rest-e2e-7d6c5b4a39281706"
SEGMENT = "country in ('FR', 'GB')"
UPSERT_BODY = ('{"records": [{% for r in records %}'
               '{"id": {{ r.customer_id }}, "email": {{ r.email | tojson }}, '
               '"name": {{ r.full_name | tojson }}, "score": {{ r.score | tojson }}}{{ "," if not loop.last }}'
               '{% endfor %}]}')


@pytest.fixture
def emu() -> Iterator[RestEmulator]:
    with RestEmulator(token=TOKEN, max_lengths={"name": 20}, max_batch=10) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def write(project: Project, emu: RestEmulator, rows: list[dict[str, Any]], **upsert: Any) -> None:
    activate = [{"destination": "crm_api", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
                 "where": SEGMENT, "name": "customers_api"}]
    project.env["CRM_TOKEN"] = TOKEN
    destinations = {"crm_api": {
        "type": "http", "base_url": f"{emu.base_url}/v1", "batch_size": 10, "timeout": 10,
        "headers": {"Authorization": "Bearer {{ env_var('CRM_TOKEN') }}"},
        "rate_limit": {"requests": 100, "per_seconds": 1},
        "requests": {
            "upsert": {"path": "/customers/batch/upsert", "body": UPSERT_BODY, "errors_path": "$.errors[*]",
                       "error_key_path": "$.id", "error_message_path": "$.message", **upsert},
            "delete": {"method": "DELETE", "path": "/customers/{{ record.customer_id }}",
                       "per_record": True, "ok_statuses": [404]},
        }}}
    project.write(rows, activate, destinations)


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    assert TOKEN not in proc.stdout + proc.stderr
    return project.result_of("customers_api")


def model(project: Project) -> dict[str, dict[str, Any]]:
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in project.model_rows(where=SEGMENT)]
    return {str(r["customer_id"]): {"id": r["customer_id"], "email": r["email"], "name": r["full_name"],
                                    "score": r["score"]} for r in rows}


def test_mirror_makes_the_api_equal_the_model(project: Project, emu: RestEmulator) -> None:
    rows = [customer(i) for i in range(1, 31)]
    write(project, emu, rows)
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["sent"] == len(model(project))
    assert emu.records("customers") == model(project)

    by_id = {r["customer_id"]: r for r in rows}
    by_id[6]["full_name"] = "Renamed 6"
    by_id[3]["country"] = "RU"  # leaves the segment
    del by_id[4]
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["removed"] == 2
    assert emu.records("customers") == model(project)
    assert sync(project)["counts"]["sent"] == 0


@pytest.mark.slow
def test_a_refused_record_is_rejected_by_key_and_retried_next_run(project: Project, emu: RestEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    rows[5]["full_name"] = "A name far too long for the API"  # customer 6 (FR)
    write(project, emu, rows)
    project.dbt("build")
    first = sync(project, expect_exit=1)
    assert first["counts"]["rejected"] == 1
    [sample] = first["rejected_samples"]
    assert (sample["key"], sample["reason"]) == ("6", "name: longer than 20 characters")
    assert set(emu.records("customers")) == set(model(project)) - {"6"}

    rows[5]["full_name"] = "Short 6"
    project.write_rows(rows)
    project.dbt("build")
    assert sync(project)["counts"]["sent"] == 1  # only the refused row
    assert emu.records("customers") == model(project)


@pytest.mark.slow
def test_a_bad_jsonpath_is_a_config_error_naming_the_key(project: Project, emu: RestEmulator) -> None:
    write(project, emu, [customer(1)], errors_path="$.errors[[")
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "crm_api.requests.upsert.errors_path" in proc.stderr and "invalid JSONPath" in proc.stderr
    assert emu.counters.requests == 0
