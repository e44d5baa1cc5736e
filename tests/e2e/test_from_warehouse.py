"""`dbt-activate run --from-warehouse`: the plan's dbt results come from the table the package's
on-run-end hook writes in the state schema, not from target/run_results.json.

target/run_results.json is deleted before each run, as in a job that did not run dbt itself; the
manifest stays (`dbt parse` writes it without the warehouse).
"""

from __future__ import annotations

import pytest

from tests.e2e.package import install_package, set_column_tests
from tests.e2e.project import Project, customer
from tests.e2e.state_schema import state_schema

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

ROWS = [customer(i) for i in range(1, 9)]
BLOCK = [{"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id", "name": "customers_crm",
          "fields": ["customer_id", "email"]}]


def _drop_run_results(project: Project) -> None:
    (project.root / "target" / "run_results.json").unlink()


@pytest.mark.default_run_on_duckdb
def test_run_from_the_recorded_invocation(project: Project) -> None:
    p = project
    p.write(ROWS, BLOCK)
    install_package(p, record_invocations=True)
    set_column_tests(p, {"customer_id": ["dbt_activate.activate_primary_key"]})
    p.dbt("build")
    _drop_run_results(p)
    assert p.activate("run").returncode == 2  # without the flag run_results.json is required

    proc = p.activate("run", "--from-warehouse")
    assert proc.returncode == 0, proc.stderr
    result = p.result_of("customers_crm")
    assert result["status"] == "success" and result["counts"]["sent"] == len(ROWS)
    assert "was rebuilt by `dbt build`" in result["reason"]
    schema = state_schema(p)
    recorded = p.warehouse_query(f"select distinct invocation_id from {schema}.dbt_invocation_results")
    synced = p.warehouse_query(f"select dbt_invocation_id from {schema}.sync_runs")
    assert synced == recorded and len(recorded) == 1

    # A later invocation whose key test fails: the latest recorded invocation gates the sync.
    p.write_rows([*ROWS, customer(1)])
    p.dbt("build", check=False)
    _drop_run_results(p)
    proc = p.activate("run", "--from-warehouse")
    assert proc.returncode == 0, proc.stderr
    result = p.result_of("customers_crm")
    assert result["status"] == "skipped"
    assert "tests failed on model customers: dbt_activate_activate_primary_key_customers_customer_id" in (
        result["reason"])
    assert len(p.warehouse_query(f"select distinct invocation_id from {schema}.dbt_invocation_results")) == 2


def test_from_warehouse_without_the_hook_says_how_to_add_it(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write(ROWS, BLOCK)
    p.dbt("build")
    proc = p.activate("plan", "--from-warehouse")
    assert proc.returncode == 2
    assert "no dbt invocation recorded" in proc.stderr
    assert "dbt_activate.record_invocation(results)" in proc.stderr
