"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB warehouse -> MariaDB on 127.0.0.1:3306.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds a MySQL table in a fresh database, runs the real CLI, and compares the table with the model.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.harness_mysql import HOST, PORT, mysql_database
from tests.e2e.project import COLUMNS, Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

SEGMENT = "country in ('FR', 'GB')"


@pytest.fixture
def db() -> Iterator[tuple[Any, str]]:
    with mysql_database("act_e2e") as found:
        yield found


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def write(project: Project, db: tuple[Any, str], rows: list[dict[str, Any]], mode: str = "mirror",
          **config: Any) -> None:
    activate = [{"destination": "ops_mysql", "object": "customers", "mode": mode, "primary_key": "customer_id",
                 "where": SEGMENT, "name": "customers_mysql"}]
    # The password comes from the environment, as users are told to keep it (root's is empty here).
    project.env["OPS_MYSQL_PASSWORD"] = ""
    destinations = {"ops_mysql": {"type": "mysql", "host": HOST, "port": PORT, "user": "root",
                                  "password": "{{ env_var('OPS_MYSQL_PASSWORD') }}", "database": db[1],
                                  "create_table": True, **config}}
    project.write(rows, activate, destinations)


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of("customers_mysql")


def table(db: tuple[Any, str]) -> list[tuple[Any, ...]]:
    admin, database = db
    with admin.cursor() as cur:
        cur.execute(f"SELECT {', '.join(COLUMNS)} FROM `{database}`.customers ORDER BY customer_id")
        return [(*r[:5], bool(r[5]), *r[6:]) for r in cur.fetchall()]


def model(project: Project) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in project.model_rows(where=SEGMENT)]


def test_mirror_makes_the_table_equal_the_model(project: Project, db: tuple[Any, str]) -> None:
    rows = [customer(i) for i in range(1, 31)]
    write(project, db, rows)
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["sent"] == len(model(project))
    assert table(db) == model(project)
    assert isinstance(table(db)[0][7], datetime.datetime)  # created from the warehouse's types

    by_id = {r["customer_id"]: r for r in rows}
    by_id[6]["full_name"] = "Renamed 6"
    by_id[3]["country"] = "RU"  # leaves the segment
    del by_id[4]
    by_id[100] = customer(100)
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    second = sync(project)
    assert table(db) == model(project)
    assert second["counts"]["removed"] == 2
    assert sync(project)["counts"]["sent"] == 0  # nothing changed since


@pytest.mark.slow
def test_a_value_too_long_is_rejected_alone_and_retried_next_run(project: Project, db: tuple[Any, str]) -> None:
    admin, database = db
    with admin.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.customers (customer_id INT PRIMARY KEY, email VARCHAR(64), "
                    "full_name VARCHAR(16), country CHAR(2), score DOUBLE, is_vip BOOLEAN, signup_date DATE, "
                    "updated_at DATETIME)")
    rows = [customer(i) for i in range(1, 13)]
    rows[5]["full_name"] = "A name far too long for sixteen"  # customer 6 (FR)
    write(project, db, rows, mode="upsert")
    project.dbt("build")
    first = sync(project, expect_exit=1)
    assert first["counts"]["rejected"] == 1
    [sample] = first["rejected_samples"]
    assert sample["key"] == "6" and "too long" in sample["reason"].lower()
    assert [r[0] for r in table(db)] == [r[0] for r in model(project) if r[0] != 6]

    rows[5]["full_name"] = "Short 6"
    project.write_rows(rows)
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["sent"] == 1  # only the row that was refused
    assert table(db) == model(project)


@pytest.fixture
def new_databases() -> Iterator[tuple[str, str]]:
    """Two database names that do not exist yet (the runs create them), dropped at the end."""
    names = (f"act_readme_{uuid.uuid4().hex[:10]}", f"act_ext_{uuid.uuid4().hex[:10]}")
    yield names
    with mysql_database("act_e2e_admin") as (admin, _), admin.cursor() as cur:
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_the_readme_configuration_creates_the_database_and_a_dsn_without_one_deletes(
        project: Project, new_databases: tuple[str, str]) -> None:
    # Issue 18: a dsn naming a database that does not exist (the README's example) failed at connect,
    # and with a dsn naming none, every delete failed ("No database selected").
    readme_db, ext_db = new_databases
    project.env["OPS_MYSQL_PASSWORD"] = ""
    destinations = {
        # As the README writes it: the dsn names the database, create_table creates it.
        "ops_mysql": {"type": "mysql", "create_table": True,
                      "dsn": f"mysql://root:{{{{ env_var('OPS_MYSQL_PASSWORD') }}}}@{HOST}:{PORT}/{readme_db}"},
        # No database in the dsn: the object names it.
        "ext_mysql": {"type": "mysql", "create_table": True, "dsn": f"mysql://root:@{HOST}:{PORT}"},
    }
    block = {"mode": "mirror", "primary_key": "customer_id", "where": SEGMENT}
    activate = [{**block, "destination": "ops_mysql", "object": "customers", "name": "readme"},
                {**block, "destination": "ext_mysql", "object": f"{ext_db}.mrr_changes", "name": "ext"}]
    rows = [customer(i) for i in range(1, 31)]
    project.write(rows, activate, destinations)
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 0, proc.stderr[-3000:]

    by_id = {r["customer_id"]: r for r in rows}
    by_id[6]["full_name"] = "Renamed 6"
    by_id[3]["country"] = "RU"  # leaves the segment
    del by_id[4]
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, table in (("readme", f"`{readme_db}`.customers"), ("ext", f"`{ext_db}`.mrr_changes")):
        assert project.result_of(name)["counts"]["removed"] == 2
        assert project.result_of(name)["counts"]["changed"] == 1
        with mysql_database("act_e2e_admin") as (admin, _), admin.cursor() as cur:
            cur.execute(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY customer_id")
            assert [(*r[:5], bool(r[5]), *r[6:]) for r in cur.fetchall()] == model(project), name
