"""A throwaway dbt project for end-to-end tests: seeds, one model, activate blocks, destinations.

Each test gets its own directory, DuckDB file or PostgreSQL databases, created here and dropped at
the end; nothing depends on what an earlier run left behind. dbt and dbt-activate run as
subprocesses, exactly as a user runs them, except in tests marked ``@pytest.mark.in_process`` (and
not ``@pytest.mark.subprocess``) or for a Project made with ``as_subprocess=False``: there they run in
this process through their own entry points (tests/e2e/inprocess.py: same arguments, environment,
directory, output and exit code, without a dbt import per command), unless the environment holds a
variable only a new process reads (``inprocess.PROCESS_ONLY_ENV``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import yaml

from tests.e2e import inprocess, partial_parse
from tests.support import bigquery, fakesnow, spark

PG_DSN = "host=127.0.0.1 port=5432 user=postgres"
BIN = Path(sys.executable).parent
COLUMNS = ["customer_id", "email", "full_name", "country", "score", "is_vip", "signup_date", "updated_at"]


# GoogleSQL's names for the seed's types (it has no varchar or double precision). Its TIMESTAMP is an
# instant (DATETIME would be the others' timestamp, but the emulator cannot load one from a CSV seed).
_BIGQUERY_SEED_TYPES = {"updated_at": "timestamp", "signup_date": "date", "score": "float64", "is_vip": "bool",
                        "customer_id": "int64", "email": "string", "full_name": "string", "country": "string"}


def customer(i: int, *, country: str | None = None, score: float | None = None, name: str | None = None
             ) -> dict[str, Any]:
    return {
        "customer_id": i,
        "email": f"user{i}@example.com",
        "full_name": name or f"Customer {i}",
        "country": country or ("FR" if i % 3 == 0 else "GB" if i % 3 == 1 else "RU"),
        "score": score if score is not None else round(i * 1.5, 2),
        "is_vip": "true" if i % 4 == 0 else "false",
        "signup_date": f"2024-01-{(i % 28) + 1:02d}",
        "updated_at": f"2025-06-{(i % 28) + 1:02d} 10:{i % 60:02d}:00",
    }


def admin(sql: str) -> None:
    conn = psycopg2.connect(PG_DSN + " dbname=postgres")
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin(f'create database "{name}"')
    try:
        yield name
    finally:
        admin(f'drop database if exists "{name}" with (force)')


@dataclass
class Project:
    root: Path
    # duckdb | postgres | redshift (dbt-redshift through the local protocol proxy) | snowflake | bigquery
    warehouse: str
    warehouse_db: str | None = None  # postgres or fakesnow database name; the BigQuery dataset
    destination_db: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    proxy_port: int | None = None
    fakesnow_port: int | None = None  # snowflake: fakesnow's server (tests/support/fakesnow.py)
    crucible_port: int | None = None  # bigquery: crucible's server (tests/support/bigquery.py); dataset: warehouse_db
    spark_port: int | None = None  # spark: the Thrift server (tests/support/spark.py); warehouse_db is the schema
    # True/False: commands run as subprocesses / in process; None: as the running test is marked.
    as_subprocess: bool | None = None

    # --- writing the project ---------------------------------------------------------------------

    def write(self, rows: Sequence[Mapping[str, Any]], activate: list[dict[str, Any]],
              destinations: Mapping[str, Any] | None = None, *, model_sql: str | None = None,
              tests: Sequence[str] = ()) -> None:
        (self.root / "seeds").mkdir(parents=True, exist_ok=True)
        (self.root / "models").mkdir(exist_ok=True)
        (self.root / "dbt_project.yml").write_text(yaml.safe_dump({
            "name": "e2e", "version": "1.0", "config-version": 2, "profile": "e2e",
            # fakesnow runs tables, not every view dbt-snowflake writes (tests/support/fakesnow.py).
            **({"models": {"e2e": {"+materialized": "table"}}} if self.warehouse == "snowflake" else {}),
            "seeds": {"e2e": {"+column_types": _BIGQUERY_SEED_TYPES if self.warehouse == "bigquery" else {
                                               "updated_at": "timestamp", "signup_date": "date",
                                               "score": "double" if self.warehouse in ("duckdb", "spark")
                                               else "double precision",
                                               "is_vip": "boolean", "customer_id": "integer",
                                               # dbt-redshift sizes varchar seeds to the data; re-seeding
                                               # longer values would not fit.
                                               "email": "varchar(256)", "full_name": "varchar(256)",
                                               "country": "varchar(8)"}}},
        }))
        if self.warehouse == "duckdb":
            # Relative to the project (every command runs there), so that every DuckDB project has the
            # same profile and can start from a parsed template (partial_parse below).
            output = {"type": "duckdb", "path": "wh.duckdb", "schema": "main", "threads": 1}
        elif self.warehouse == "snowflake":
            output = fakesnow.profile_output(self.fakesnow_port or 0, self.warehouse_db or "")
        elif self.warehouse == "bigquery":
            output = bigquery.profile_output(self.crucible_port or 0, self.warehouse_db or "")
        elif self.warehouse == "spark":
            output = spark.profile_output(self.spark_port or 0, self.warehouse_db or "")
        elif self.warehouse == "redshift":
            output = {"type": "redshift", "host": "127.0.0.1", "port": self.proxy_port, "user": "postgres",
                      "password": "unused", "dbname": self.warehouse_db, "schema": "analytics", "threads": 1,
                      "sslmode": "disable"}
        else:
            output = {"type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres",
                      "password": "unused", "dbname": self.warehouse_db, "schema": "analytics", "threads": 1}
        (self.root / "profiles.yml").write_text(yaml.safe_dump({"e2e": {"target": "dev",
                                                                        "outputs": {"dev": output}}}))
        self.write_rows(rows)
        (self.root / "models" / "customers.sql").write_text(model_sql or "select * from {{ ref('seed_customers') }}")
        model: dict[str, Any] = {"name": "customers", "config": {"meta": {"activate": activate}}}
        if tests:
            model["columns"] = [{"name": "customer_id", "data_tests": list(tests)}]
        (self.root / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, "models": [model]}))
        dests = destinations or {"ops_db": {
            "type": "postgres", "dsn": f"{PG_DSN} dbname={self.destination_db}", "create_table": True}}
        (self.root / "destinations.yml").write_text(yaml.safe_dump(dict(dests)))

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with (self.root / "seeds" / "seed_customers.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})

    def set_activate(self, activate: list[dict[str, Any]]) -> None:
        path = self.root / "models" / "schema.yml"
        doc = yaml.safe_load(path.read_text())
        doc["models"][0]["config"]["meta"]["activate"] = activate
        path.write_text(yaml.safe_dump(doc))

    # --- running ---------------------------------------------------------------------------------

    def run_env(self) -> dict[str, str]:
        # fakesnow answers some statements with HTTP 500, which the connector retries until the
        # statement's timeout: a short one makes such a failure show within the test's time.
        timeout = {"DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS": "120"} if self.warehouse == "snowflake" else {}
        return {**os.environ, **timeout, **self.env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1"}

    def _run(self, command: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        return self._run_in(self.root, command, args)

    def _run_in(self, cwd: Path, command: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = self.run_env()
        in_process = _IN_PROCESS_TEST[0] if self.as_subprocess is None else not self.as_subprocess
        as_subprocess = _ALL_SUBPROCESS or not in_process
        if as_subprocess or inprocess.needs_subprocess(env):
            return subprocess.run([str(BIN / command), *args], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=300)
        run = inprocess.dbt if command == "dbt" else inprocess.dbt_activate
        return run(args, cwd=cwd, env=env)

    def dbt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self._start_from_parsed_template()
        proc = self._run("dbt", [*args, "--project-dir", str(self.root), "--profiles-dir", str(self.root)])
        if check and proc.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
        return proc

    def _start_from_parsed_template(self) -> None:
        """Give a project dbt has not parsed yet the parse of an empty project with the same
        dbt_project.yml and profiles.yml (``partial_parse.template``): dbt then parses only this
        project's own files instead of the ~1,000 macros of dbt and its adapter (about 2 CPU-s of
        the 3 of a first ``dbt build``). dbt itself decides whether the saved parse applies (same
        dbt version, project file, profile, vars and env vars, else it parses everything)."""
        target = self.root / "target" / "partial_parse.msgpack"
        profiles = self.root / "profiles.yml"
        # Only DuckDB profiles are the same in every project (the others name a database per test),
        # and a profile naming this directory is this project's alone.
        if (_FULL_PARSE or self.warehouse != "duckdb" or target.exists() or not profiles.exists()
                or not (self.root / "dbt_project.yml").exists() or str(self.root) in profiles.read_text()):
            return
        saved = partial_parse.template(self.root / "dbt_project.yml", self.root / "profiles.yml",
                                       lambda root, args: self._run_in(root, "dbt", args))
        if saved is not None:
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(saved, target)

    def activate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run("dbt-activate", list(args))

    def results(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "target" / "activate_results.json").read_text())
        return data

    def result_of(self, sync: str) -> dict[str, Any]:
        return next(r for r in self.results()["results"] if r["sync"] == sync)

    # --- reading back ----------------------------------------------------------------------------

    def model_rows(self, where: str | None = None, columns: Sequence[str] = COLUMNS) -> list[tuple[Any, ...]]:
        cols = ", ".join(columns)
        sql = f"select {cols} from {{rel}} {'where ' + where if where else ''} order by 1"
        if self.warehouse == "duckdb":
            import duckdb

            con = duckdb.connect(str(self.root / "wh.duckdb"), read_only=True)
            try:
                return [tuple(r) for r in con.execute(sql.format(rel="main.customers")).fetchall()]
            finally:
                con.close()
        if self.warehouse == "snowflake":
            return self.warehouse_query(sql.format(rel="analytics.customers"))
        if self.warehouse == "bigquery":
            # A TIMESTAMP comes back aware, in UTC; the destination's timestamp column holds that UTC time.
            return [tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)
                    for row in self.warehouse_query(sql.format(rel=f"{self.warehouse_db}.customers"))]
        if self.warehouse == "spark":
            return self.warehouse_query(sql.format(rel=f"{self.warehouse_db}.customers"))
        return pg_query(self.warehouse_db or "", sql.format(rel="analytics.customers"))

    def warehouse_query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.warehouse == "duckdb":
            import duckdb

            con = duckdb.connect(str(self.root / "wh.duckdb"), read_only=True)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        if self.warehouse == "snowflake":
            return fakesnow.query(self.fakesnow_port or 0, self.warehouse_db or "", sql)
        if self.warehouse == "bigquery":
            return bigquery.query(self.crucible_port or 0, sql)
        if self.warehouse == "spark":
            return _plain(spark.query(self.spark_port or 0, sql))
        return pg_query(self.warehouse_db or "", sql)

    def destination_rows(self, table: str, columns: Sequence[str] = COLUMNS) -> list[tuple[Any, ...]]:
        return pg_query(self.destination_db or "", f"select {', '.join(columns)} from {table} order by 1")


def _plain(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """PyHive's rows with PostgreSQL's types (decimal scores, dates), to compare with the destination."""
    from datetime import date, datetime
    from decimal import Decimal

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return Decimal(str(v))
        if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-":
            return date.fromisoformat(v)
        return v if not isinstance(v, datetime) else v.replace(tzinfo=None)

    return [tuple(value(v) for v in r) for r in rows]

# Whether the running test runs its commands in process (set by tests/e2e/conftest.py per test).
# DBT_ACTIVATE_TESTS_SUBPROCESS=1 runs every command as a subprocess, as the suite did before the
# in-process harness: to compare costs, or to rule the harness out when a test fails.
_ALL_SUBPROCESS = os.environ.get("DBT_ACTIVATE_TESTS_SUBPROCESS") == "1"
# DBT_ACTIVATE_TESTS_FULL_PARSE=1: every project's first dbt command parses everything, as a new
# project's does (no template parse; see Project._start_from_parsed_template).
_FULL_PARSE = os.environ.get("DBT_ACTIVATE_TESTS_FULL_PARSE") == "1"
_IN_PROCESS_TEST = [False]


@contextmanager
def commands_in_process(enabled: bool) -> Iterator[None]:
    """Projects whose ``subprocess`` is None run their commands in process while this is entered."""
    previous, _IN_PROCESS_TEST[0] = _IN_PROCESS_TEST[0], enabled
    try:
        yield
    finally:
        _IN_PROCESS_TEST[0] = previous


def pg_query(dbname: str, sql: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(f"{PG_DSN} dbname={dbname}")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()
