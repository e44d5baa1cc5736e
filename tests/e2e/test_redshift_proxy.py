"""The real Redshift driver and the real dbt-redshift adapter against local PostgreSQL, via the proxy.

These tests are the evidence behind ``tests/support/redshift_proxy.py``: what the proxy has to fix
(the driver cannot reach PostgreSQL on its own), that ordinary and streaming reads work through it,
the in-process dbt adapter recipe for dbt-core 1.11 (the way ``dbt_activate.warehouse`` opens a
connection) for both a postgres and a redshift profile, and whole ``dbt build`` runs.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
import redshift_connector
from redshift_connector.error import InterfaceError, ProgrammingError

from tests.support.redshift import (  # redshift_db, redshift_proxy: the shared fixtures
    ADMIN_USER,
    UPSTREAM,
    connect,
    proxy_process,
    redshift_db,
    redshift_proxy,
    start_proxy,
    write_profile,
)
from tests.support.redshift_proxy import REDSHIFT_SERVER_VERSION, RedshiftProxy

__all__ = ["redshift_db", "redshift_proxy"]  # re-exported so pytest finds them in this module
pytestmark = [pytest.mark.redshift, pytest.mark.redshift_in_default_run]

PROFILE = "dbt_activate_test"


# -- (a) the driver, through the proxy ---------------------------------------------------------


def test_driver_alone_is_refused_by_postgres(redshift_db: str) -> None:
    # The premise of the proxy: should this ever connect, the proxy can be retired.
    with pytest.raises(ProgrammingError, match="client_protocol_version"):
        redshift_connector.connect(
            host=UPSTREAM[0], port=UPSTREAM[1], user=ADMIN_USER, password="x", database=redshift_db, ssl=False
        )


def test_driver_connects_and_queries_through_proxy(redshift_proxy: RedshiftProxy, redshift_db: str) -> None:
    conn = connect(redshift_proxy, redshift_db)
    try:
        assert (b"server_version", REDSHIFT_SERVER_VERSION.encode()) in conn.parameter_statuses
        cur = conn.cursor()
        cur.execute("create table people (id int, name varchar(20), born date, score numeric(6,2))")
        cur.executemany(
            "insert into people values (%s, %s, %s, %s)",
            [(1, "Ann", date(1990, 1, 2), Decimal("1.50")), (2, "Zoë", None, None)],
        )
        cur.execute("select id, name, born, score, current_database() from people where id >= %s order by id", (1,))
        rows = [tuple(row) for row in cur.fetchall()]
        conn.commit()
    finally:
        conn.close()
    assert rows == [(1, "Ann", date(1990, 1, 2), Decimal("1.50"), redshift_db), (2, "Zoë", None, None, redshift_db)]
    stats = redshift_proxy.stats
    assert {"client_protocol_version", "driver_discovery_version"} <= stats.stripped_parameters
    assert stats.upstream_server_version is not None
    assert stats.upstream_server_version.split(".")[0].isdigit()


def test_compat_objects_answer_like_redshift(redshift_proxy: RedshiftProxy, redshift_db: str) -> None:
    conn = connect(redshift_proxy, redshift_db)
    try:
        cur = conn.cursor()
        cur.execute(
            "select nvl(null::int, 3), len('Zoë'), getdate() = date_trunc('second', getdate()),"
            " convert_timezone('UTC', 'Europe/Paris', '2024-01-01 12:00'::timestamp),"
            " (select count(*) from pg_catalog.svv_external_columns)"
        )
        assert tuple(cur.fetchone()) == (3, 3, True, datetime(2024, 1, 1, 13, 0), 0)
        cur.execute("create table facts (id int)")
        cur.execute("""select "table", tbl_rows from svv_table_info where schema = 'public'""")
        assert [tuple(r) for r in cur.fetchall()] == [("facts", 0)]
    finally:
        conn.close()


def test_tls_is_refused_with_a_clear_error(redshift_proxy: RedshiftProxy, redshift_db: str) -> None:
    before = redshift_proxy.stats.refused_ssl_requests
    with pytest.raises(InterfaceError, match="Server refuses SSL"):
        connect(redshift_proxy, redshift_db, ssl=True)
    assert redshift_proxy.stats.refused_ssl_requests == before + 1


def test_cancel_request_is_relayed(redshift_db: str) -> None:
    # redshift_connector has no cancel(); libpq's has, and psycopg2 holds the GIL during it, so
    # the proxy runs in a child process here (proxy_process' docstring).
    with proxy_process() as proxy:
        conn = psycopg2.connect(host=proxy.host, port=proxy.port, user=ADMIN_USER, dbname=redshift_db)
        try:
            timer = threading.Timer(0.3, conn.cancel)
            timer.start()
            started = time.monotonic()
            with pytest.raises(psycopg2.errors.QueryCanceled), conn.cursor() as cur:
                cur.execute("select pg_sleep(30)")
            elapsed = time.monotonic() - started
            timer.join()
        finally:
            conn.close()
    assert elapsed < 10


def test_closing_the_proxy_ends_relayed_sessions(redshift_db: str) -> None:
    own = start_proxy()
    conn = connect(own, redshift_db)
    own.close()
    with pytest.raises((InterfaceError, OSError)):
        conn.cursor().execute("select 1")
    # The PostgreSQL backend behind the relayed session goes away too.
    admin = psycopg2.connect(host=UPSTREAM[0], port=UPSTREAM[1], user=ADMIN_USER, dbname="postgres")
    try:
        deadline = time.monotonic() + 5
        while True:
            with admin.cursor() as cur:
                cur.execute("select count(*) from pg_stat_activity where datname = %s", (redshift_db,))
                (remaining,) = cur.fetchone()
            admin.rollback()
            if remaining == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        admin.close()
    assert remaining == 0


# -- (b) streaming read: server-side cursor in a transaction ---------------------------------------


def test_cursor_streams_in_batches(redshift_proxy: RedshiftProxy, redshift_db: str) -> None:
    total = 25_000
    conn = connect(redshift_proxy, redshift_db)
    try:
        cur = conn.cursor()
        cur.execute(f"create table events as select g as id, md5(g::text) as email from generate_series(1, {total}) g")
        conn.commit()
        # autocommit is off, so the driver opened a transaction: DECLARE needs one.
        cur.execute("declare c cursor for select id, email from events order by id")
        batches: list[int] = []
        ids_seen, expected_next = 0, 1
        while True:
            cur.execute("fetch forward 1000 from c")
            rows = cur.fetchall()
            if not rows:
                break
            batches.append(len(rows))
            assert rows[0][0] == expected_next and len(rows[0][1]) == 32
            expected_next = rows[-1][0] + 1
            ids_seen += len(rows)
        cur.execute("close c")
        conn.commit()

        conn.autocommit = True  # outside a transaction, PostgreSQL (like Redshift) refuses DECLARE
        with pytest.raises(ProgrammingError, match="transaction block"):
            cur.execute("declare d cursor for select 1")
    finally:
        conn.close()
    assert ids_seen == total
    assert batches == [1000] * (total // 1000)


# -- (c) the dbt adapter recipe, in-process ------------------------------------------------------


def _write_project(project_dir: Path) -> None:
    (project_dir / "dbt_project.yml").write_text(
        f"name: proxy_demo\nversion: '1.0'\nconfig-version: 2\nprofile: {PROFILE}\n", encoding="utf-8"
    )


def _write_postgres_profile(profiles_dir: Path, *, database: str, schema: str) -> None:
    (profiles_dir / "profiles.yml").write_text(
        f"{PROFILE}:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        f"      host: {UPSTREAM[0]}\n      port: {UPSTREAM[1]}\n      user: {ADMIN_USER}\n"
        f"      password: unused\n      dbname: {database}\n      schema: {schema}\n      threads: 1\n",
        encoding="utf-8",
    )


@contextmanager
def dbt_adapter(project_dir: Path, profiles_dir: Path, *, target: str | None = None) -> Iterator[Any]:
    """The dbt-core 1.11 recipe: flags, RuntimeConfig, adapter, and the macros the adapter's
    macro-backed methods (get_columns_in_relation, ...) need. Mirrors dbt's own test fixture."""
    from dbt.adapters.factory import get_adapter, register_adapter, reset_adapters
    from dbt.config.runtime import RuntimeConfig
    from dbt.context.providers import generate_runtime_macro_context
    from dbt.flags import set_from_args
    from dbt.mp_context import get_mp_context
    from dbt.parser.manifest import ManifestLoader
    from dbt_common.events.base_types import EventLevel

    args = argparse.Namespace(
        project_dir=str(project_dir),
        profiles_dir=str(profiles_dir),
        target=target,
        profile=None,
        vars={},
        threads=None,
    )
    set_from_args(args, {})
    config = RuntimeConfig.from_args(args)
    reset_adapters()  # type: ignore[no-untyped-call]
    register_adapter(config, get_mp_context(), EventLevel.DEBUG)  # DEBUG: no "Registered adapter" line
    adapter = get_adapter(config)
    try:
        manifest = ManifestLoader.load_macros(config, adapter.connections.set_query_header, base_macros_only=True)
        adapter.set_macro_resolver(manifest)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
        yield adapter
    finally:
        adapter.cleanup_connections()
        reset_adapters()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("adapter_type", ["postgres", "redshift"])
def test_dbt_adapter_recipe(redshift_proxy: RedshiftProxy, redshift_db: str, tmp_path: Path, adapter_type: str) -> None:
    _write_project(tmp_path)
    if adapter_type == "redshift":
        write_profile(tmp_path, proxy=redshift_proxy, database=redshift_db, schema="analytics")
    else:
        _write_postgres_profile(tmp_path, database=redshift_db, schema="analytics")
    connections_before = redshift_proxy.stats.connections

    with dbt_adapter(tmp_path, tmp_path) as adapter, adapter.connection_named("dbt_activate"):
        assert adapter.type() == adapter_type
        _, table = adapter.execute("select 1 as one, current_database() as db", fetch=True)
        assert [tuple(row) for row in table.rows] == [(1, redshift_db)]

        relation = adapter.Relation.create(database=redshift_db, schema="analytics", identifier="people")
        adapter.create_schema(relation)
        adapter.execute(f"create table {relation} (id integer, email varchar(80))")
        columns = {c.name: c.dtype for c in adapter.get_columns_in_relation(relation)}
        assert set(columns) == {"id", "email"}

        # The raw DB-API connection, streaming in a transaction: how the extractor reads rows.
        adapter.execute(f"insert into {relation} select g, 'p' || g from generate_series(1, 2500) g")
        connection = adapter.connections.get_thread_connection()
        if connection.transaction_open:  # dbt-postgres: create_schema left one open
            adapter.connections.commit()
        # DECLARE needs a transaction. Explicit BEGIN/COMMIT on the raw cursor, because
        # adapter.connections.begin() sends nothing on dbt-postgres (it relies on psycopg2's
        # implicit BEGIN, which psycopg2 skips after dbt's SQL-level COMMIT) nor on dbt-redshift
        # with the redshift_skip_autocommit_transaction_statements flag.
        cur = connection.handle.cursor()
        cur.execute("begin")
        cur.execute(f"declare rows_out cursor for select id from {relation} order by id")
        fetched: list[int] = []
        while True:
            cur.execute("fetch forward 1000 from rows_out")
            batch = cur.fetchall()
            if not batch:
                break
            fetched.extend(row[0] for row in batch)
        cur.execute("close rows_out")
        cur.execute("commit")
        assert fetched == list(range(1, 2501))

    went_through_proxy = redshift_proxy.stats.connections > connections_before
    assert went_through_proxy == (adapter_type == "redshift")


# -- (d) whole dbt invocations through dbtRunner --------------------------------------------------


@pytest.mark.slow  # seeds, views and snapshots with two threads; the mode test builds through the proxy by default
def test_dbt_build_through_proxy(redshift_proxy: RedshiftProxy, redshift_db: str, tmp_path: Path) -> None:
    from dbt.artifacts.schemas.run import RunExecutionResult
    from dbt.cli.main import dbtRunner

    _write_project(tmp_path)
    write_profile(tmp_path, proxy=redshift_proxy, database=redshift_db, schema="analytics", threads=2)
    for folder in ("seeds", "models", "snapshots"):
        (tmp_path / folder).mkdir()
    (tmp_path / "seeds" / "people.csv").write_text(
        "id,name,signed_up\n1,Ann,2024-01-01\n2,Bob,2024-02-03\n3,Zoë,2024-03-04\n", encoding="utf-8"
    )
    (tmp_path / "models" / "people_view.sql").write_text(
        "select id, upper(name) as name, {{ dbt.length('name') }} as name_length,"
        " {{ dbt.current_timestamp() }} as loaded_at from {{ ref('people') }}\n",
        encoding="utf-8",
    )
    (tmp_path / "models" / "people_table.sql").write_text(
        "{{ config(materialized='table') }}\nselect * from {{ ref('people_view') }} where id > 1\n",
        encoding="utf-8",
    )
    (tmp_path / "models" / "people_incremental.sql").write_text(
        "{{ config(materialized='incremental', unique_key='id') }}\nselect id, name from {{ ref('people') }}\n",
        encoding="utf-8",
    )
    (tmp_path / "models" / "schema.yml").write_text(
        "models:\n  - name: people_table\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n",
        encoding="utf-8",
    )
    (tmp_path / "snapshots" / "snapshots.yml").write_text(
        "snapshots:\n  - name: people_snapshot\n    relation: ref('people')\n"
        "    config: {unique_key: id, strategy: check, check_cols: all}\n",
        encoding="utf-8",
    )
    common = ["--project-dir", str(tmp_path), "--profiles-dir", str(tmp_path), "--quiet"]

    runner = dbtRunner()
    build = runner.invoke(["--no-send-anonymous-usage-stats", "build", *common])
    # Second run of the incremental model: dbt-redshift's get_columns_in_relation path.
    rerun = runner.invoke(["--no-send-anonymous-usage-stats", "run", "--select", "people_incremental", *common])
    docs = runner.invoke(["--no-send-anonymous-usage-stats", "docs", "generate", *common])

    assert build.success, build.exception
    assert isinstance(build.result, RunExecutionResult)
    assert {r.node.name: str(r.status) for r in build.result.results} == {
        "people": "success",
        "people_view": "success",
        "people_table": "success",
        "people_incremental": "success",
        "people_snapshot": "success",
        "unique_people_table_id": "pass",
        "not_null_people_table_id": "pass",
    }
    assert rerun.success, rerun.exception
    assert docs.success, docs.exception
    assert (tmp_path / "target" / "catalog.json").exists()

    conn = connect(redshift_proxy, redshift_db)
    try:
        cur = conn.cursor()
        cur.execute("select id, name, name_length from analytics.people_table order by id")
        assert [tuple(r) for r in cur.fetchall()] == [(2, "BOB", 3), (3, "ZOË", 3)]
        cur.execute("select count(*), count(dbt_valid_from) from analytics.people_snapshot")
        assert tuple(cur.fetchone()) == (3, 3)
    finally:
        conn.close()
