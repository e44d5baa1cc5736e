"""The per-sync lock without LOCK TABLE (``lock_kind = "merge"``): one conditional MERGE, then the
holder read back. Two (and more) acquirers at once on real engines: PostgreSQL 15 (MERGE, with a
dialect that takes the merge path), Snowflake's API emulated by fakesnow through the real
connector and BigQuery's emulated by crucible through the real Client. The same heartbeat, expiry
and takeover rules as the LOCK TABLE path (tests/e2e/test_concurrency.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import psycopg2
import pytest

from dbt_activate.errors import SyncLockedError
from dbt_activate.state.locks import lock_table_ddl
from dbt_activate.warehouse.bigquery import BigQueryDialect
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.postgres import PostgresDialect
from dbt_activate.warehouse.snowflake import SnowflakeDialect
from tests.e2e.project import PG_DSN, fresh_database
from tests.state.locks_harness import SYNC, Connect, never_two_holders, sync_lock
from tests.support import bigquery, fakesnow


@dataclass(frozen=True)
class _PostgresByMerge(PostgresDialect):
    """PostgreSQL taking the lock as Snowflake does: proves the MERGE path on a second engine."""

    lock_kind: ClassVar[str] = "merge"


@pytest.fixture(params=["postgres", "snowflake", pytest.param("bigquery", marks=[pytest.mark.bigquery,
                                                                          pytest.mark.bigquery_in_default_run])])
def connect(request: pytest.FixtureRequest) -> Iterator[tuple[Connect, str]]:
    if request.param == "postgres":
        with fresh_database("act_lock") as dbname:
            yield (lambda: WarehouseConnection(psycopg2.connect(f"{PG_DSN} dbname={dbname}"), _PostgresByMerge()),
                   "public.sync_locks")
    elif request.param == "bigquery":  # crucible's server through the real Client
        port = request.getfixturevalue("crucible_port")
        bq = BigQueryDialect()
        yield (lambda: WarehouseConnection(bigquery.client(port), bq),
               bq.table(f"act_lock_{uuid.uuid4().hex[:8]}", "sync_locks"))
    else:
        port = request.getfixturevalue("fakesnow_port")
        database = f"act_lock_{uuid.uuid4().hex[:8]}"
        dialect = SnowflakeDialect(statement_timeout=60)
        yield (lambda: WarehouseConnection(fakesnow.connect(port, database), dialect),
               dialect.table("analytics", "sync_locks"))


def _holders(conn: WarehouseConnection, table: str) -> list[str]:
    rows = conn.query(f"select run_id from {table} where sync_name = {conn.dialect.placeholder}", [SYNC])
    conn.end_read()
    return sorted(str(r[0]) for r in rows)


def _setup(connect: Connect, table: str) -> WarehouseConnection:
    conn = connect()
    if conn.dialect.name == "snowflake":  # autocommit: Snowflake commits at every DDL anyway
        conn.execute(conn.dialect.create_schema("analytics"))
        conn.execute(lock_table_ddl(table, conn.dialect))
        return conn
    if conn.dialect.name == "bigquery":  # no transactions: each statement commits
        conn.execute(conn.dialect.create_schema(table.split(".")[0].strip("`")))
        conn.execute(lock_table_ddl(table, conn.dialect))
        return conn
    with conn.transaction():
        conn.execute(lock_table_ddl(table, conn.dialect))
    return conn


def test_merge_lock_blocks_renews_releases_and_takes_over_expired_and_dead_holders(
        connect: tuple[Connect, str]) -> None:
    factory, table = connect
    admin = _setup(factory, table)
    first, second = sync_lock(factory(), table, "run-1"), sync_lock(factory(), table, "run-2", host="host-b")
    try:
        first.acquire(0)
        with pytest.raises(SyncLockedError, match=r"\(run run-1 on host-a, pid 1\)"):
            second.acquire(0)
        assert first.try_acquire() is None  # the holder may take its own lock again
        before = admin.query(f"select expires_at from {table}")
        first.renew()
        assert admin.query(f"select expires_at from {table}") > before  # the heartbeat's write
        first.release()
        second.acquire(0)
        assert _holders(admin, table) == ["run-2"]
        second.release()
        assert _holders(admin, table) == []

        expired = sync_lock(factory(), table, "run-3", ttl=0.0)  # stopped renewing: expired at once
        expired.acquire(0)
        expired._stop.set()
        first.acquire(0)
        assert _holders(admin, table) == ["run-1"]
        first.release()

        dead = sync_lock(factory(), table, "run-4", pid=2**22 + 12345)  # a process of this host that is gone
        assert dead.try_acquire() is None
        assert sync_lock(factory(), table, "run-5", host="host-a").try_acquire() is None
        assert _holders(admin, table) == ["run-5"]
        for lock in (expired, dead):
            lock.conn.close()
    finally:
        for lock in (first, second):
            lock._stop.set()
            lock.conn.close()
        admin.close()


def test_of_acquirers_starting_together_never_two_hold_the_lock(connect: tuple[Connect, str]) -> None:
    factory, table = connect
    admin = _setup(factory, table)
    try:
        held = never_two_holders(factory, table, lambda _: _holders(admin, table), rounds=5, contenders=4)
        assert [run_id.split("-")[0] for run_id in held] == [f"r{round_}" for round_ in range(5)]
    finally:
        admin.close()
