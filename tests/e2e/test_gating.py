"""What runs and why: failed, skipped and test-failing models are never synced, and `run` says why."""

from __future__ import annotations

import pytest

from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

ROWS = [customer(i) for i in range(1, 11)]
BLOCK = [{"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id", "name": "customers_crm"}]


def _skipped_reason(project: Project) -> str:
    result = project.result_of("customers_crm")
    assert result["status"] == "skipped"
    assert result["counts"]["sent"] == 0
    return str(result["reason"])


def test_model_that_failed_to_build_is_not_synced(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write(ROWS, BLOCK, model_sql="select *, 1/0 as boom from {{ ref('seed_customers') }} where no_such_column")
    p.dbt("build", check=False)
    proc = p.activate("run", "--all")
    assert proc.returncode == 0, proc.stderr
    assert "failed to build" in _skipped_reason(p)
    assert "failed to build" in proc.stderr


def test_model_whose_tests_failed_is_not_synced(duckdb_project: Project) -> None:
    p = duckdb_project
    rows = [*ROWS, customer(1)]  # customer 1 twice: the unique test fails
    p.write(rows, BLOCK, tests=["unique"])
    p.dbt("build", check=False)
    proc = p.activate("run")
    assert proc.returncode == 0, proc.stderr
    assert "tests failed on model customers: unique_customers_customer_id" in _skipped_reason(p)


def test_skipped_model_is_not_synced(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write([{**r, "score": "not a number"} if r["customer_id"] == 1 else r for r in ROWS], BLOCK)
    p.dbt("build", check=False)  # the seed fails to load, so the model is skipped
    p.activate("run")
    assert "was skipped" in _skipped_reason(p)


def test_after_docs_generate_nothing_is_synced_unless_all(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write(ROWS, BLOCK)
    p.dbt("build")
    p.dbt("docs", "generate")
    proc = p.activate("run")
    assert proc.returncode == 0
    assert "not build/run" in _skipped_reason(p)
    assert "The last dbt command was `generate`" in proc.stderr or "The last dbt command was `docs`" in proc.stderr
    assert p.activate("run", "--all").returncode == 0
    assert p.result_of("customers_crm")["counts"]["sent"] == len(ROWS)


def test_plan_sends_nothing_and_writes_no_state(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write(ROWS, BLOCK)
    p.dbt("build")
    proc = p.activate("plan")
    assert proc.returncode == 0, proc.stderr
    assert p.result_of("customers_crm")["counts"]["added"] == len(ROWS)
    assert p.result_of("customers_crm")["counts"]["sent"] == 0
    assert p.warehouse_query("select count(*) from information_schema.schemata "
                             "where schema_name = 'main_activate'") == [(0,)]
