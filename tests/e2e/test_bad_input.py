"""Bad input: a clear message naming file, model and key, exit code 2, and nothing sent.

A bad row (null or duplicate primary key) is rejected with its reason while the other rows go
through, and the run exits 1.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.project import Project, customer
from tests.e2e.state_schema import state_schema

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

ROWS = [customer(i) for i in range(1, 21)]


def _block(**extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id",
             "name": "customers_crm", **extra}]


def _assert_config_error(proc: Any, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)


def test_missing_artifacts_tell_the_user_to_run_dbt_build(duckdb_project: Project) -> None:
    duckdb_project.write(ROWS, _block())
    proc = duckdb_project.activate("run")
    assert (proc.returncode, "Traceback" in proc.stderr) == (2, False), proc.stderr
    assert "manifest.json not found" in proc.stderr and "Run `dbt build` first" in proc.stderr, proc.stderr


def test_configuration_errors_exit_2_and_send_nothing(duckdb_project: Project) -> None:
    p = duckdb_project
    p.write(ROWS, _block(mode="upsrt"))
    p.dbt("build")
    _assert_config_error(p.activate("run"),
                         "models/schema.yml: customers.config.meta.activate[0].mode: 'upsrt' is not one of")

    p.set_activate(_block(destination="nowhere"))
    p.dbt("parse")
    _assert_config_error(p.activate("run"), "customers.config.meta.activate[0].destination",
                         "destination 'nowhere' is not defined")

    p.set_activate(_block(fields=["email", "no_such_column"]))
    p.dbt("parse")
    _assert_config_error(p.activate("run"), "customers.config.meta.activate[0].fields.no_such_column",
                         "column 'no_such_column' is not in")

    p.set_activate(_block())
    (p.root / "destinations.yml").write_text("ops_db:\n  type: postgres\n  dsn: [unclosed\n")
    _assert_config_error(p.activate("run"), "destinations.yml", "is not valid YAML", "line ")

    (p.root / "destinations.yml").write_text("ops_db:\n  type: postgres\n  dsn: \"{{ env_var('NO_SUCH_DSN_VAR') }}\"\n")
    _assert_config_error(p.activate("run"), "destinations.yml: ops_db.dsn",
                         "environment variable 'NO_SUCH_DSN_VAR' is not set")

    (p.root / "destinations.yml").write_text("ops_db:\n  type: carrier_pigeon\n")
    _assert_config_error(p.activate("run"), "ops_db.type", "unknown destination type 'carrier_pigeon'")

    (p.root / "destinations.yml").write_text("ops_db:\n  type: postgres\n  colour: red\n")
    _assert_config_error(p.activate("run"), "ops_db.colour", "unknown key 'colour'")

    # Nothing was sent by any of these runs: the destination database has no table.
    assert not p.warehouse_query("select 1 from information_schema.tables where table_name = 'sync_runs'") or \
        p.warehouse_query("select count(*) from main_activate.sync_runs") == [(0,)]


def test_null_and_duplicate_keys_are_rejected_and_other_rows_go_through(project: Project) -> None:
    rows = [dict(r) for r in ROWS]
    rows[2]["customer_id"] = None  # null key
    rows[3]["customer_id"] = None  # another null key
    rows[5]["customer_id"] = 5  # duplicates customer 5
    project.write(rows, _block())
    project.dbt("seed")
    project.dbt("run")
    proc = project.activate("run")
    assert proc.returncode == 1, proc.stderr
    result = project.result_of("customers_crm")
    assert result["status"] == "partial"
    assert result["counts"]["rejected"] == 4  # two null keys, two rows sharing key 5
    reasons = {r["key"]: r["reason"] for r in result["rejected_samples"]}
    assert reasons["<null>"] == "primary key (customer_id) is null"
    assert reasons["5"].startswith("duplicate primary key (customer_id): 2 rows")
    synced = {r[0] for r in project.destination_rows("crm.customers", ["customer_id"])}
    assert synced == {r["customer_id"] for r in rows if r["customer_id"] not in (None, 5)}
    schema = state_schema(project)
    stored = project.warehouse_query(f"select sync_key, reason, attempts from {schema}.sync_rejections order by 1")
    assert [(k, a) for k, _, a in stored] == [("5", 1), ("<null>", 1)]
    assert "rejected 5: duplicate primary key" in proc.stderr

    # Fix the data: the next run sends the rows and clears the rejections.
    project.write_rows(ROWS)
    project.dbt("build")
    assert project.activate("run").returncode == 0
    assert project.warehouse_query(f"select count(*) from {schema}.sync_rejections") == [(0,)]
    assert project.destination_rows("crm.customers", ["customer_id"]) == [(r["customer_id"],) for r in ROWS]
