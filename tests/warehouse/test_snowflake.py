"""Snowflake's dialect on its own: the quoting and case rule (fakesnow matches quoted names
case-insensitively, so the end-to-end tests cannot catch a wrong case), the text rules, the
fingerprint and the statement timeout handed to the connector."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_activate.errors import ConfigError
from dbt_activate.state.journal import ACK_COLUMNS
from dbt_activate.warehouse.dialect import Column
from dbt_activate.warehouse.registry import dialect_for
from dbt_activate.warehouse.snowflake import SnowflakeDialect

SF = SnowflakeDialect(statement_timeout=30)


@pytest.mark.parametrize(("name", "quoted"), [
    ("sync_locks", '"SYNC_LOCKS"'),  # a name we choose: stored upper-case, as created unquoted
    ("analytics_activate", '"ANALYTICS_ACTIVATE"'),
    ("Mixed Case", '"Mixed Case"'),  # not a plain identifier: it can only ever be reached quoted
])
def test_names_dbt_activate_chooses_fold_to_upper_case_before_quoting(name: str, quoted: str) -> None:
    assert SF.quote_own(name) == quoted


def test_state_tables_and_stage_columns_are_upper_case_so_unquoted_sql_finds_them() -> None:
    assert SF.table("analytics_activate", "sync_locks") == '"ANALYTICS_ACTIVATE"."SYNC_LOCKS"'
    assert SF.create_schema("analytics_activate") == 'create schema if not exists "ANALYTICS_ACTIVATE"'
    stage = SF.stage_ddl("activate_stage_acks", ACK_COLUMNS)
    assert stage.startswith('create temporary table "ACTIVATE_STAGE_ACKS" ("OP" varchar(16), "SYNC_KEY"')
    # apply_stage reads the stage's columns unquoted (op, sync_key): they must be the folded ones.
    assert '"ACTIVATE_STAGE_ACKS"' in SF.apply_stage('"S"."SNAP"', "activate_stage_acks", "2024-01-01 00:00:00")[0].text


def test_model_columns_are_quoted_exactly_as_the_catalog_spells_them() -> None:
    # information_schema reports CUSTOMER_ID for a column dbt created unquoted; "customer_id" would
    # not find it on Snowflake.
    assert SF.quote("CUSTOMER_ID") == '"CUSTOMER_ID"'
    assert SF.quote("lower_quoted") == '"lower_quoted"'
    sql = SF.initial_query("db.analytics.customers", [Column("CUSTOMER_ID", "NUMBER")],
                           [Column("EMAIL", "TEXT")], None).sql
    assert '"CUSTOMER_ID"' in sql and '"EMAIL"' in sql
    assert '"customer_id"' not in sql and '"email"' not in sql


@pytest.mark.parametrize(("column", "field"), [
    ("EMAIL", "email"), ("CUSTOMER_ID", "customer_id"), ("A$B", "a$b"),
    ("Mixed", "Mixed"), ("lower", "lower"), ("WITH SPACE", "WITH SPACE"),
])
def test_upper_case_columns_go_by_their_lower_case_name_outside_the_warehouse(column: str, field: str) -> None:
    assert SF.field_name(column) == field


@pytest.mark.parametrize(("data_type", "text"), [
    ("TIMESTAMP_TZ", "to_char(convert_timezone('UTC', c), 'YYYY-MM-DD\"T\"HH24:MI:SS.FF6')"),
    ("TIMESTAMP_LTZ", "to_char(convert_timezone('UTC', c), 'YYYY-MM-DD\"T\"HH24:MI:SS.FF6')"),
    ("TIMESTAMP_NTZ", "to_char(c, 'YYYY-MM-DD\"T\"HH24:MI:SS.FF6')"),
    ("DATE", "to_char(c, 'YYYY-MM-DD')"),
    ("VARIANT", "to_json(c)"),
    ("BOOLEAN", "case when c then 'true' when not c then 'false' end"),
    ("TEXT", "cast(c as varchar)"),
    ("NUMBER", "cast(c as varchar)"),
])
def test_texts_do_not_depend_on_session_output_formats(data_type: str, text: str) -> None:
    assert SF.normalized("c", data_type) == text


def test_fingerprint_is_one_md5_hex_over_length_prefixed_texts_and_no_legacy_form() -> None:
    fp = SF.fingerprint([Column("A", "TEXT"), Column("B", "NUMBER")])
    assert fp.startswith("md5_hex(") and fp.count("md5") == 1
    assert "coalesce(cast(length(cast(\"A\" as varchar)) as varchar), '-') || ':'" in fp
    assert SF.upgrade_fingerprints("m", "s", [Column("A", "TEXT")], [Column("A", "TEXT")], None) is None
    assert "__activate_saved_fp" not in SF.diff_query("m", "s", [Column("A", "TEXT")], [Column("A", "TEXT")], None).sql


class _Cursor:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def execute(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((*args, kwargs))


def test_every_statement_carries_the_statement_timeout() -> None:
    cur = _Cursor()
    SF.execute(cur, "select 1")
    SF.execute(cur, "select %s", ["a"])
    assert cur.calls == [("select 1", {"timeout": 30}), ("select %s", ("a",), {"timeout": 30})]


def test_statement_timeout_comes_from_the_environment_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS", "12")
    dialect = dialect_for("snowflake")
    assert isinstance(dialect, SnowflakeDialect) and dialect.statement_timeout == 12
    monkeypatch.setenv("DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match="DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS"):
        dialect_for("snowflake")


class _Handle:
    """A connector handle that records every statement its cursors run."""

    def __init__(self) -> None:
        self.cursor_ = _Cursor()
        self.commits = 0

    def cursor(self) -> _Cursor:
        return self.cursor_

    def commit(self) -> None:
        self.commits += 1


def test_ddl_runs_outside_transactions_and_dml_inside_begin_and_commit() -> None:
    from dbt_activate.warehouse.connection import WarehouseConnection

    handle = _Handle()
    conn = WarehouseConnection(handle, SF)
    # Snowflake commits an open transaction at every DDL statement: none is opened around them.
    conn.run_ddl(['create table if not exists "S"."A" (x int)', 'create table if not exists "S"."B" (x int)'])
    assert [c[0] for c in handle.cursor_.calls] == ['create table if not exists "S"."A" (x int)',
                                                   'create table if not exists "S"."B" (x int)']
    with conn.transaction():
        conn.execute('delete from "S"."A"')
    assert [c[0] for c in handle.cursor_.calls[2:]] == ["begin", 'delete from "S"."A"'] and handle.commits == 1
