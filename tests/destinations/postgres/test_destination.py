"""The postgres destination against the real local PostgreSQL (one fresh schema per test)."""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.postgres.destination import PostgresDestination
from dbt_activate.destinations.postgres.table import pg_type
from dbt_activate.destinations.sql import TableRef, parse_table_ref, warehouse_type
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from tests.support.delivery import write_batches

psycopg2 = pytest.importorskip("psycopg2")

PG_DSN = os.environ.get("DBT_ACTIVATE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


@pytest.fixture
def admin() -> Iterator[Any]:
    try:
        conn = psycopg2.connect(PG_DSN, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN!r}: {exc}")
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def schema(admin: Any) -> Iterator[str]:
    name = f"dbt_activate_test_{uuid.uuid4().hex[:12]}"
    sql(admin, f'CREATE SCHEMA "{name}"')
    yield name
    sql(admin, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def sql(conn: Any, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def target(obj: str, fields: Mapping[str, str], mode: Mode = Mode.UPSERT,
           identity: tuple[str, ...] = ("id",), nulls: str = "") -> SyncTarget:
    return SyncTarget("people_sync", obj, mode, tuple(FieldSpec(f, f, t) for f, t in fields.items()), identity,
                      run_id="run1", nulls=nulls)


def records(*rows: dict[str, Any]) -> list[Record]:
    return [Record(str(row["id"]), row) for row in rows]


def destination(schema: str, **config: Any) -> PostgresDestination:
    return PostgresDestination("ops_db", {"type": "postgres", "dsn": PG_DSN, "schema": schema, **config})


def deliver(dest: PostgresDestination, tgt: SyncTarget, *batches: Batch) -> list[BatchResult]:
    return write_batches(dest, tgt, *batches)


PEOPLE = {"id": "integer", "email": "text", "score": "numeric(6,2)", "active": "boolean"}


@pytest.fixture
def people(admin: Any, schema: str) -> str:
    sql(admin, f'CREATE TABLE "{schema}".people (id integer PRIMARY KEY, email varchar(20) NOT NULL, '
               "score numeric(6,2), active boolean, note text DEFAULT 'untouched')")
    sql(admin, f"INSERT INTO \"{schema}\".people (id, email, score, active) VALUES (1, 'a@x.io', 1.5, true), "
               "(2, 'b@x.io', 2.5, false)")
    return f"{schema}.people"


def rows(admin: Any, table: str) -> list[tuple[Any, ...]]:
    return sql(admin, f"SELECT id, email, score, active, note FROM {table} ORDER BY id")


def test_upsert_updates_existing_and_inserts_new(admin: Any, schema: str, people: str) -> None:
    batch = Batch(Operation.UPSERT, records({"id": 2, "email": "b2@x.io", "score": Decimal("9.99"), "active": True},
                                           {"id": 3, "email": "c@x.io", "score": 3, "active": None}))
    [result] = deliver(destination(schema), target(people, PEOPLE), batch)
    assert result == BatchResult()
    assert rows(admin, people) == [(1, "a@x.io", Decimal("1.50"), True, "untouched"),
                                   (2, "b2@x.io", Decimal("9.99"), True, "untouched"),
                                   (3, "c@x.io", Decimal("3.00"), None, "untouched")]


def test_upsert_writes_python_values_into_typed_columns(admin: Any, schema: str) -> None:
    sql(admin, f'CREATE TABLE "{schema}".t (id bigint PRIMARY KEY, doc jsonb, tags text[], empty_tags int[], '
               "ts timestamp, tstz timestamptz, d date, u uuid, label text, ratio double precision)")
    aware = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    value = {"id": 1, "doc": {"a": [1, 2], "when": datetime.date(2024, 1, 2), "amount": Decimal("1.10")},
             "tags": ["x", "y"], "empty_tags": [], "ts": aware, "tstz": datetime.datetime(2024, 5, 1, 12, 0),
             "d": datetime.date(2024, 2, 29), "u": uuid.UUID(int=7), "label": {"nested": True},
             "ratio": float("nan")}
    fields = dict.fromkeys(value, "")
    [result] = deliver(destination(schema), target(f"{schema}.t", fields), Batch(Operation.UPSERT, records(value)))
    assert result == BatchResult()
    [row] = sql(admin, f'SELECT doc, tags, empty_tags, ts, tstz, d, u::text, label, ratio::text FROM "{schema}".t')
    assert row[0] == {"a": [1, 2], "when": "2024-01-02", "amount": "1.10"}
    assert row[1:3] == (["x", "y"], [])
    assert row[3] == datetime.datetime(2024, 5, 1, 10, 0)  # aware -> UTC wall time
    assert row[4] == datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)  # naive read as UTC
    assert row[5:] == (datetime.date(2024, 2, 29), str(uuid.UUID(int=7)), '{"nested": true}', "NaN")


@pytest.mark.parametrize(("nulls", "score"), [("", Decimal("1.50")), ("keep", Decimal("1.50")), ("clear", None)])
def test_update_changes_existing_rows_and_skips_unknown(admin: Any, schema: str, people: str, nulls: str,
                                                        score: Decimal | None) -> None:
    batch = Batch(Operation.UPDATE, records({"id": 1, "email": "new@x.io", "score": None, "active": False},
                                           {"id": 99, "email": "ghost@x.io", "score": 1, "active": True}))
    [result] = deliver(destination(schema), target(people, PEOPLE, Mode.UPDATE, nulls=nulls), batch)
    assert result.skipped == {"99": "no record with this identity"}
    assert result.rejected == {}
    # A NULL keeps the row's value unless the sync says `nulls: clear`.
    assert rows(admin, people)[0] == (1, "new@x.io", score, False, "untouched")
    assert len(rows(admin, people)) == 2


def test_create_inserts_new_rows_and_skips_existing_ones(admin: Any, schema: str, people: str) -> None:
    batch = Batch(Operation.CREATE, [
        Record("k1", {"id": 1, "email": "dup@x.io", "score": 0, "active": True}),
        Record("k5", {"id": 5, "email": "e@x.io", "score": 5, "active": True}),
        Record("k5-again", {"id": 5, "email": "e2@x.io", "score": 6, "active": True}),
    ])
    [result] = deliver(destination(schema), target(people, PEOPLE, Mode.CREATE), batch)
    assert result.skipped == {"k1": "a record with this identity already exists",
                              "k5-again": "a record with this identity already exists"}
    assert [r[:2] for r in rows(admin, people)] == [(1, "a@x.io"), (2, "b@x.io"), (5, "e@x.io")]


def test_append_inserts_every_record_without_a_unique_index(admin: Any, schema: str) -> None:
    sql(admin, f'CREATE TABLE "{schema}".events (id integer, kind text)')
    tgt = target(f"{schema}.events", {"id": "integer", "kind": "text"}, Mode.APPEND)
    batch = Batch(Operation.APPEND, [Record("a", {"id": 1, "kind": "x"}), Record("b", {"id": 1, "kind": "x"})])
    assert deliver(destination(schema), tgt, batch, batch) == [BatchResult(), BatchResult()]
    assert sql(admin, f'SELECT count(*) FROM "{schema}".events') == [(4,)]


def test_delete_removes_by_identity_and_acknowledges_missing_rows(admin: Any, schema: str, people: str) -> None:
    batch = Batch(Operation.DELETE, [Record("1", {"id": 1}), Record("42", {"id": 42})])
    [result] = deliver(destination(schema), target(people, PEOPLE, Mode.MIRROR), batch)
    assert result == BatchResult()
    assert [r[0] for r in rows(admin, people)] == [2]


def test_clear_empties_mapped_fields_and_rejects_not_null_ones(admin: Any, schema: str, people: str) -> None:
    clear = Batch(Operation.CLEAR, [Record("2", {"id": 2})])
    nullable = {"id": "integer", "score": "numeric", "active": "boolean"}
    [result] = deliver(destination(schema), target(people, nullable), clear)
    assert result == BatchResult()
    assert rows(admin, people)[1] == (2, "b@x.io", None, None, "untouched")  # unmapped columns kept
    [result] = deliver(destination(schema), target(people, PEOPLE), clear)
    assert result.rejected == {"2": 'null value in column "email" of relation "people" violates not-null constraint'}


def test_repeated_identity_in_one_upsert_batch_last_one_wins(admin: Any, schema: str, people: str) -> None:
    batch = Batch(Operation.UPSERT, [Record("first", {"id": 7, "email": "first@x.io", "score": 1, "active": True}),
                                     Record("second", {"id": 7, "email": "second@x.io", "score": 2, "active": True})])
    [result] = deliver(destination(schema), target(people, PEOPLE, Mode.MIRROR), batch)
    assert result == BatchResult()
    assert rows(admin, people)[-1][:2] == (7, "second@x.io")


def test_bad_rows_are_rejected_alone_with_postgres_reason(admin: Any, schema: str, people: str) -> None:
    good: list[dict[str, Any]] = [{"id": i, "email": f"{i}@x.io", "score": i, "active": True} for i in range(10, 30)]
    bad: dict[str, dict[str, Any]] = {
        "13": {"id": 13, "email": "far-too-long-address@example.com", "score": 1, "active": True},
        "17": {"id": 17, "email": None, "score": 1, "active": True},
        "21": {"id": 21, "email": "ok@x.io", "score": "abc", "active": True},
        "22": {"id": 22, "email": "ok@x.io", "score": 123456, "active": True},
        "25": {"id": 25, "email": "ok@x.io", "score": float("nan"), "active": True},
        "26": {"id": 26, "email": "ok@x.io", "score": Decimal("-Infinity"), "active": True},
        "27": {"id": 27, "email": "nul\x00byte", "score": 1, "active": True},
        "28": {"id": None, "email": "ok@x.io", "score": 1, "active": True},
    }
    batch = Batch(Operation.UPSERT, [Record(str(r["id"]), bad.get(str(r["id"]), r)) for r in good])
    [result] = deliver(destination(schema), target(people, PEOPLE), batch)
    assert result.rejected == {
        "13": "value too long for type character varying(20)",
        "17": 'null value in column "email" of relation "people" violates not-null constraint',
        "21": 'invalid input syntax for type numeric: "abc"',
        "22": "numeric field overflow",
        "25": "score: nan cannot be stored in a numeric column",
        "26": "score: -Infinity cannot be stored in a numeric column",
        "27": "email: text with a NUL (0x00) character cannot be stored in PostgreSQL",
        "28": "identity field 'id' is null",
    }
    assert [r[0] for r in rows(admin, people)] == [1, 2, *(i for i in range(10, 30) if str(i) not in bad)]


def test_create_table_maps_warehouse_types_and_keys_the_identity(admin: Any, schema: str) -> None:
    fields = {"id": "BIGINT", "name": "character varying(256)", "amount": "DECIMAL(18,3)", "big": "HUGEINT",
              "ratio": "DOUBLE", "flag": "BOOLEAN", "day": "DATE", "at": "TIMESTAMP",
              "at_tz": "timestamp with time zone", "tags": "VARCHAR[]", "props": "STRUCT(a INTEGER)",
              "n": "integer", "misc": ""}
    tgt = target(f"{schema}_new.people", fields)
    value = {"id": 1, "name": "x" * 300, "amount": Decimal("12.345"), "big": 10**30, "ratio": 0.5, "flag": True,
             "day": datetime.date(2024, 1, 1), "at": datetime.datetime(2024, 1, 1, 8), "at_tz": None,
             "tags": ["a"], "props": {"a": 1}, "n": 3, "misc": 4}
    try:
        [result] = deliver(destination(schema, create_table=True), tgt, Batch(Operation.UPSERT, records(value)))
        columns = dict(sql(admin, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                  "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                           (f'"{schema}_new".people',)))
        key = sql(admin, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                         "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                  (f'"{schema}_new".people',))
        stored = sql(admin, f'SELECT name, big, misc FROM "{schema}_new".people')
    finally:
        sql(admin, f'DROP SCHEMA IF EXISTS "{schema}_new" CASCADE')
    assert result == BatchResult()
    assert columns == {"id": "bigint", "name": "text", "amount": "numeric(18,3)", "big": "numeric",
                       "ratio": "double precision", "flag": "boolean", "day": "date",
                       "at": "timestamp without time zone", "at_tz": "timestamp with time zone", "tags": "text[]",
                       "props": "jsonb", "n": "integer", "misc": "text"}
    assert key == [("id",)]
    assert stored == [("x" * 300, Decimal(10**30), "4")]


def test_create_table_adds_missing_columns_to_an_existing_table(admin: Any, schema: str, people: str) -> None:
    fields = {**PEOPLE, "signup": "date"}
    value = {"id": 1, "email": "a@x.io", "score": 1, "active": True, "signup": datetime.date(2020, 1, 1)}
    deliver(destination(schema, create_table=True), target(people, fields), Batch(Operation.UPSERT, records(value)))
    assert sql(admin, f"SELECT signup FROM {people} WHERE id = 1") == [(datetime.date(2020, 1, 1),)]


def test_missing_table_is_a_config_error_naming_destination_and_object(schema: str) -> None:
    with pytest.raises(ConfigError) as info:
        deliver(destination(schema), target("nowhere", PEOPLE))
    message = str(info.value)
    assert "'ops_db'" in message and f"{schema}.nowhere does not exist" in message
    assert "create_table: true" in message


def test_missing_table_hints_at_a_differently_cased_one(admin: Any, schema: str, people: str) -> None:
    with pytest.raises(ConfigError, match=r"there is .*\.people: names are case-sensitive"):
        deliver(destination(schema), target(f"{schema}.People", PEOPLE))


def test_missing_columns_are_a_config_error_naming_them(schema: str, people: str) -> None:
    fields = {**PEOPLE, "phone": "text", "city": "text"}
    with pytest.raises(ConfigError, match=r"has no column 'phone', 'city'"):
        deliver(destination(schema), target(people, fields))


def test_conflict_modes_need_a_unique_index_on_the_identity(admin: Any, schema: str, people: str) -> None:
    sql(admin, f'CREATE UNIQUE INDEX ON "{schema}".people (lower(email))')  # expression: not an arbiter
    sql(admin, f'CREATE UNIQUE INDEX ON "{schema}".people (email) WHERE active')  # partial: not one either
    by_email = {"email": "text", "score": "numeric"}
    for mode in (Mode.UPSERT, Mode.MIRROR, Mode.CREATE):
        with pytest.raises(ConfigError) as info:
            deliver(destination(schema), target(people, by_email, mode, identity=("email",)))
        assert f'CREATE UNIQUE INDEX ON "{schema}"."people" ("email")' in str(info.value)
    update = Batch(Operation.UPDATE, [Record("a", {"email": "a@x.io", "score": 8})])
    [result] = deliver(destination(schema), target(people, by_email, Mode.UPDATE, ("email",)), update)
    assert result == BatchResult() and rows(admin, people)[0][2] == Decimal("8.00")
    sql(admin, f'CREATE UNIQUE INDEX ON "{schema}".people (email)')
    deliver(destination(schema), target(people, by_email, Mode.UPSERT, identity=("email",)))


def test_killed_connection_is_retryable_and_the_next_write_reconnects(admin: Any, schema: str, people: str) -> None:
    app = f"dbt_activate_test_{uuid.uuid4().hex[:8]}"
    dest = PostgresDestination("ops_db", {"dsn": f"{PG_DSN} application_name={app}", "schema": schema})
    tgt = target(people, PEOPLE)
    batch = Batch(Operation.UPSERT, records({"id": 8, "email": "h@x.io", "score": 1, "active": True}))

    async def go() -> BatchResult:
        await dest.open(tgt)
        try:
            killed = sql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                         (app,))
            assert killed == [(True,)]
            with pytest.raises(RetryableDestinationError, match="ops_db"):
                await dest.write(tgt, batch)
            return await dest.write(tgt, batch)
        finally:
            await dest.close()

    assert asyncio.run(go()) == BatchResult()
    assert rows(admin, people)[-1][:2] == (8, "h@x.io")


def test_lock_timeout_is_retryable_and_nothing_is_half_written(admin: Any, schema: str, people: str) -> None:
    dest = PostgresDestination("ops_db", {"dsn": f"{PG_DSN} options='-c lock_timeout=200'", "schema": schema})
    tgt = target(people, PEOPLE)
    batch = Batch(Operation.UPSERT, records({"id": 3, "email": "new@x.io", "score": 1, "active": True},
                                           {"id": 1, "email": "locked@x.io", "score": 1, "active": True}))
    blocker = psycopg2.connect(PG_DSN)
    try:
        sql(blocker, f"SELECT * FROM {people} WHERE id = 1 FOR UPDATE")  # holds the row lock (open transaction)
        with pytest.raises(RetryableDestinationError, match="lock timeout"):
            deliver(dest, tgt, batch)
        assert [r[0] for r in rows(admin, people)] == [1, 2]  # the batch's transaction was rolled back
    finally:
        blocker.close()
    assert deliver(dest, tgt, batch) == [BatchResult()]


def test_quoted_names_with_dots_quotes_and_percent_signs(admin: Any, schema: str) -> None:
    sql(admin, f'CREATE TABLE "{schema}"."odd.""name" ("the id" int PRIMARY KEY, "pct%" float8)')
    tgt = target(f'"{schema}"."odd.""name"', {"the id": "integer", "pct%": "double"}, identity=("the id",))
    batch = Batch(Operation.UPSERT, [Record("1", {"the id": 1, "pct%": 0.25})])
    assert deliver(destination(schema), tgt, batch) == [BatchResult()]
    assert sql(admin, f'SELECT * FROM "{schema}"."odd.""name"') == [(1, 0.25)]


def test_unknown_role_is_a_config_error(schema: str) -> None:
    dest = PostgresDestination("ops_db", {"dsn": PG_DSN, "user": "no_such_role_dbt_activate", "schema": schema})
    with pytest.raises(ConfigError, match="cannot connect"):
        deliver(dest, target("people", PEOPLE))


def test_unreachable_server_is_retryable() -> None:
    dest = PostgresDestination("ops_db", {"host": "127.0.0.1", "port": 1, "user": "postgres", "connect_timeout": 2})
    with pytest.raises(RetryableDestinationError, match="cannot connect"):
        deliver(dest, target("people", PEOPLE))


def test_secrets_include_the_password_inside_a_dsn() -> None:
    assert "s3cr3t-pw" in PostgresDestination("d", {"dsn": "host=h password=s3cr3t-pw user=u"}).secrets()
    url_secrets = PostgresDestination("d", {"dsn": "postgresql://u:p%40ss%3Aword@h:5432/db"}).secrets()
    assert {"p%40ss%3Aword", "p@ss:word"} <= set(url_secrets)
    assert "pw1234" in PostgresDestination("d", {"password": "pw1234"}).secrets()


def test_missing_driver_is_a_config_error_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ConfigError, match=r"pip install 'dbt-activate\[postgres\]'"):
        deliver(PostgresDestination("d", {"dsn": PG_DSN}), target("people", PEOPLE))


def test_check_target_needs_a_table_name_and_identity() -> None:
    dest = PostgresDestination("ops_db", {"dsn": PG_DSN})
    with pytest.raises(ConfigError, match="is not a table name"):
        dest.check_target(target("a.b.c", PEOPLE))
    with pytest.raises(ConfigError, match="needs identity fields"):
        dest.check_target(target("people", PEOPLE, Mode.UPSERT, identity=()))
    dest.check_target(target("people", PEOPLE, Mode.APPEND, identity=()))


def test_describe_request_names_table_and_statement_without_connecting() -> None:
    dest = PostgresDestination("ops_db", {"dsn": "host=unreachable.invalid", "schema": "crm"})
    described = dest.describe_request(target("people", PEOPLE), Batch(Operation.UPSERT, records({"id": 1})))
    assert described == {"table": "crm.people", "operation": "upsert",
                         "statement": "INSERT … ON CONFLICT (id) DO UPDATE", "rows": [{"id": 1}]}


def test_a_failing_statement_outside_the_rows_fails_the_batch(admin: Any, schema: str, people: str) -> None:
    dest = destination(schema)
    tgt = target(people, PEOPLE)

    async def go() -> None:
        await dest.open(tgt)
        try:
            sql(admin, f"DROP TABLE {people}")
            with pytest.raises(DestinationError, match="does not exist") as info:
                await dest.write(tgt, Batch(Operation.UPSERT, records({"id": 1, "email": "a", "score": 1})))
            assert not info.value.retryable
        finally:
            await dest.close()

    asyncio.run(go())


@pytest.mark.parametrize(("obj", "expected"), [
    ("people", TableRef("public", "people")),
    ("crm.people", TableRef("crm", "people")),
    ('"My Schema"."a.b"', TableRef("My Schema", "a.b")),
    ('crm."say ""hi"""', TableRef("crm", 'say "hi"')),
])
def test_parse_table_ref(obj: str, expected: TableRef) -> None:
    assert parse_table_ref(obj, "public") == expected


@pytest.mark.parametrize(("data_type", "expected"), [
    ("integer", "integer"), ("INTEGER", "integer"), ("bigint", "bigint"), ("smallint", "smallint"),
    ("HUGEINT", "numeric"), ("UBIGINT", "numeric"), ("character varying(255)", "text"), ("VARCHAR", "text"),
    ("text", "text"), ("double precision", "double precision"), ("DOUBLE", "double precision"),
    ("FLOAT", "double precision"), ("real", "real"), ("numeric(10,2)", "numeric(10,2)"),
    ("DECIMAL(18,3)", "numeric(18,3)"), ("numeric", "numeric"), ("NUMBER(38,0)", "numeric(38,0)"),
    ("boolean", "boolean"), ("BOOLEAN", "boolean"), ("date", "date"), ("DATE", "date"),
    ("timestamp without time zone", "timestamp"), ("TIMESTAMP", "timestamp"), ("timestamp(6)", "timestamp"),
    ("timestamp with time zone", "timestamptz"), ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
    ("UUID", "uuid"), ("JSON", "jsonb"), ("super", "jsonb"), ("STRUCT(a INTEGER, b VARCHAR)", "jsonb"),
    ("MAP(VARCHAR, INTEGER)", "jsonb"), ("INTEGER[]", "integer[]"), ("VARCHAR[3]", "text[]"),
    ("STRUCT(a INTEGER)[]", "jsonb"), ("INTEGER[][]", "jsonb"), ("BLOB", "bytea"), ("INTERVAL", "interval"),
    ("", "text"), ("GEOMETRY", "text"),
])
def test_pg_type_for_warehouse_types(data_type: str, expected: str) -> None:
    assert pg_type(data_type) == expected


def test_warehouse_type_keeps_decimal_precision() -> None:
    wt = warehouse_type("DECIMAL(18, 3)")
    assert (wt.family, wt.precision, wt.scale) == ("decimal", 18, 3)
