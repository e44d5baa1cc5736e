"""The record-id map in the state schema: ``scan`` by prefix (links.py's indexes) on DuckDB and PostgreSQL,
with the characters LIKE would read as wildcards in keys; and ``WarehouseStateStore.resend`` marking rows changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg2
import pytest

from dbt_activate.state.journal import MAYBE_FINGERPRINT
from dbt_activate.state.record_ids import WarehouseIdStore
from dbt_activate.state.store import WarehouseStateStore
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.registry import dialect_for
from tests.e2e.project import PG_DSN, fresh_database
from tests.warehouse.test_connection_duckdb import Handle


@pytest.fixture(params=["duckdb", "postgres"])
def conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WarehouseConnection, str]]:
    if request.param == "duckdb":
        db = duckdb.connect(str(tmp_path / "w.duckdb"))
        db.execute("create schema state")
        yield WarehouseConnection(Handle(db), dialect_for("duckdb")), "state"
        db.close()
    else:
        with fresh_database("act_refs_ids") as dbname:
            pg = psycopg2.connect(f"{PG_DSN} dbname={dbname}")
            pg.autocommit = True
            pg.cursor().execute("create schema state")
            yield WarehouseConnection(psycopg2.connect(f"{PG_DSN} dbname={dbname}"), dialect_for("postgres")), "state"
            pg.close()


def test_scan_finds_the_keys_under_each_prefix_and_no_other(conn: tuple[WarehouseConnection, str]) -> None:
    connection, schema = conn
    store = WarehouseIdStore(connection, schema, "crm")
    store.ensure()
    store.put_many({"under|fleets|1|drivers|a": "drivers", "under|fleets|1|drivers|b%_": "drivers",
                    "under|fleets|10|drivers|c": "drivers", "under|fleets|2|drivers|d": "drivers",
                    "under|fleetsX|1|drivers|e": "drivers", "sync|fleets|1": "901"})
    other = WarehouseIdStore(connection, schema, "other_account")
    other.put_many({"under|fleets|1|drivers|z": "drivers"})
    assert store.scan(["under|fleets|1|"]) == {"under|fleets|1|drivers|a": "drivers",
                                               "under|fleets|1|drivers|b%_": "drivers"}
    assert set(store.scan(["under|fleets|1|", "under|fleets|2|"])) == {
        "under|fleets|1|drivers|a", "under|fleets|1|drivers|b%_", "under|fleets|2|drivers|d"}
    assert store.scan(["orphan|drivers|"]) == {}


def test_resend_marks_snapshot_rows_so_the_next_diff_sends_them(conn: tuple[WarehouseConnection, str]) -> None:
    connection, schema = conn
    state = WarehouseStateStore(connection, schema)
    state.ensure()
    snapshot = state.snapshot("drivers")
    with connection.transaction():
        for key in ("1", "2"):
            connection.execute(f"insert into {snapshot} (sync_key, fingerprint, record_identity) values "
                               f"('{key}', 'ABC', '{{}}')")
    state.resend("drivers", ["2", "missing"])
    rows = dict(connection.query(f"select sync_key, fingerprint from {snapshot} order by sync_key"))
    connection.end_read()
    assert rows == {"1": "ABC", "2": MAYBE_FINGERPRINT}
