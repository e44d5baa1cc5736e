"""Spark's and Databricks' dialects on their own: quoting and literals (Spark reads backslash escapes
and joins adjacent literals), the text rules and the fingerprint, and the state writes of both paths.

The Delta path (Databricks: MERGE, DELETE) cannot run here: dbt-databricks refuses a server that is
not Databricks, and Delta's jars come from Maven, out of reach offline. Its statements are parsed with
sqlglot's Databricks dialect instead, which proves their syntax and shape, not their behaviour on
Databricks. The path without Delta runs end to end on Spark's Thrift server (tests/e2e/test_spark.py).
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from dbt_activate.state.journal import ACK_COLUMNS
from dbt_activate.state.locks import lock_table_ddl
from dbt_activate.warehouse.dialect import SNAPSHOT_COLUMNS, Column, Sql
from dbt_activate.warehouse.registry import dialect_for
from dbt_activate.warehouse.spark import DatabricksDialect, SparkDialect

SP = SparkDialect()
DB = DatabricksDialect()
SNAP = SP.table("analytics_activate", "snapshot_people_1a2b3c4d")
NOW = "2026-01-01 00:00:00.000000"


def _parse(sql: str, dialect: str = "spark") -> exp.Expression:
    parsed = sqlglot.parse_one(sql, read=dialect)
    assert parsed is not None
    return parsed


def test_spark_and_databricks_are_registered_with_their_own_dialects() -> None:
    assert isinstance(dialect_for("spark"), SparkDialect) and not dialect_for("spark").delta
    assert isinstance(dialect_for("databricks"), DatabricksDialect) and dialect_for("databricks").delta


@pytest.mark.parametrize(("name", "quoted"), [
    ("customer_id", "`customer_id`"),
    ("weird`name", "`weird``name`"),  # a backtick is doubled inside backticks
    ("Mixed Case", "`Mixed Case`"),
])
def test_identifiers_are_backtick_quoted(name: str, quoted: str) -> None:
    assert SP.quote(name) == quoted
    # Never a double-quoted identifier: Spark reads it as a string (or refuses it).
    assert '"' not in SP.quote(name)


def test_names_dbt_activate_chooses_fold_to_lower_case_as_the_metastore_stores_them() -> None:
    assert SP.table("Analytics_Activate", "SYNC_LOCKS") == "`analytics_activate`.`sync_locks`"
    # dbt-spark reports the schema as the database too: one level only; a Unity catalog is kept.
    assert SP.table("s", "t", "s") == "`s`.`t`"
    assert DB.table("s", "t", "main") == "`main`.`s`.`t`"


@pytest.mark.parametrize("text", ["it's", "back\\slash", "both \\' here", "", "Zoé"])
def test_literals_escape_with_backslashes_and_read_back_as_the_text(text: str) -> None:
    literal = SP.literal(text)
    assert "''" not in literal[1:-1]  # Spark would read 'a''b' as 'a' 'b', concatenated: "ab"
    parsed = _parse(f"select {literal}").expressions[0]
    assert isinstance(parsed, exp.Literal) and parsed.this == text


@pytest.mark.spark
def test_literals_and_parameters_read_back_as_the_text_on_spark(spark_port: int) -> None:
    from dbt_activate.warehouse.connection import WarehouseConnection
    from tests.support import spark

    texts = ["it's", "back\\slash", "both \\' here", "", "Zoé", "100%"]
    conn = WarehouseConnection(spark.connect(spark_port), SP)
    try:
        literals = conn.query("select " + ", ".join(SP.literal(t) for t in texts))
        params = conn.query("select " + ", ".join(["%s"] * len(texts)), texts)
    finally:
        conn.close()
    assert list(literals[0]) == list(params[0]) == texts


def test_parameters_are_rendered_as_literals() -> None:
    sql = SP.render("insert into t values (%s, %s, %s, %s, %s)", ["it's", None, 3, 1.5, True])
    assert sql == "insert into t values ('it\\'s', null, 3, 1.5, true)"
    assert SP.render("select '100%' from t") == "select '100%' from t"  # no parameters: no formatting


def test_timestamps_are_formatted_in_utc_and_wall_clock_ones_as_they_are() -> None:
    ltz = SP.normalized("`t`", "timestamp")
    assert "to_utc_timestamp(`t`, current_timezone())" in ltz
    ntz = SP.normalized("`t`", "timestamp_ntz")
    assert "to_utc_timestamp" not in ntz and "date_format(`t`, 'HH:mm:ss.SSSSSS')" in ntz
    assert SP.normalized("`a`", "array<int>") == "to_json(`a`)"
    assert SP.normalized("`s`", "struct<x:int>") == "to_json(`s`)"
    assert SP.normalized("`b`", "boolean") == "case when `b` then 'true' when not `b` then 'false' end"
    assert SP.normalized("`d`", "decimal(10,2)") == "cast(`d` as string)"


def test_fingerprint_is_one_md5_of_length_prefixed_texts() -> None:
    fp = SP.fingerprint([Column("a", "string"), Column("b", "int")])
    assert fp == ("md5(concat_ws('', coalesce(cast(length(cast(`a` as string)) as string), '-'), ':', "
                  "coalesce(cast(`a` as string), ''), coalesce(cast(length(cast(`b` as string)) as string), '-'), "
                  "':', coalesce(cast(`b` as string), '')))")
    _parse(f"select {fp} from t")


def test_every_statement_of_the_path_without_delta_is_insert_only_spark_sql() -> None:
    statements = [
        Sql(SP.snapshot_ddl(SNAP)), Sql(SP.stage_ddl("activate_stage_acks", ACK_COLUMNS)),
        *SP.apply_stage(SNAP, "activate_stage_acks", NOW), *SP.delete_rows(SNAP, Sql("sync_key = %s", ("x",))),
        *SP.record_rejections("`s`.`sync_rejections`", "activate_stage_rejects", "sync", "run", NOW),
        *SP.clear_stage("activate_stage_acks", ACK_COLUMNS),
        *SP.update_rows(SNAP, SNAPSHOT_COLUMNS, {"fingerprint": Sql("%s", ("x",))}, Sql("sync_key in (%s)", ("k",))),
        Sql(lock_table_ddl(SP.table("s", "sync_locks"), SP)),
        Sql(SP.diff_query("`a`.`people`", SNAP, [Column("id", "int")], [Column("email", "string")],
                          "country = 'FR'").sql),
    ]
    for statement in statements:
        assert not re.search(r"\b(delete|update|merge)\b", statement.text, re.IGNORECASE), statement
        _parse(SP.render(statement.text, statement.params))
    rewrite = SP.apply_stage(SNAP, "activate_stage_acks", NOW)
    # Spark refuses to overwrite a table the statement reads: the new rows are built beside it first.
    assert rewrite[1].text.startswith("create table `analytics_activate`.`snapshot_people_1a2b3c4d__next` as select")
    assert rewrite[1].params == (NOW,) and not any(s.params for s in rewrite[::2])
    assert rewrite[2].text == (f"insert overwrite table {SNAP} select * from "
                               "`analytics_activate`.`snapshot_people_1a2b3c4d__next`")
    assert SP.delete_rows(SNAP) == [Sql(f"truncate table {SNAP}")]
    # An update is a rewrite too: each assigned column takes its value where the rows match, in the
    # table's column order (the rewrite's INSERT OVERWRITE ... SELECT * is positional).
    update = SP.update_rows(SNAP, SNAPSHOT_COLUMNS, {"fingerprint": Sql("%s", ("x",))},
                            Sql("sync_key in (%s)", ("k",)))
    assert update[1] == Sql(
        f"create table `analytics_activate`.`snapshot_people_1a2b3c4d__next` as select sync_key, case when "
        f"coalesce((sync_key in (%s)), false) then (%s) else fingerprint end as fingerprint, record_identity, "
        f"synced_at from {SNAP}", ("k", "x"))
    with pytest.raises(ValueError, match="not columns of"):
        SP.update_rows(SNAP, SNAPSHOT_COLUMNS, {"fingerprnt": Sql("%s", ("x",))}, Sql("true"))
    # The sync rows are only appended: nothing to remove before the new one.
    assert SP.superseded_rows("`s`.`activate_syncs`", Sql("sync_name = %s", ("x",))) == []
    # Tables every run appends to are Hive serde tables: concurrent inserts into one Parquet data
    # source table share its _temporary directory and fail (measured on the Thrift server).
    assert lock_table_ddl("`s`.`sync_locks`", SP).endswith(") stored as avro")
    assert DB.shared_table_options == ""


def test_sync_rows_are_appended_and_the_latest_one_counts() -> None:
    assert SP.appends_sync_rows and not DB.appends_sync_rows
    current = SP.current_rows("`s`.`activate_syncs`", "sync_name", "last_run_at")
    tree = _parse(f"select * from {current} t")
    window = tree.find(exp.Window)
    assert window is not None and "partition by sync_name order by last_run_at desc" in current
    assert DB.current_rows("`s`.`activate_syncs`", "sync_name", "last_run_at") == "`s`.`activate_syncs`"


def test_the_delta_path_merges_the_snapshot_in_one_statement() -> None:
    """Parsed with sqlglot's Databricks dialect only: Databricks itself was not run (module docstring)."""
    (statement,) = DB.apply_stage(SNAP, "activate_stage_acks", NOW)
    merge = _parse(DB.render(statement.text, statement.params), "databricks")
    assert isinstance(merge, exp.Merge)
    whens = [w.sql("databricks").lower() for w in merge.find_all(exp.When)]
    assert any("matched and s.op = 'remove' then delete" in w for w in whens), whens
    assert any("not matched and s.op <> 'remove' then insert" in w for w in whens), whens


def test_the_delta_path_merges_rejections_and_deletes_with_delete() -> None:
    (statement,) = DB.record_rejections("`s`.`sync_rejections`", "activate_stage_rejects", "it's", "r1", NOW)
    merge = _parse(statement.text, "databricks")
    assert isinstance(merge, exp.Merge)
    assert "t.attempts + 1" in statement.text and "'it\\'s'" in statement.text
    assert DB.delete_rows(SNAP, Sql("sync_key = %s", ("x",))) == [
        Sql(f"delete from {SNAP} where sync_key = %s", ("x",))]
    assert isinstance(_parse(DB.delete_rows(SNAP, Sql("sync_key = 'x'"))[0].text, "databricks"), exp.Delete)
    assert DB.superseded_rows(SNAP, Sql("sync_key = 'x'")) == DB.delete_rows(SNAP, Sql("sync_key = 'x'"))
    assert DB.lock_kind == "merge" and SP.lock_kind == "claim"
