"""The one-md5 fingerprint (DuckDB, PostgreSQL), and snapshots saved with the older per-column form.

Runs the dialect's SQL on an in-memory DuckDB and on a throwaway PostgreSQL schema: the new form is
injective, and a snapshot written by dbt-activate 0.1.0 (lower-case per-column fingerprints) is
neither seen as all-changed nor left unchanged where a row did change; ``upgrade_fingerprints``
rewrites it once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg2
import pytest

from dbt_activate.state.journal import MAYBE_FINGERPRINT
from dbt_activate.warehouse.dialect import OP, Column
from dbt_activate.warehouse.registry import dialect_for

D = dialect_for("duckdb")
PG = dialect_for("postgres")
KEYS = [Column("id", "integer")]
FIELDS = [Column("a", "varchar"), Column("b", "varchar"), Column("flag", "boolean")]


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    connection.execute("create table model (id integer, a varchar, b varchar, flag boolean)")
    connection.execute("insert into model values (1, 'a', '', true), (2, '', 'a', false), (3, null, 'a', null), "
                       "(4, 'x', 'y', true), (5, 'p', 'q', false)")
    connection.execute("create table snap (sync_key varchar, fingerprint varchar(32), record_identity varchar)")
    yield connection
    connection.close()


def fingerprints(con: duckdb.DuckDBPyConnection, expression: str) -> dict[int, str]:
    return {int(i): str(fp) for i, fp in con.execute(f"select id, {expression} from model").fetchall()}


def save_snapshot(con: duckdb.DuckDBPyConnection, expression: str) -> None:
    con.execute(f"insert into snap select {D.key_expression(KEYS)}, {expression}, null from model")


def diff(con: duckdb.DuckDBPyConnection, **options: bool) -> dict[str, str]:
    sql = D.diff_query("model", "snap", KEYS, FIELDS, None, **options).sql
    return {str(key): str(op) for op, key, *_ in con.execute(sql).fetchall()}


def test_one_md5_over_length_prefixed_texts_in_upper_case(con: duckdb.DuckDBPyConnection) -> None:
    fps = fingerprints(con, D.fingerprint(FIELDS))
    assert fps[1] == hashlib.md5(b"1:a0:4:true").hexdigest().upper()
    assert fps[3] == hashlib.md5(b"-:1:a-:").hexdigest().upper()
    # ('a', '') and ('', 'a') differ, and so do null and ''.
    assert len(set(fps.values())) == len(fps)
    assert fps[1] != fingerprints(con, D.fingerprint([FIELDS[1], FIELDS[0], FIELDS[2]]))[1]


def test_redshift_keeps_the_per_column_form() -> None:
    assert dialect_for("redshift").fingerprint(FIELDS) == dialect_for("redshift").legacy_fingerprint(FIELDS)
    assert dialect_for("redshift").upgrade_fingerprints("m", "s", KEYS, FIELDS, None) is None


def test_snapshot_with_older_fingerprints_shows_only_real_changes(con: duckdb.DuckDBPyConnection) -> None:
    save_snapshot(con, D.legacy_fingerprint(FIELDS))
    assert con.execute(D.legacy_fingerprints_query("snap") or "").fetchall() == [(1,)]
    con.execute("update model set b = 'changed' where id = 4")
    con.execute("update snap set fingerprint = ? where sync_key = '5'", [MAYBE_FINGERPRINT])
    assert diff(con) == {"4": "change", "5": "change"}
    # A full resync still sends every row; a mode without changes sends none of them.
    assert set(diff(con, include_unchanged=True).values()) == {"change"}
    assert diff(con, include_changed=False) == {}


def test_upgrade_rewrites_unchanged_rows_once(con: duckdb.DuckDBPyConnection) -> None:
    save_snapshot(con, D.legacy_fingerprint(FIELDS))
    con.execute("update model set b = 'changed' where id = 4")
    con.execute(D.upgrade_fingerprints("model", "snap", KEYS, FIELDS, None) or "")
    saved = {int(k): str(fp) for k, fp in con.execute("select sync_key, fingerprint from snap").fetchall()}
    new = fingerprints(con, D.fingerprint(FIELDS))
    assert {k for k in saved if saved[k] == new[k]} == {1, 2, 3, 5}
    assert diff(con) == {"4": "change"}
    count = f"select {OP}, count(*) from ({D.diff_query('model', 'snap', KEYS, FIELDS, None).sql}) d group by 1"
    assert con.execute(count).fetchall() == [("change", 1)]


def test_unconfirmed_rows_are_not_an_older_form(con: duckdb.DuckDBPyConnection) -> None:
    save_snapshot(con, D.fingerprint(FIELDS))
    con.execute("update snap set fingerprint = ? where sync_key = '1'", [MAYBE_FINGERPRINT])
    assert con.execute(D.legacy_fingerprints_query("snap") or "").fetchall() == []
    assert diff(con) == {"1": "change"}


def test_postgres_one_md5_and_older_snapshots() -> None:
    schema = f"fp_{uuid.uuid4().hex[:10]}"
    con: Any = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    con.autocommit = True
    cur = con.cursor()
    try:
        cur.execute(f"create schema {schema}")
        cur.execute(f"create table {schema}.model (id integer, a varchar, b varchar, flag boolean)")
        cur.execute(f"insert into {schema}.model values (1, 'a', '', true), (2, '', 'a', false), "
                    "(3, null, 'a', null), (4, 'x', 'y', true)")
        cur.execute(f"create table {schema}.snap (sync_key text, fingerprint varchar(32), record_identity text)")
        cur.execute(f"select id, {PG.fingerprint(FIELDS)} from {schema}.model order by id")
        fps = dict(cur.fetchall())
        assert fps[1] == hashlib.md5(b"1:a0:4:true").hexdigest().upper()
        assert fps[3] == hashlib.md5(b"-:1:a-:").hexdigest().upper()
        cur.execute(f"insert into {schema}.snap select {PG.key_expression(KEYS)}, {PG.legacy_fingerprint(FIELDS)}, "
                    f"null from {schema}.model")
        cur.execute(f"update {schema}.model set b = 'changed' where id = 4")
        diff = PG.diff_query(f"{schema}.model", f"{schema}.snap", KEYS, FIELDS, None).sql
        cur.execute(diff)
        assert [(op, key) for op, key, *_ in cur.fetchall()] == [("change", "4")]
        cur.execute(PG.legacy_fingerprints_query(f"{schema}.snap") or "")
        assert cur.fetchall() == [(1,)]
        cur.execute(PG.upgrade_fingerprints(f"{schema}.model", f"{schema}.snap", KEYS, FIELDS, None) or "")
        cur.execute(f"select count(*) from {schema}.snap where fingerprint = upper(fingerprint)")
        assert cur.fetchall() == [(3,)]
        cur.execute(diff)
        assert [(op, key) for op, key, *_ in cur.fetchall()] == [("change", "4")]
    finally:
        cur.execute(f"drop schema if exists {schema} cascade")
        con.close()
