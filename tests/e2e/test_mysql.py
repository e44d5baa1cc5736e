"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB warehouse -> MariaDB on 127.0.0.1:3306.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds a MySQL table in a fresh database, runs the real CLI, and compares the table with the model.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.harness_mysql import HOST, PORT, mysql_database
from tests.e2e.project import COLUMNS, Project, customer

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
