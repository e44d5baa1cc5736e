"""The mysql destination against the real local MariaDB (127.0.0.1:3306, one fresh database per test)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.mysql.destination import MySQLDestination
from dbt_activate.destinations.mysql.driver import parse_dsn
from dbt_activate.destinations.mysql.table import mysql_type
from dbt_activate.destinations.sql import TableRef, parse_table_ref
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from tests.conformance.harness_mysql import HOST, PORT, mysql_database
from tests.support.delivery import write_batches

pymysql = pytest.importorskip("pymysql")


@pytest.fixture
def db() -> Iterator[tuple[Any, str]]:
    with mysql_database("dbt_activate_test") as found:
        yield found


def sql(db: tuple[Any, str], statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    admin, database = db
    with admin.cursor() as cur:
        cur.execute(f"USE `{database}`")
        cur.execute(statement, params or None)
        return list(cur.fetchall())


def target(obj: str, fields: Mapping[str, str], mode: Mode = Mode.UPSERT,
           identity: tuple[str, ...] = ("id",)) -> SyncTarget:
    return SyncTarget("people_sync", obj, mode, tuple(FieldSpec(f, f, t) for f, t in fields.items()), identity,
                      run_id="run1")


def records(*rows: dict[str, Any]) -> list[Record]:
    return [Record(str(row["id"]), row) for row in rows]


def destination(database: str, **config: Any) -> MySQLDestination:
    return MySQLDestination("ops_db", {"type": "mysql", "host": HOST, "port": PORT, "user": "root",
                                       "database": database, **config})


def deliver(dest: MySQLDestination, tgt: SyncTarget, *batches: Batch) -> list[BatchResult]:
    return write_batches(dest, tgt, *batches)


PEOPLE = {"id": "integer", "email": "text", "score": "numeric(6,2)", "active": "boolean"}


@pytest.fixture
def people(db: tuple[Any, str]) -> str:
    sql(db, "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(20) NOT NULL, score DECIMAL(6,2), "
            "active BOOLEAN)")
    return "people"


def rows(db: tuple[Any, str], table: str = "people") -> list[tuple[Any, ...]]:
    return sql(db, f"SELECT * FROM `{table}` ORDER BY 1")


def test_upsert_updates_existing_and_inserts_new(db: tuple[Any, str], people: str) -> None:
    sql(db, "INSERT INTO people VALUES (1, 'old@x.io', 1, 0)")
    batch = Batch(Operation.UPSERT, records({"id": 1, "email": "new@x.io", "score": 2.5, "active": True},
                                            {"id": 2, "email": "b@x.io", "score": None, "active": False}))
    assert deliver(destination(db[1]), target(people, PEOPLE), batch) == [BatchResult()]
    assert rows(db) == [(1, "new@x.io", Decimal("2.50"), 1), (2, "b@x.io", None, 0)]


def test_update_changes_existing_rows_and_skips_unknown(db: tuple[Any, str], people: str) -> None:
    sql(db, "INSERT INTO people VALUES (1, 'a@x.io', 1, 0), (2, 'b@x.io', 2, 0)")
    batch = Batch(Operation.UPDATE, records({"id": 1, "email": "a2@x.io", "score": 3, "active": True},
                                            {"id": 9, "email": "z@x.io", "score": 1, "active": True},
                                            {"id": 2, "email": "far-too-long@example.com", "score": 1, "active": True}))
    [result] = deliver(destination(db[1]), target(people, PEOPLE, Mode.UPDATE), batch)
    assert result.skipped == {"9": "no record with this identity"}
    assert set(result.rejected) == {"2"} and "too long" in result.rejected["2"].lower()
    assert rows(db) == [(1, "a2@x.io", Decimal("3.00"), 1), (2, "b@x.io", Decimal("2.00"), 0)]


@pytest.mark.parametrize(("nulls", "score"), [("keep", Decimal("1.00")), ("clear", None)])
@pytest.mark.parametrize("operation", [Operation.UPDATE, Operation.UPSERT])
def test_a_null_keeps_the_value_unless_the_sync_clears(db: tuple[Any, str], people: str, operation: Operation,
                                                       nulls: str, score: Decimal | None) -> None:
    sql(db, "INSERT INTO people VALUES (1, 'a@x.io', 1, 0)")
    batch = Batch(operation, records({"id": 1, "email": "a2@x.io", "score": None, "active": True}))
    mode = Mode.UPDATE if operation is Operation.UPDATE else Mode.UPSERT
    assert deliver(destination(db[1]), replace(target(people, PEOPLE, mode), nulls=nulls), batch) == [BatchResult()]
    assert rows(db) == [(1, "a2@x.io", score, 1)]


def test_create_inserts_new_rows_and_skips_existing_ones(db: tuple[Any, str], people: str) -> None:
    sql(db, "INSERT INTO people VALUES (1, 'a@x.io', 1, 0)")
    batch = Batch(Operation.CREATE, records({"id": 1, "email": "changed@x.io", "score": 5, "active": True},
                                            {"id": 2, "email": "b@x.io", "score": 2, "active": True}))
    [result] = deliver(destination(db[1]), target(people, PEOPLE, Mode.CREATE), batch)
    assert result.skipped == {"1": "a record with this identity already exists"}
    assert rows(db) == [(1, "a@x.io", Decimal("1.00"), 0), (2, "b@x.io", Decimal("2.00"), 1)]


def test_identity_is_compared_by_the_column_collation(db: tuple[Any, str]) -> None:
    # A case-insensitive collation (MySQL's default) finds 'ADA@X.IO' for 'ada@x.io': it is the same record.
    sql(db, "CREATE TABLE contacts (email VARCHAR(40) COLLATE utf8mb4_unicode_ci PRIMARY KEY, name VARCHAR(20))")
    sql(db, "INSERT INTO contacts VALUES ('ADA@X.IO', 'Ada')")
    tgt = target("contacts", {"email": "text", "name": "text"}, Mode.UPDATE, identity=("email",))
    batch = Batch(Operation.UPDATE, [Record("1", {"email": "ada@x.io", "name": "Lovelace"})])
    assert deliver(destination(db[1]), tgt, batch) == [BatchResult()]
    assert rows(db, "contacts") == [("ADA@X.IO", "Lovelace")]


def test_append_inserts_every_record_without_a_key(db: tuple[Any, str]) -> None:
    sql(db, "CREATE TABLE events (id INT, email VARCHAR(20))")
    batch = Batch(Operation.APPEND, records({"id": 1, "email": "a@x.io"}, {"id": 1, "email": "a@x.io"}))
    tgt = target("events", {"id": "integer", "email": "text"}, Mode.APPEND, identity=())
    assert deliver(destination(db[1]), tgt, batch) == [BatchResult()]
    assert rows(db, "events") == [(1, "a@x.io"), (1, "a@x.io")]


def test_delete_and_clear_by_identity(db: tuple[Any, str]) -> None:
    sql(db, "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(20), score INT)")
    sql(db, "INSERT INTO people VALUES (1, 'a@x.io', 1), (2, 'b@x.io', 2), (3, 'c@x.io', 3)")
    fields = {"id": "integer", "email": "text", "score": "integer"}
    dest = destination(db[1])
    deliver(dest, target("people", fields, Mode.MIRROR),
            Batch(Operation.DELETE, [Record("1", {"id": 1}), Record("9", {"id": 9})]),
            Batch(Operation.CLEAR, [Record("2", {"id": 2})]))
    assert rows(db) == [(2, None, None), (3, "c@x.io", 3)]


def test_repeated_identity_in_one_upsert_batch_last_one_wins(db: tuple[Any, str], people: str) -> None:
    batch = Batch(Operation.UPSERT, [Record("a", {"id": 1, "email": "first@x.io"}),
                                     Record("b", {"id": 1, "email": "last@x.io"})])
    assert deliver(destination(db[1]), target(people, {"id": "integer", "email": "text"}), batch) == [BatchResult()]
    assert rows(db) == [(1, "last@x.io", None, None)]


def test_bad_rows_are_rejected_alone_with_the_server_reason(db: tuple[Any, str], people: str) -> None:
    batch = Batch(Operation.UPSERT, records(
        {"id": 1, "email": "a@x.io", "score": 1}, {"id": 2, "email": "x" * 21, "score": 1},
        {"id": 3, "email": None, "score": 1}, {"id": 4, "email": "d@x.io", "score": 99999},
        {"id": 5, "email": "e@x.io", "score": float("nan")}, {"id": 6, "email": "f@x.io", "score": 6},
        {"id": None, "email": "g@x.io", "score": 1}))
    [result] = deliver(destination(db[1]), target(people, {"id": "integer", "email": "text", "score": "numeric"}),
                       batch)
    assert set(result.rejected) == {"2", "3", "4", "5", "None"}
    assert "too long" in result.rejected["2"].lower()
    assert "cannot be null" in result.rejected["3"].lower()
    assert "out of range" in result.rejected["4"].lower()
    assert "NaN" in result.rejected["5"] or "nan" in result.rejected["5"]
    assert result.rejected["None"] == "identity field 'id' is null"
    assert [r[0] for r in rows(db)] == [1, 6]


def test_values_of_every_kind_fit_their_columns(db: tuple[Any, str]) -> None:
    sql(db, "CREATE TABLE things (id INT PRIMARY KEY, seen DATETIME(6), meta JSON, tags TEXT, "
            "uid CHAR(36), day DATE, blob_ VARBINARY(10))")
    seen = datetime.datetime(2025, 6, 1, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    import uuid

    uid = uuid.UUID(int=7)
    record = {"id": 1, "seen": seen, "meta": {"a": [1, 2]}, "tags": ["x", "y"], "uid": uid,
              "day": datetime.date(2024, 2, 29), "blob_": b"\x00\x01"}
    fields = dict.fromkeys(record, "")
    assert deliver(destination(db[1]), target("things", fields), Batch(Operation.UPSERT, [Record("1", record)])) \
        == [BatchResult()]
    [row] = rows(db, "things")
    assert row[1] == datetime.datetime(2025, 6, 1, 12, 30)  # stored as UTC wall time
    assert row[2] == '{"a": [1, 2]}' and row[3] == '["x", "y"]' and row[4] == str(uid)
    assert row[5] == datetime.date(2024, 2, 29) and row[6] == b"\x00\x01"


def test_create_table_maps_warehouse_types_and_keys_the_identity(db: tuple[Any, str]) -> None:
    fields = {"email": "varchar(300)", "score": "numeric(10,2)", "n": "bigint", "seen": "timestamp with time zone",
              "ok": "boolean", "data": "json"}
    tgt = target(f"{db[1]}.made", fields, identity=("email",))
    batch = Batch(Operation.UPSERT, [Record("1", {"email": "a@x.io", "score": Decimal("1.25"), "n": 2**40,
                                                  "seen": None, "ok": True, "data": {"k": 1}})])
    assert deliver(destination(db[1], create_table=True), tgt, batch) == [BatchResult()]
    types = dict(sql(db, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                         "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'made'", (db[1],)))
    assert types["email"] == "varchar(255)" and types["score"] == "decimal(10,2)" and types["n"] == "bigint(20)"
    assert types["seen"] == "datetime(6)" and types["ok"] == "tinyint(1)"
    keys = sql(db, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
                   "AND TABLE_NAME = 'made' AND INDEX_NAME = 'PRIMARY'", (db[1],))
    assert keys == [("email",)]


def test_create_table_adds_missing_columns(db: tuple[Any, str], people: str) -> None:
    tgt = target(people, {**PEOPLE, "city": "varchar"})
    batch = Batch(Operation.UPSERT, records({"id": 1, "email": "a@x.io", "city": "Paris"}))
    assert deliver(destination(db[1], create_table=True), tgt, batch) == [BatchResult()]
    assert rows(db)[0][-1] == "Paris"


def test_missing_table_is_a_config_error_with_a_hint(db: tuple[Any, str], people: str) -> None:
    with pytest.raises(ConfigError, match=r"People does not exist \(there is .*people: table names are case"):
        deliver(destination(db[1]), target("People", PEOPLE))


def test_missing_columns_are_a_config_error_naming_them(db: tuple[Any, str], people: str) -> None:
    with pytest.raises(ConfigError, match="has no column 'city'"):
        deliver(destination(db[1]), target(people, {**PEOPLE, "city": "text"}))


def test_upsert_never_merges_a_row_into_a_record_found_by_another_unique_key(db: tuple[Any, str]) -> None:
    # ON DUPLICATE KEY UPDATE would turn record 1 (a@x.io) into record 3: the row must be refused instead.
    sql(db, "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(20) UNIQUE)")
    sql(db, "INSERT INTO people VALUES (1, 'a@x.io'), (2, 'b@x.io')")
    batch = Batch(Operation.UPSERT, records({"id": 3, "email": "a@x.io"}, {"id": 2, "email": "c@x.io"},
                                            {"id": 4, "email": "d@x.io"}))
    [result] = deliver(destination(db[1]), target("people", {"id": "integer", "email": "text"}), batch)
    assert set(result.rejected) == {"3"} and "duplicate" in result.rejected["3"].lower()
    assert rows(db) == [(1, "a@x.io"), (2, "c@x.io"), (4, "d@x.io")]


def test_upsert_without_a_key_on_the_identity_updates_then_inserts(db: tuple[Any, str]) -> None:
    sql(db, "CREATE TABLE loose (id INT, email VARCHAR(20))")
    sql(db, "INSERT INTO loose VALUES (1, 'a@x.io')")
    batch = Batch(Operation.UPSERT, records({"id": 1, "email": "a2@x.io"}, {"id": 2, "email": "b@x.io"}))
    assert deliver(destination(db[1]), target("loose", {"id": "integer", "email": "text"}), batch) == [BatchResult()]
    assert rows(db, "loose") == [(1, "a2@x.io"), (2, "b@x.io")]


def test_quoted_names_with_dots_backticks_and_percent_signs(db: tuple[Any, str]) -> None:
    sql(db, "CREATE TABLE `we.ird``%t` (`i%d` INT PRIMARY KEY, `na``me` VARCHAR(10))")
    tgt = target(f"`{db[1]}`.`we.ird``%t`", {"i%d": "integer", "na`me": "text"}, identity=("i%d",))
    batch = Batch(Operation.UPSERT, [Record("1", {"i%d": 1, "na`me": "x"})])
    upd = Batch(Operation.UPDATE, [Record("1", {"i%d": 1, "na`me": "y"})])
    assert deliver(destination(db[1]), tgt, batch, upd) == [BatchResult(), BatchResult()]
    assert rows(db, "we.ird``%t") == [(1, "y")]


def test_killed_connection_is_retryable_and_the_next_write_reconnects(db: tuple[Any, str], people: str) -> None:
    dest, tgt = destination(db[1]), target(people, PEOPLE)
    batch = Batch(Operation.UPSERT, records({"id": 1, "email": "a@x.io"}))

    async def go() -> BatchResult:
        await dest.open(tgt)
        try:
            # The destination's connection has no default database (it qualifies every table): ask it its id.
            sql(db, f"KILL CONNECTION {int(dest._conn.thread_id())}")
            with pytest.raises(RetryableDestinationError):
                await dest.write(tgt, batch)
            return await dest.write(tgt, batch)
        finally:
            await dest.close()

    assert asyncio.run(go()) == BatchResult()
    assert [r[0] for r in rows(db)] == [1]


def test_a_failing_statement_outside_the_rows_fails_the_batch(db: tuple[Any, str], people: str) -> None:
    dest, tgt = destination(db[1]), target(people, PEOPLE)

    async def go() -> None:
        await dest.open(tgt)
        try:
            sql(db, "ALTER TABLE people DROP COLUMN score")  # the prepared column list no longer fits
            with pytest.raises(DestinationError) as caught:
                await dest.write(tgt, Batch(Operation.UPSERT, records({"id": 1, "email": "a@x.io", "score": 1})))
            assert not isinstance(caught.value, RetryableDestinationError)
            assert "score" in str(caught.value)
        finally:
            await dest.close()

    asyncio.run(go())
    assert rows(db) == []


def test_wrong_password_and_unknown_database_are_config_errors(db: tuple[Any, str]) -> None:
    secret = "not-the-password-81f2"
    with pytest.raises(ConfigError) as caught:
        deliver(MySQLDestination("ops_db", {"type": "mysql", "dsn": f"mysql://nobody_here:{secret}@{HOST}:{PORT}/x"}),
                target("people", PEOPLE))
    assert secret not in str(caught.value)
    with pytest.raises(ConfigError, match=r"database .no_such_db_dbt_activate. does not exist"):
        deliver(destination("no_such_db_dbt_activate"), target("people", PEOPLE))


def test_unreachable_server_is_retryable() -> None:
    dest = MySQLDestination("ops_db", {"type": "mysql", "host": "127.0.0.1", "port": 1, "database": "x",
                                       "connect_timeout": 2})
    with pytest.raises(RetryableDestinationError, match="cannot connect"):
        deliver(dest, target("people", PEOPLE))


def test_parse_dsn_and_secrets() -> None:
    assert parse_dsn("mysql://u%40x:p%2Fw@db.example.com:3307/crm?connect_timeout=5") == {
        "host": "db.example.com", "port": 3307, "user": "u@x", "password": "p/w", "database": "crm",
        "connect_timeout": 5}
    dest = MySQLDestination("d", {"type": "mysql", "dsn": "mysql://u:p%2Fsecret@h/crm", "password": "other-pass"})
    assert {"p%2Fsecret", "p/secret", "other-pass"} <= set(dest.secrets())
    with pytest.raises(ConfigError, match=r"ops\.dsn"):
        MySQLDestination("ops", {"type": "mysql", "dsn": "postgres://h/db"})


def test_check_target_needs_a_database_and_identity() -> None:
    bare = MySQLDestination("d", {"type": "mysql", "host": "h"})
    with pytest.raises(ConfigError, match="names no database"):
        bare.check_target(target("people", PEOPLE))
    bare.check_target(target("crm.people", PEOPLE))
    with pytest.raises(ConfigError, match="needs identity fields"):
        bare.check_target(target("crm.people", PEOPLE, identity=()))


def test_describe_request_names_table_and_statement_without_connecting() -> None:
    dest = MySQLDestination("d", {"type": "mysql", "host": "h", "database": "crm"})
    described = dest.describe_request(target("people", PEOPLE), Batch(Operation.UPSERT, records({"id": 1})))
    assert described["table"] == "crm.people" and "ON DUPLICATE KEY UPDATE" in described["statement"]


@pytest.mark.parametrize(("obj", "expected"), [
    ("people", TableRef("crm", "people")),
    ("`a.b`.`c``d`", TableRef("a.b", "c`d")),
    ("x.`y.z`", TableRef("x", "y.z")),
])
def test_parse_table_ref_with_backticks(obj: str, expected: TableRef) -> None:
    assert parse_table_ref(obj, "crm") == expected


@pytest.mark.parametrize(("data_type", "key", "expected"), [
    ("integer", False, "INT"), ("bigint", False, "BIGINT"), ("numeric(10,2)", False, "DECIMAL(10,2)"),
    ("numeric(70,2)", False, "LONGTEXT"), ("numeric", False, "DECIMAL(65,30)"), ("double", False, "DOUBLE"),
    ("boolean", False, "BOOLEAN"), ("timestamp with time zone", False, "DATETIME(6)"), ("date", False, "DATE"),
    ("varchar(20)", False, "LONGTEXT"), ("varchar(20)", True, "VARCHAR(255)"), ("json", False, "JSON"),
    ("integer[]", False, "JSON"), ("blob", True, "VARBINARY(255)"), ("uuid", True, "CHAR(36)"),
])
def test_mysql_type_for_warehouse_types(data_type: str, key: bool, expected: str) -> None:
    assert mysql_type(data_type, key=key) == expected


def test_a_batch_larger_than_the_server_packet_is_split_into_statements(db: tuple[Any, str]) -> None:
    [(packet,)] = sql(db, "SELECT @@max_allowed_packet")
    sql(db, "CREATE TABLE docs (id INT PRIMARY KEY, body LONGTEXT)")
    size = 40_000
    count = packet // size + 50  # together well over the server's limit for one statement
    tgt = target("docs", {"id": "integer", "body": "text"})
    batch = Batch(Operation.UPSERT, [Record(str(i), {"id": i, "body": str(i % 10) * size}) for i in range(count)])
    update = Batch(Operation.UPDATE, [Record(str(i), {"id": i, "body": "u" * size}) for i in range(count + 5)])
    [first, second] = deliver(destination(db[1]), tgt, batch, update)
    assert first == BatchResult()
    assert set(second.skipped) == {str(i) for i in range(count, count + 5)}  # touched rows reported per statement
    assert sql(db, "SELECT COUNT(*), MIN(LEFT(body, 1)), SUM(LENGTH(body)) FROM docs") == [(count, "u", count * size)]


def test_lock_wait_timeout_is_retryable_and_nothing_is_half_written(db: tuple[Any, str], people: str) -> None:
    sql(db, "INSERT INTO people VALUES (2, 'b@x.io', 1, 0)")
    locker = pymysql.connect(host=HOST, port=PORT, user="root", password="", database=db[1], autocommit=False)
    try:
        with locker.cursor() as cur:
            cur.execute("SELECT * FROM people WHERE id = 2 FOR UPDATE")
        # Settings a dsn passes to the driver, here one that makes the lock wait short.
        dest = MySQLDestination("ops_db", {"type": "mysql", "dsn": f"mysql://root@{HOST}:{PORT}/{db[1]}"
                                           "?init_command=SET%20innodb_lock_wait_timeout%3D1"})
        batch = Batch(Operation.UPSERT, records({"id": 1, "email": "a@x.io"}, {"id": 2, "email": "b2@x.io"}))
        with pytest.raises(RetryableDestinationError, match="Lock wait timeout"):
            deliver(dest, target(people, PEOPLE), batch)
    finally:
        locker.rollback()
        locker.close()
    assert rows(db) == [(2, "b@x.io", Decimal("1.00"), 0)]


@contextlib.contextmanager
def missing_database(prefix: str) -> Iterator[str]:
    """A database name that does not exist yet; dropped at the end if something created it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        admin = pymysql.connect(host=HOST, port=PORT, user="root", password="", autocommit=True)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def test_a_dsn_without_a_database_writes_and_deletes_in_a_qualified_table(db: tuple[Any, str]) -> None:
    # No default database on the connection: every statement must name the table's database (issue 18:
    # MariaDB answered `DELETE t FROM db.tbl AS t JOIN …` with "No database selected").
    sql(db, "CREATE TABLE `v` (id INT PRIMARY KEY, email VARCHAR(20))")  # named like a derived-table alias
    sql(db, "INSERT INTO `v` VALUES (1, 'a@x.io'), (2, 'b@x.io'), (3, 'c@x.io')")
    dest = MySQLDestination("ops_db", {"type": "mysql", "dsn": f"mysql://root:@{HOST}:{PORT}"})
    tgt = target(f"{db[1]}.v", {"id": "integer", "email": "text"}, Mode.MIRROR)
    results = deliver(dest, tgt, Batch(Operation.DELETE, [Record("1", {"id": 1}), Record("9", {"id": 9})]),
                      Batch(Operation.UPDATE, records({"id": 2, "email": "b2@x.io"})),
                      Batch(Operation.CLEAR, [Record("3", {"id": 3})]),
                      Batch(Operation.UPSERT, records({"id": 4, "email": "d@x.io"})))
    assert results == [BatchResult()] * 4
    assert rows(db, "v") == [(2, "b2@x.io"), (3, None), (4, "d@x.io")]


def test_create_table_creates_the_database_the_dsn_names(db: tuple[Any, str]) -> None:
    # The README's configuration as written: a dsn naming a database that does not exist yet.
    with missing_database("dbt_activate_new") as name:
        dest = MySQLDestination("ops_db", {"type": "mysql", "dsn": f"mysql://root:@{HOST}:{PORT}/{name}",
                                           "create_table": True})
        tgt = target("people", {"id": "integer", "email": "text"}, Mode.MIRROR)
        deliver(dest, tgt, Batch(Operation.UPSERT, records({"id": 1, "email": "a@x.io"}, {"id": 2, "email": "b@x.io"})),
                Batch(Operation.DELETE, [Record("1", {"id": 1})]))
        assert sql(db, f"SELECT id, email FROM `{name}`.people") == [(2, "b@x.io")]
