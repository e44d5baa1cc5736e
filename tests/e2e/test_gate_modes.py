"""Test gating per sync (`gate: error | warn | none`) and `quarantine: true`, end to end.

Every sync here reads the same model; each test's dbt results decide which of them run. Quarantine
holds back exactly the rows a failing test stored (`store_failures: true`) and syncs the others.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.package import install_package, set_column_tests
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

ROWS = [customer(i) for i in range(1, 11)]
COLUMNS = ["customer_id", "email", "full_name"]


def _sync(name: str, **extra: Any) -> dict[str, Any]:
    return {"destination": "ops_db", "object": f"crm.{name}", "primary_key": "customer_id", "name": name,
            "fields": COLUMNS, **extra}


GATES = [_sync("gate_default"), _sync("gate_warn", gate="warn"), _sync("gate_none", gate="none")]
# accepted_values over ids 1-9 fails on the 10th row: a test that fails without touching the key.
NOT_TEN = {"accepted_values": {"arguments": {"values": list(range(1, 10)), "quote": False}}}


def _statuses(project: Project) -> dict[str, str]:
    return {r["sync"]: r["status"] for r in project.results()["results"]}


@pytest.mark.default_run_on_duckdb
def test_gate_modes_on_a_warning_and_on_a_failure(project: Project) -> None:
    p = project
    p.write(ROWS, GATES)
    set_column_tests(p, {"customer_id": [{"accepted_values": {**NOT_TEN["accepted_values"],
                                                               "config": {"severity": "warn"}}}]})
    p.dbt("build")  # a warning does not fail dbt
    proc = p.activate("run")
    assert proc.returncode == 0, proc.stderr
    assert _statuses(p) == {"gate_default": "success", "gate_warn": "skipped", "gate_none": "success"}
    assert "accepted_values_customers_customer_id" in p.result_of("gate_warn")["reason"]
    assert "(warn)" in p.result_of("gate_warn")["reason"]

    set_column_tests(p, {"customer_id": [NOT_TEN]})
    p.write_rows([*ROWS[:-1], customer(10, name="Renamed")])
    p.dbt("build", check=False)  # the test fails
    proc = p.activate("run")
    assert proc.returncode == 0, proc.stderr
    assert _statuses(p) == {"gate_default": "skipped", "gate_warn": "skipped", "gate_none": "success"}
    assert "tests failed on model customers" in p.result_of("gate_default")["reason"]
    # Only the ungated sync sent the rename; the gated ones still have the old name.
    assert p.destination_rows("crm.gate_none", COLUMNS)[-1][2] == "Renamed"
    assert p.destination_rows("crm.gate_default", COLUMNS)[-1][2] == "Customer 10"


@pytest.mark.default_run_on_duckdb
def test_quarantine_holds_back_the_failing_rows_and_syncs_the_others(project: Project) -> None:
    p = project
    blocks = [_sync("held", quarantine=True, mode="mirror"), _sync("blocked")]
    p.write(ROWS, blocks)
    install_package(p)
    email_test = {"valid_email": {"config": {"store_failures": True}}}
    set_column_tests(p, {"customer_id": ["dbt_activate.activate_primary_key"], "email": [email_test]})
    p.dbt("build")
    assert p.activate("run").returncode == 0
    assert len(p.destination_rows("crm.held", COLUMNS)) == 10

    # Customer 2's email breaks (the test fails and stores the row), customer 3 is renamed.
    changed = {2: {**customer(2), "email": "broken", "full_name": "Broken 2"}, 3: customer(3, name="Renamed 3")}
    p.write_rows([changed.get(r["customer_id"], r) for r in ROWS])
    p.dbt("build", check=False)
    proc = p.activate("run")
    assert proc.returncode == 0, proc.stderr
    held = p.result_of("held")
    assert held["status"] == "success"
    assert held["counts"]["quarantined"] == 1
    assert held["counts"]["changed"] == 1 and held["counts"]["removed"] == 0
    assert "1 row(s) quarantined by failing test(s): valid_email_customers_email" in held["reason"]
    assert p.result_of("blocked")["status"] == "skipped"
    rows = {r[0]: r for r in p.destination_rows("crm.held", COLUMNS)}
    # The held-back row keeps what was last synced (mirror did not delete it); the other change went.
    assert rows[2] == (2, "user2@example.com", "Customer 2")
    assert rows[3][2] == "Renamed 3"

    # Fixed: the test passes again and the held-back row goes through on the next run.
    p.write_rows([{**changed[2], "email": "fixed2@example.com"} if r["customer_id"] == 2 else changed.get(
        r["customer_id"], r) for r in ROWS])
    p.dbt("build")
    assert p.activate("run").returncode == 0
    assert p.result_of("held")["counts"]["quarantined"] == 0
    assert {r[0]: r for r in p.destination_rows("crm.held", COLUMNS)}[2] == (2, "fixed2@example.com", "Broken 2")


def test_quarantine_needs_a_failures_table_that_names_the_key(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write(ROWS, [_sync("held", quarantine=True)])
    values = {"arguments": {"values": ["FR", "GB"]}, "config": {"store_failures": True}}
    set_column_tests(p, {"country": [{"accepted_values": values}]})
    p.dbt("build", check=False)
    proc = p.activate("run")
    assert proc.returncode == 2
    assert "customers.config.meta.activate[0].quarantine" in proc.stderr
    assert "without the primary key column(s) customer_id" in proc.stderr
    assert p.destination_rows("information_schema.tables where table_schema = 'crm'", ["table_name"]) == []
