"""BigQuery's dialect on its own: quoting, literals, the text rules and fingerprint, the statement
forms every state write takes, and the Client behind the cursor (labels, paging, retries).

The emulator (crucible) accepts some SQL BigQuery refuses (``VARCHAR(n)``) and refuses some BigQuery
accepts (``DELETE``, ``UPDATE``, query parameters). So every statement dbt-activate's state code sends
is recorded here from a fake Client (the seam below the cursor) and checked twice: it contains none of
the forms either side refuses, and it parses as one statement with sqlglot's BigQuery dialect (an
independent reading of GoogleSQL: the emulator cannot judge what it refuses). The statements then run
for real on the emulator in the end-to-end tests (tests/e2e/test_modes.py, bigquery variants).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from dbt_activate.errors import IdentifierError
from dbt_activate.state.locks import LOCK_COLUMNS, LOCK_TABLE, SyncLock
from dbt_activate.state.record_ids import WarehouseIdStore
from dbt_activate.state.store import RunRow, WarehouseStateStore
from dbt_activate.warehouse.bigquery import BigQueryDialect
from dbt_activate.warehouse.bigquery_client import LABELS, BigQueryConnection, inline_parameters, literal
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Column, Sql
from dbt_activate.warehouse.registry import dialect_for
from tests.support import bigquery

BQ = BigQueryDialect()


def test_registered_for_dbt_bigquery() -> None:
    assert isinstance(dialect_for("bigquery"), BigQueryDialect)


# --- identifiers and literals ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "quoted"), [
    ("customers", "`customers`"),
    ("Mixed Case", "`Mixed Case`"),  # case-sensitive: never folded
    ("a`b", "`a\\`b`"),
    ("back\\slash", "`back\\\\slash`"),
])
def test_names_are_backtick_quoted_with_backslash_escapes(name: str, quoted: str) -> None:
    assert BQ.quote(name) == quoted
    assert BQ.quote_own(name) == quoted


def test_state_tables_are_dataset_dot_table_each_part_quoted() -> None:
    assert BQ.table("analytics_activate", "sync_locks") == "`analytics_activate`.`sync_locks`"
    assert BQ.table("ds", "t", "my-project") == "`my-project`.`ds`.`t`"
    assert BQ.create_schema("analytics_activate") == "create schema if not exists `analytics_activate`"


@pytest.mark.parametrize("name", ["", "a\x00b", "line\nbreak", "x" * 1025])
def test_unquotable_names_are_refused(name: str) -> None:
    with pytest.raises(IdentifierError):
        BQ.quote(name)


@pytest.mark.parametrize(("value", "sql"), [
    (None, "NULL"), (True, "TRUE"), (7, "7"), (1.5, "1.5"), (float("nan"), "cast('nan' as float64)"),
    ("it's", "'it\\'s'"), ("a\\b", "'a\\\\b'"), ('say "x"', "'say \\\"x\\\"'"),
    ("tab\tnew\nline", "'tab\\u0009new\\u000aline'"),
    (dt.datetime(2024, 5, 1, 12, 30, 45, 123456), "'2024-05-01 12:30:45.123456'"),
])
def test_parameters_become_escaped_literals(value: Any, sql: str) -> None:
    assert literal(value) == sql


TRICKY = ["it's", "a\\'b", "\\", "'; drop table x; --", "é\u2028\x01\x7f", '"`', "tab\tnew\nline"]


@pytest.mark.bigquery
@pytest.mark.bigquery_in_default_run
def test_a_literal_reads_back_as_the_same_string_on_the_emulator(crucible_port: int) -> None:
    conn = WarehouseConnection(bigquery.client(crucible_port), BQ)
    try:
        rows = conn.query("select " + ", ".join(["?"] * len(TRICKY)), TRICKY)
        assert rows == [tuple(TRICKY)]
        assert conn.query("select ?", [BQ.literal("x'y")]) == [("'x\\'y'",)]
    finally:
        conn.close()


# --- text rules and fingerprint (the macros' bigquery__ implementations: tests/e2e/test_dbt_package.py) ---

@pytest.mark.parametrize(("data_type", "text"), [
    ("TIMESTAMP", "format_timestamp('%Y-%m-%dT%H:%M:%E6S', cast(c as timestamp), 'UTC')"),
    ("DATETIME", "format_timestamp('%Y-%m-%dT%H:%M:%E6S', cast(c as timestamp), 'UTC')"),
    ("BOOL", "case when c then 'true' when not c then 'false' end"),
    ("BOOLEAN", "case when c then 'true' when not c then 'false' end"),
    ("JSON", "to_json_string(c)"),
    ("STRUCT", "to_json_string(c)"),
    ("ARRAY<INT64>", "to_json_string(c)"),
    ("INT64", "cast(c as string)"),
    ("DATE", "cast(c as string)"),
    ("NUMERIC", "cast(c as string)"),
])
def test_texts_are_utc_and_never_depend_on_session_settings(data_type: str, text: str) -> None:
    assert BQ.normalized("c", data_type) == text


def test_fingerprint_is_one_to_hex_md5_over_length_prefixed_texts_and_no_legacy_form() -> None:
    fp = BQ.fingerprint([Column("a", "STRING"), Column("b", "INT64")])
    assert fp == ("to_hex(md5(coalesce(cast(byte_length(cast(`a` as string)) as string), '-') || ':' || "
                  "coalesce(cast(`a` as string), '') || coalesce(cast(byte_length(cast(`b` as string)) as string), "
                  "'-') || ':' || coalesce(cast(`b` as string), '')))")
    assert BQ.upgrade_fingerprints("m", "s", [Column("a", "STRING")], [Column("a", "STRING")], None) is None
    key = BQ.key_expression([Column("a", "INT64"), Column("b", "STRING")])
    assert key == "cast(`a` as string) || chr(31) || cast(`b` as string)"


def test_diff_statements_have_no_double_quoted_names() -> None:
    """A double-quoted name is a string literal in GoogleSQL: every row would get the same key."""
    statements = [
        BQ.diff_query("`p`.`d`.`m`", "`d_activate`.`s`", [Column("id", "INT64")], [Column("e", "STRING")],
                      "country = 'FR'").sql,
        BQ.initial_query("`p`.`d`.`m`", [Column("id", "INT64")], [Column("e", "STRING")], None).sql,
        BQ.duplicate_keys_query("`p`.`d`.`m`", [Column("id", "INT64")], None),
    ]
    for sql in statements:
        assert '"' not in sql
        assert len(sqlglot.parse(sql, read="bigquery")) == 1


# --- statement forms ---------------------------------------------------------------------------

_MERGE_NONE = "merge `d`.`t` using (select 1 as __activate_one) __activate_none on false when not matched by source"


@pytest.mark.parametrize(("statements", "bigquery"), [
    (BQ.delete_rows("`d`.`t`", Sql("sync_name = ?", ("a'b",))),
     f"{_MERGE_NONE} and (sync_name = 'a\\'b') then delete"),
    (BQ.delete_rows("`d`.`t`"), f"{_MERGE_NONE} then delete"),
    (BQ.superseded_rows("`d`.`t`", Sql("sync_name = ?", ("s",))), f"{_MERGE_NONE} and (sync_name = 's') then delete"),
    (BQ.clear_stage("d.t", ["op"]), f"{_MERGE_NONE} then delete"),
    (BQ.update_rows("`d`.`t`", LOCK_COLUMNS, {"expires_at": Sql("cast(? as timestamp)", ("2024-01-01 00:00:00",))},
                    Sql("sync_name = ? and run_id = ?", ("s", "r"))),
     f"{_MERGE_NONE} and (sync_name = 's' and run_id = 'r') then update set "
     "expires_at = cast('2024-01-01 00:00:00' as timestamp)"),
])
def test_deletes_and_updates_of_state_rows_are_merges(statements: list[Sql], bigquery: str) -> None:
    """Every target row is unmatched (ON FALSE): exactly the rows where the condition holds go or change."""
    (statement,) = statements
    sql = inline_parameters(statement.text, statement.params)
    assert sql == bigquery
    assert isinstance(sqlglot.parse_one(sql, read="bigquery"), sqlglot.exp.Merge)


def test_rejections_of_acknowledged_keys_leave_by_a_join_on_the_key() -> None:
    """Not ``sync_key IN (SELECT …)`` in a NOT MATCHED BY SOURCE condition: crucible deletes every row
    the rest of that condition matches (tests/state/test_store_spark.py runs it)."""
    (statement,) = BQ.delete_staged_keys("`d`.`r`", "d.acks", Sql("sync_name = ?", ("s",)))
    sql = inline_parameters(statement.text, statement.params)
    assert sql == ("merge `d`.`r` t using (select distinct sync_key from `d`.`acks`) s on t.sync_key = s.sync_key "
                   "when matched and (sync_name = 's') then delete")
    assert isinstance(sqlglot.parse_one(sql, read="bigquery"), sqlglot.exp.Merge)


def test_acknowledged_rows_and_rejections_each_take_one_merge_from_their_stage() -> None:
    (apply,) = BQ.apply_stage("`d`.`snap`", "d.acks", "2024-01-01 00:00:00")
    (record,) = BQ.record_rejections("`d`.`r`", "d.rejects", "it's", "run-1", "2024-01-01 00:00:00")
    for statement in (apply, record):
        sql = inline_parameters(statement.text, statement.params)
        assert isinstance(sqlglot.parse_one(sql, read="bigquery"), sqlglot.exp.Merge), sql
        # BigQuery refuses a MERGE where two source rows match one target row.
        assert "qualify row_number() over (partition by sync_key) = 1" in sql
    sql = inline_parameters(record.text, record.params)
    assert "t.sync_name = 'it\\'s'" in sql and "attempts = t.attempts + 1" in sql
    assert "t.last_run_id <> 'run-1'" in sql and "values ('it\\'s', s.sync_key, s.reason, 1" in sql


@pytest.mark.parametrize(("sql", "params", "inlined"), [
    ("select '?', `odd?name` from `d`.`t` where a = ?", [None], "select '?', `odd?name` from `d`.`t` where a = NULL"),
    ("insert into `d`.`t` values (?, cast(? as timestamp), ?)", ["it's", "2024-01-01 00:00:00", 3],
     "insert into `d`.`t` values ('it\\'s', cast('2024-01-01 00:00:00' as timestamp), 3)"),
    ("select 'a?' from t", [], "select 'a?' from t"),
])
def test_parameters_are_inlined_outside_names_and_literals(sql: str, params: list[Any], inlined: str) -> None:
    assert inline_parameters(sql, params) == inlined


def test_parameters_must_match_the_placeholders() -> None:
    with pytest.raises(ValueError, match="fewer parameters"):
        inline_parameters("select ? , ?", [1])
    with pytest.raises(ValueError, match="more parameters"):
        inline_parameters("select ?", [1, 2])


class _Job:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.page_size: int | None = None

    def result(self, page_size: int | None = None) -> list[tuple[Any, ...]]:
        self.page_size = page_size
        return self.rows


class FakeClient:
    """google.cloud.bigquery.Client's surface the cursor uses, recording every query job."""

    project = "local-project"

    def __init__(self, answers: dict[str, list[tuple[Any, ...]]] | None = None,
                 fail_first: Exception | None = None) -> None:
        self.sql: list[str] = []
        self.labels: list[dict[str, str]] = []
        self.jobs: list[_Job] = []
        self.answers = answers or {}
        self.fail_first = fail_first

    def query(self, sql: str, job_config: Any = None) -> _Job:
        if self.fail_first is not None:
            exc, self.fail_first = self.fail_first, None
            raise exc
        self.sql.append(sql)
        self.labels.append(dict(job_config.labels))
        rows = next((rows for prefix, rows in self.answers.items() if sql.startswith(prefix)), [])
        self.jobs.append(_Job(rows))
        return self.jobs[-1]

    def load_table_from_file(self, *args: Any, **kwargs: Any) -> Any:
        self.sql.append(f"-- load {args[1]}")
        return _Job([])

    def close(self) -> None:
        pass


_REFUSED = [
    (r"^\s*(delete|update|truncate)\b", "the emulator refuses DELETE, UPDATE and TRUNCATE"),
    (r"\bvarchar\b|\bdouble\s+precision\b|\btext\b", "BigQuery has no VARCHAR, DOUBLE PRECISION or TEXT"),
    (r"information_schema", "the emulator refuses INFORMATION_SCHEMA"),
    (r"\?|%s", "the emulator refuses query parameters"),
    (r"\btemporary\b|\btemp\s+table\b|\bbegin\b|\bcommit\b|\block\s+table\b",
     "no temporary tables, transactions or LOCK TABLE outside scripts"),
]


def _state_statements(tmp_path: Path) -> tuple[FakeClient, list[str]]:
    client = FakeClient()
    conn = WarehouseConnection(client, BQ)
    store = WarehouseStateStore(conn, "analytics_activate")
    store.ensure()
    store.reset_snapshot("people__hubspot__contacts")
    store.resend("people__hubspot__contacts", ["k1", "k2"])
    acks, rejects = tmp_path / "acks.csv", tmp_path / "rejects.csv"
    acks.write_text("add,k1,FP,\nremove,k2,,\n")
    rejects.write_text("k3,bad email\n")
    store.apply_segment("people__hubspot__contacts", "run-1", acks, rejects)
    run = RunRow("run-1", "inv", "people__hubspot__contacts", "people", "hubspot", "contacts", "upsert", "success",
                 "2024-01-01 00:00:00", "2024-01-01 00:00:01", 1.0, {"rows_added": 1}, None)
    client.answers = {"select count(*)": [(0,)]}
    store.finish(run, config_hash="h", fields_signature="f", complete=True)
    lock = SyncLock(conn, store.table(LOCK_TABLE), "people__hubspot__contacts", "run-1", ttl=60)
    assert lock.try_acquire() is not None or True  # the fake returns no rows: the outcome is not the point
    lock.renew()
    lock._delete_own_row()
    ids = WarehouseIdStore(conn, "analytics_activate", "hubspot")
    ids.ensure()
    ids.get_many(["a", "b"])
    ids.put_many({"a": "1"})
    ids.delete_many(["a"])
    return client, [s for s in client.sql if not s.startswith("-- load")]


def test_every_state_statement_is_a_form_bigquery_and_the_emulator_both_accept(tmp_path: Path) -> None:
    client, statements = _state_statements(tmp_path)
    assert len(statements) > 20
    for sql in statements:
        for pattern, why in _REFUSED:
            assert not re.search(pattern, sql, re.IGNORECASE), f"{why}: {sql}"
        parsed = sqlglot.parse(sql, read="bigquery")
        assert len(parsed) == 1 and parsed[0] is not None, sql
    kinds = {type(sqlglot.parse_one(s, read="bigquery")).__name__ for s in statements}
    assert {"Merge", "Insert", "Create", "Select"} <= kinds, kinds
    # Journal files go in with load jobs, into stage tables of the state dataset (one pair per run).
    loads = [s for s in client.sql if s.startswith("-- load")]
    assert len(loads) == 2 and all(s.startswith("-- load local-project.analytics_activate.activate_stage_")
                                   for s in loads)


def test_every_job_is_labelled_as_dbt_activate(tmp_path: Path) -> None:
    client, _ = _state_statements(tmp_path)
    assert client.labels and all(labels == LABELS for labels in client.labels)
    assert LABELS["tool"] == "dbt-activate"
    for key, value in LABELS.items():  # https://cloud.google.com/bigquery/docs/labels-intro#requirements
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) and re.fullmatch(r"[a-z0-9_-]{0,63}", value)


def test_stage_tables_are_one_pair_per_run_in_the_state_dataset() -> None:
    first, second = WarehouseStateStore(WarehouseConnection(FakeClient(), BQ), "s"), WarehouseStateStore(
        WarehouseConnection(FakeClient(), BQ), "s")
    assert first._ack_stage != second._ack_stage
    assert first._ack_stage.startswith("s.activate_stage_acks_")
    ddl = BQ.stage_ddl(first._ack_stage, ["op", "sync_key"])
    assert ddl.startswith(f"create or replace table `s`.`{first._ack_stage[2:]}` (`op` string, `sync_key` string)")
    assert "expiration_timestamp" in ddl  # a crashed run's stages do not stay forever


def test_reads_page_through_the_result_with_the_batch_size() -> None:
    client = FakeClient({"select": [(i,) for i in range(5)]})
    conn = WarehouseConnection(client, BQ)
    batches = list(conn.stream("select x from t", 2))
    assert batches == [[(0,), (1,)], [(2,), (3,)], [(4,)]]
    assert client.jobs[-1].page_size == 2


def test_a_concurrent_update_abort_is_run_again() -> None:
    """https://cloud.google.com/bigquery/docs/data-manipulation-language#concurrent_jobs: retry."""
    from google.api_core.exceptions import BadRequest

    slept: list[float] = []
    client = FakeClient(fail_first=BadRequest("Could not serialize access to table t due to concurrent update"))
    BigQueryConnection(client, "?", sleep=slept.append).cursor().execute("merge t using s on false when "
                                                                         "not matched by source then delete")
    assert slept == [1.0] and len(client.sql) == 1
    other = FakeClient(fail_first=BadRequest("Syntax error"))
    with pytest.raises(BadRequest):
        BigQueryConnection(other, "?", sleep=slept.append).cursor().execute("select")


def test_journal_files_load_with_quoted_line_breaks_allowed_only_when_they_hold_one(tmp_path: Path) -> None:
    from dbt_activate.warehouse.bigquery_client import _has_quoted_line_breaks

    assert not _has_quoted_line_breaks(b'k1,"a, b"\nk2,\n')
    assert _has_quoted_line_breaks(b'k1,"line one\nline two"\nk2,x\n')
