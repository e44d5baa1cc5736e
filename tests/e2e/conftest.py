"""Fixtures for end-to-end tests: a throwaway dbt project on DuckDB, PostgreSQL, Redshift (a protocol
proxy in front of PostgreSQL), Snowflake (fakesnow's server) or BigQuery (crucible's server), the
emulators one per test session and worker.

In modules marked ``in_process`` dbt and dbt-activate run in this process (tests/e2e/inprocess.py),
except in tests marked ``subprocess``: the true end-to-end tests that start the installed commands."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.project import Project, commands_in_process, fresh_database
from tests.support import spark
from tests.support.redshift import UPSTREAM, redshift_database
from tests.support.redshift_proxy import RedshiftProxy


@pytest.fixture(scope="module", autouse=True)
def _in_process_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """``in_process`` (a module's pytestmark): its Projects run dbt and dbt-activate in this process,
    module-scoped fixtures included."""
    with commands_in_process(request.node.get_closest_marker("in_process") is not None):
        yield


@pytest.fixture(autouse=True)
def _in_process_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """... except in the tests marked ``subprocess``: the true end-to-end ones."""
    node = request.node
    in_process = node.get_closest_marker("in_process") is not None and node.get_closest_marker("subprocess") is None
    with commands_in_process(in_process):
        yield


@pytest.fixture(scope="session")
def redshift_proxy_port() -> Iterator[int]:
    with RedshiftProxy(upstream=UPSTREAM) as proxy:
        yield proxy.port


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("redshift", marks=pytest.mark.redshift),
                        pytest.param("snowflake", marks=pytest.mark.snowflake),
                        pytest.param("bigquery", marks=pytest.mark.bigquery)])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with fresh_database("act_dst") as destination_db:
        if request.param == "duckdb":
            yield Project(tmp_path, "duckdb", destination_db=destination_db)
        elif request.param == "snowflake":
            yield Project(tmp_path, "snowflake", warehouse_db=f"act_{uuid.uuid4().hex[:10]}",
                          destination_db=destination_db, fakesnow_port=request.getfixturevalue("fakesnow_port"))
        elif request.param == "bigquery":
            yield Project(tmp_path, "bigquery", warehouse_db=f"act_{uuid.uuid4().hex[:10]}",
                          destination_db=destination_db, crucible_port=request.getfixturevalue("crucible_port"))
        elif request.param == "redshift":
            port = request.getfixturevalue("redshift_proxy_port")
            with redshift_database("act_rs") as warehouse_db:
                yield Project(tmp_path, "redshift", warehouse_db=warehouse_db, destination_db=destination_db,
                              proxy_port=port)
        else:
            with fresh_database("act_wh") as warehouse_db:
                yield Project(tmp_path, "postgres", warehouse_db=warehouse_db, destination_db=destination_db)


@pytest.fixture
def duckdb_project(tmp_path: Path) -> Iterator[Project]:
    with fresh_database("act_dst") as destination_db:
        yield Project(tmp_path, "duckdb", destination_db=destination_db)


@pytest.fixture
def snowflake_project(tmp_path: Path, fakesnow_port: int) -> Iterator[Project]:
    with fresh_database("act_dst") as destination_db:
        yield Project(tmp_path, "snowflake", warehouse_db=f"act_{uuid.uuid4().hex[:10]}",
                      destination_db=destination_db, fakesnow_port=fakesnow_port)


@pytest.fixture
def bigquery_project(tmp_path: Path, crucible_port: int) -> Iterator[Project]:
    with fresh_database("act_dst") as destination_db:
        yield Project(tmp_path, "bigquery", warehouse_db=f"act_{uuid.uuid4().hex[:10]}",
                      destination_db=destination_db, crucible_port=crucible_port)


@pytest.fixture
def spark_project(tmp_path: Path, spark_port: int) -> Iterator[Project]:
    """A project on Spark's Thrift server, in a schema of its own (and its state schema), dropped at the end."""
    schema = f"act_{uuid.uuid4().hex[:10]}"
    with fresh_database("act_dst") as destination_db:
        try:
            yield Project(tmp_path, "spark", warehouse_db=schema, destination_db=destination_db,
                          spark_port=spark_port)
        finally:
            for name in (schema, f"{schema}_activate"):
                spark.query(spark_port, f"drop schema if exists {name} cascade")
