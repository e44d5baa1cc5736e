"""DuckDB runs inside dbt-activate's process: the connection bounds its memory and grows the bound
only when a statement runs out of it. Real DuckDB databases, no dbt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dbt_activate.errors import WarehouseError
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.duckdb_memory import (
    DIFF_BYTES_PER_ROW,
    DUCKDB_MEMORY_LIMIT,
    duckdb_tuning,
    memory_for_rows,
    next_memory_limit,
    size_bytes,
)
from dbt_activate.warehouse.registry import dialect_for

# Enough distinct strings that a hash table of them needs more than a few MB.
HEAVY_GROUP_BY = ("select count(*) from (select cast(i as varchar) as k, count(*) as n "
                  "from range(300000) t(i) group by k) x")
HEAVY_JOIN = ("select a.k from (select cast(i as varchar) as k from range(300000) t(i)) a "
              "join (select cast(i as varchar) as k from range(300000) t(i)) b on a.k = b.k")


class Handle:
    """Like dbt-duckdb's connection wrapper: one cursor for the life of the connection."""

    def __init__(self, database: duckdb.DuckDBPyConnection) -> None:
        self._cursor = database.cursor()

    def cursor(self) -> Any:
        return self._cursor

    def close(self) -> None:
        self._cursor.close()


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    db = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield db
    db.close()


def connect(database: duckdb.DuckDBPyConnection) -> WarehouseConnection:
    return WarehouseConnection(Handle(database), dialect_for("duckdb"))


def setting(conn: WarehouseConnection, name: str) -> Any:
    return conn.query(f"select current_setting('{name}')")[0][0]


def limit(conn: WarehouseConnection) -> int:
    size = size_bytes(setting(conn, "memory_limit"))
    assert size is not None
    return size


def test_sizes_parse_as_duckdb_prints_and_takes_them() -> None:
    assert size_bytes("61.0 MiB") == 61 * 2**20
    assert size_bytes("18.8 GiB") == int(18.8 * 2**30)
    assert size_bytes("64MB") == 64_000_000
    assert size_bytes("512 bytes") == 512
    assert size_bytes("lots") is None


def test_tuning_defaults_and_overrides() -> None:
    assert duckdb_tuning({}) == (DUCKDB_MEMORY_LIMIT, min(2, os.cpu_count() or 1))
    assert duckdb_tuning({"DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT": "1GB", "DBT_ACTIVATE_DUCKDB_THREADS": "3"}) == ("1GB", 3)
    assert duckdb_tuning({"DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT": "default",
                          "DBT_ACTIVATE_DUCKDB_THREADS": "Default"}) == (None, None)
    with pytest.raises(WarehouseError, match="DBT_ACTIVATE_DUCKDB_THREADS"):
        duckdb_tuning({"DBT_ACTIVATE_DUCKDB_THREADS": "0"})


def test_the_limit_doubles_until_duckdbs_own_default() -> None:
    gib = 2**30
    assert next_memory_limit(64 * 10**6, physical=16 * gib) == 128 * 10**6
    assert next_memory_limit(6 * gib, physical=16 * gib) == 12 * gib
    assert next_memory_limit(7 * gib, physical=16 * gib) is None  # 14 GiB is past 80% of RAM: DuckDB's default


def test_a_big_snapshot_asks_for_more_memory_up_to_duckdbs_default() -> None:
    gib = 2**30
    assert memory_for_rows(1_000_000, current=64 * 10**6, physical=16 * gib) is None  # the start limit is enough
    assert memory_for_rows(10_000_000, current=64 * 10**6, physical=16 * gib) == 10_000_000 * DIFF_BYTES_PER_ROW
    assert memory_for_rows(10**9, current=64 * 10**6, physical=16 * gib) == 16 * gib * 8 // 10


def test_the_limit_is_sized_from_the_snapshot_before_a_diff(database: duckdb.DuckDBPyConnection,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", raising=False)
    database.execute("create table snapshot as select cast(i as varchar) as sync_key from range(3000000) t(i)")
    conn = connect(database)
    before = limit(conn)
    conn.reserve_memory_for("snapshot")
    assert before < 3_000_000 * DIFF_BYTES_PER_ROW
    assert limit(conn) == pytest.approx(3_000_000 * DIFF_BYTES_PER_ROW, rel=0.05)


def test_a_limit_the_user_set_is_not_resized(database: duckdb.DuckDBPyConnection,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "50MB")
    database.execute("create table snapshot as select cast(i as varchar) as sync_key from range(3000000) t(i)")
    conn = connect(database)
    conn.reserve_memory_for("snapshot")
    assert limit(conn) == pytest.approx(50 * 10**6, rel=0.05)


def test_other_warehouses_get_no_session_settings() -> None:
    assert dialect_for("postgres").session_settings(memory_limit="64MB", threads=2) == []
    assert dialect_for("redshift").session_settings(memory_limit="64MB", threads=2) == []


def test_connection_bounds_duckdb(database: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("DBT_ACTIVATE_DUCKDB_THREADS", raising=False)
    conn = connect(database)
    assert limit(conn) == pytest.approx(size_bytes(DUCKDB_MEMORY_LIMIT), rel=0.01)
    assert setting(conn, "threads") == min(2, os.cpu_count() or 1)
    assert setting(conn, "preserve_insertion_order") is False


def test_default_leaves_duckdb_memory_alone(database: duckdb.DuckDBPyConnection,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    database.execute("set memory_limit = '3GB'")  # as a profile's `settings:` would
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "default")
    conn = connect(database)
    assert limit(conn) == pytest.approx(3 * 10**9, rel=0.05)


def test_a_bad_memory_limit_names_the_variable(database: duckdb.DuckDBPyConnection,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "plenty")
    with pytest.raises(WarehouseError, match="DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT"):
        connect(database)


def test_a_query_out_of_memory_runs_again_with_more(database: duckdb.DuckDBPyConnection,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "4MB")
    conn = connect(database)
    with pytest.raises(duckdb.OutOfMemoryException):
        database.cursor().execute(HEAVY_GROUP_BY)  # the same statement, not through the connection
    assert conn.query(HEAVY_GROUP_BY) == [(300000,)]
    assert limit(conn) > 4 * 2**20


def test_a_stream_out_of_memory_before_its_first_row_runs_again(database: duckdb.DuckDBPyConnection,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "4MB")
    conn = connect(database)
    chunks = list(conn.stream(HEAVY_JOIN, 50_000))
    keys = [row[0] for chunk in chunks for row in chunk]
    assert len(keys) == 300000 and len(set(keys)) == 300000
    assert max(len(c) for c in chunks) <= 50_000
    assert limit(conn) > 4 * 2**20


def test_a_transaction_out_of_memory_runs_again_whole(database: duckdb.DuckDBPyConnection,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "4MB")
    conn = connect(database)
    conn.execute("create table runs (n integer)")
    conn.execute("create table counted (n bigint)")
    attempts = []

    def body() -> str:
        attempts.append(1)
        conn.execute("insert into runs values (1)")
        conn.execute(f"insert into counted {HEAVY_GROUP_BY}")
        return "done"

    assert conn.run_transaction(body) == "done"
    assert len(attempts) > 1  # it did run out of memory first
    # Earlier attempts were rolled back: their first statement left nothing behind.
    assert conn.query("select count(*) from runs") == [(1,)]
    assert conn.query("select n from counted") == [(300000,)]


def test_an_error_that_is_not_memory_is_not_retried(database: duckdb.DuckDBPyConnection,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "4MB")
    conn = connect(database)
    attempts = []

    def body() -> None:
        attempts.append(1)
        conn.execute("select * from no_such_table")

    with pytest.raises(WarehouseError, match="no_such_table"):
        conn.run_transaction(body)
    assert attempts == [1]
    assert limit(conn) == pytest.approx(4 * 10**6, rel=0.05)
