"""Spark through dbt-spark (PyHive over the Thrift server), and Databricks through dbt-databricks.

Identifiers: backtick-quoted (a double-quoted name is a parse error on Spark); the Hive metastore
stores names in lower case, so names dbt-activate chooses are folded to lower case. String literals
take backslash escapes, and two adjacent literals are concatenated (``'it''s'`` is ``its``), so a
quote is escaped with a backslash, never doubled.

Text rules: Spark's ``timestamp`` is an instant shown in the session time zone: it is converted to
UTC (``to_utc_timestamp(c, current_timezone())``) before it is formatted; ``timestamp_ntz`` is
formatted as it is; arrays, maps and structs render as ``to_json``, binary as ``hex``. The
fingerprint is one ``md5(concat_ws('', …))`` a row over length-prefixed texts (as the other dialects).

State writes. Spark has no multi-statement transaction: each statement commits on its own.
- Without Delta (``spark``: Parquet tables of the Thrift server, where DELETE, UPDATE and MERGE are
  refused) rows are only ever inserted, or a table is rewritten: the snapshot of a sync and the
  rejections are written into ``<table>__next`` (CREATE TABLE AS SELECT, since Spark refuses to
  overwrite a table the same statement reads), then copied back with ``INSERT OVERWRITE``; the
  sync rows are appended and the latest row of a sync counts; the lock appends claim rows
  (state/locks.py, ``claim``). Tables every run writes to are Hive Avro tables (see
  ``shared_table_options``). A rewrite is not atomic: a run killed during the ``INSERT OVERWRITE``
  (a few seconds) may leave the snapshot short of rows, whose records are sent again next run, and
  the rejections table is rewritten whole, so two runs of different syncs recording rejections at the
  same moment may lose one's rows (a report only: rejected rows are never in the snapshot, so the
  next diff sends them again either way).
- With Delta (``databricks``, where every table is a Delta table): the snapshot and the rejections
  take one atomic ``MERGE``, deletes are ``DELETE``, and the lock is the conditional ``MERGE`` of
  state/locks.py. This path was not run here (dbt-databricks refuses a non-Databricks server): its
  statements are parsed with sqlglot's Databricks dialect in tests/warehouse/test_spark.py.

Driver: dbt-spark's handle wraps the PyHive connection and polls every 5 s; dbt-activate runs its
statements on the PyHive connection itself, asynchronously with a short poll (a long statement is
not held on one Thrift call, which the server may drop), and reads results in batches with
``fetchmany``. Parameters are rendered as literals (PyHive itself formats them client-side).
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

from dbt_activate.errors import WarehouseError
from dbt_activate.warehouse.dialect import (
    BOOLEAN,
    SNAPSHOT_COLUMNS,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    Dialect,
    Fetch,
    Query,
    Sql,
)

_NOT_FOUND = ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND", "NoSuchTableException", "NoSuchDatabaseException")
_NESTED = ("array<", "map<", "struct<")
_STAGE_ROWS_PER_VIEW = 2000
_POLL_MAX_SECONDS = 0.5


class SparkStatementError(Exception):
    """A statement the Thrift server refused or cancelled; the message is the server's own."""


@dataclass(frozen=True)
class SparkDialect(Dialect):
    name: ClassVar[str] = "spark"
    text_type: ClassVar[str] = "string"
    key_type: ClassVar[str] = "string"
    double_type: ClassVar[str] = "double"
    transactional_ddl: ClassVar[bool] = False
    lock_kind: ClassVar[str] = "claim"
    appends_sync_rows: ClassVar[bool] = True
    # Whether state tables are Delta tables (DELETE, UPDATE and MERGE run): Databricks.
    delta: ClassVar[bool] = False
    # Two INSERTs into one Parquet (data source) table at once share its `_temporary` directory, and the
    # first to commit deletes it: the other job fails (measured: 2 of 4 concurrent inserts). A Hive
    # serde table stages each insert in a directory of its own; Avro keeps newlines in text intact
    # (timestamps to the millisecond).
    shared_table_options: ClassVar[str] = " stored as avro"

    # --- identifiers and literals -------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        super().quote(identifier)  # the same refusals
        return "`" + identifier.replace("`", "``") + "`"

    def fold(self, identifier: str) -> str:
        return identifier.lower()

    def literal(self, text: str) -> str:
        if "\x00" in text:
            raise ValueError("a NUL byte cannot be a SQL string literal")
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def sql_value(self, value: Any) -> str:
        """A parameter as a SQL literal."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, (datetime, date)):
            return self.literal(value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat())
        return self.literal(str(value))

    def table(self, schema: str, name: str, database: str | None = None) -> str:
        # dbt-spark reports the schema as the database too; a catalog is Databricks' (Unity Catalog).
        return super().table(schema, name, database if database and database != schema else None)

    # --- normalisation and fingerprint (macros/activate_text.sql, fingerprint.sql: spark__) ---------

    def text_of(self, column_sql: str, kind: str, data_type: str) -> str:
        if kind == BOOLEAN:
            return super().text_of(column_sql, kind, data_type)
        if kind in (TIMESTAMP, TIMESTAMPTZ):
            # Spark's `timestamp` is TIMESTAMP_LTZ: shown in the session's time zone unless converted.
            ts = column_sql if data_type.startswith("timestamp_ntz") else \
                f"to_utc_timestamp({column_sql}, current_timezone())"
            return f"concat(date_format({ts}, 'yyyy-MM-dd'), 'T', date_format({ts}, 'HH:mm:ss.SSSSSS'))"
        if data_type.startswith(_NESTED):
            return f"to_json({column_sql})"
        if data_type == "binary":
            return f"hex({column_sql})"
        return f"cast({column_sql} as string)"

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """One md5 a row over each text prefixed by its length and ':' ('-:' for null)."""
        texts = [self.normalized(f"{prefix}{self.quote(c.name)}", c.data_type) for c in columns]
        parts = [f"coalesce(cast(length({t}) as string), '-'), ':', coalesce({t}, '')" for t in texts]
        return f"md5(concat_ws('', {', '.join(parts)}))"

    # --- state tables -----------------------------------------------------------------------------

    def columns(self, query: Query, schema: str, table: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """From ``DESCRIBE TABLE`` (Spark has no information_schema); [] when the table is missing."""
        try:
            rows = query(f"describe table {self.table(schema, table, database)}", [])
        except WarehouseError as exc:
            if any(marker in str(exc) for marker in _NOT_FOUND):
                return []
            raise
        found: list[tuple[Any, ...]] = []
        for row in rows:
            name = str(row[0] or "").strip()
            if not name or name.startswith("#"):  # partition and detail sections follow a blank row
                break
            found.append((name, str(row[1] or "").strip()))
        return found

    def snapshot_ddl(self, table: str) -> str:
        columns = ", ".join(f"{c} timestamp" if c == "synced_at" else f"{c} string" for c in SNAPSHOT_COLUMNS)
        return f"create table if not exists {table} ({columns})"

    def stage_ddl(self, name: str, columns: Sequence[str]) -> str:
        """A stage is a temporary view (Spark has no temporary tables), session-local as one."""
        cols = ", ".join(f"cast(null as string) as {self.quote_own(c)}" for c in columns)
        return f"create or replace temporary view {self.quote_own(name)} as select {cols} limit 0"

    def clear_stage(self, name: str, columns: Sequence[str]) -> list[Sql]:
        return [Sql(self.stage_ddl(name, columns))]

    def _next(self, table: str) -> str:
        """The table a rewrite of ``table`` (a quoted name) is built in first."""
        return table[:-1] + "__next`"

    def _rewrite(self, table: str, select: Sql) -> list[Sql]:
        """Replace the rows of ``table`` by those of ``select``, which may read ``table``."""
        staged = self._next(table)
        return [Sql(f"drop table if exists {staged}"), Sql(f"create table {staged} as {select.text}", select.params),
                Sql(f"insert overwrite table {table} select * from {staged}"), Sql(f"drop table {staged}")]

    def delete_rows(self, table: str, where: Sql | None = None) -> list[Sql]:
        if self.delta:
            return super().delete_rows(table, where)
        if where is None:
            return [Sql(f"truncate table {table}")]
        return self._rewrite(table, Sql(f"select * from {table} where not coalesce(({where.text}), false)",
                                        where.params))

    def update_rows(self, table: str, columns: Sequence[str], assignments: Mapping[str, Sql],
                    where: Sql) -> list[Sql]:
        if self.delta:
            return super().update_rows(table, columns, assignments, where)
        # Without Delta: the table rewritten, each assigned column taking its value where the rows match.
        unknown = sorted(set(assignments) - set(columns))
        if unknown:  # the rewrite would drop them silently where an UPDATE fails
            raise ValueError(f"{', '.join(unknown)}: not columns of {table}")
        selected: list[str] = []
        params: list[Any] = []
        for column in columns:
            if column in assignments:
                value = assignments[column]
                selected.append(f"case when coalesce(({where.text}), false) then ({value.text}) else {column} end "
                                f"as {column}")
                params += [*where.params, *value.params]
            else:
                selected.append(column)
        return self._rewrite(table, Sql(f"select {', '.join(selected)} from {table}", tuple(params)))

    def superseded_rows(self, table: str, where: Sql) -> list[Sql]:
        # Without Delta the sync rows are appended and the latest one counts (current_rows).
        return [] if self.appends_sync_rows else super().superseded_rows(table, where)

    def apply_stage(self, snapshot: str, stage: str, now: str) -> list[Sql]:
        p = self.placeholder
        stage_q = self.quote_own(stage)
        if self.delta:
            return [Sql(
                f"merge into {snapshot} t using (select op, sync_key, fingerprint, record_identity, "
                f"cast({p} as timestamp) as synced_at from {stage_q}) s on t.sync_key = s.sync_key "
                "when matched and s.op = 'remove' then delete "
                "when matched then update set fingerprint = s.fingerprint, record_identity = s.record_identity, "
                "synced_at = s.synced_at "
                "when not matched and s.op <> 'remove' then insert (sync_key, fingerprint, record_identity, "
                "synced_at) values (s.sync_key, s.fingerprint, s.record_identity, s.synced_at)", (now,))]
        return self._rewrite(snapshot, Sql(
            f"select s.sync_key, s.fingerprint, s.record_identity, s.synced_at from {snapshot} s "
            f"left anti join {stage_q} a on s.sync_key = a.sync_key union all "
            f"select sync_key, fingerprint, record_identity, cast({p} as timestamp) from {stage_q} "
            "where op <> 'remove'", (now,)))

    def record_rejections(self, rejections: str, reject_stage: str, sync_name: str, run_id: str,
                          now: str) -> list[Sql]:
        sync, run, ts = self.literal(sync_name), self.literal(run_id), f"cast({self.literal(now)} as timestamp)"
        reject_stage = self.quote_own(reject_stage)
        if self.delta:
            return [Sql(
                f"merge into {rejections} t using (select sync_key, reason from {reject_stage}) s "
                f"on t.sync_name = {sync} and t.sync_key = s.sync_key "
                f"when matched and (t.last_run_id is null or t.last_run_id <> {run}) then update set "
                f"reason = s.reason, attempts = t.attempts + 1, last_seen_at = {ts}, last_run_id = {run} "
                "when not matched then insert (sync_name, sync_key, reason, attempts, first_seen_at, "
                f"last_seen_at, last_run_id) values ({sync}, s.sync_key, s.reason, 1, {ts}, {ts}, {run})")]
        # A row this run already counted keeps its values (the base form's last_run_id condition).
        same = f"(o.sync_key is not null and o.last_run_id = {run})"
        return self._rewrite(rejections, Sql(
            f"select x.* from {rejections} x where not coalesce(x.sync_name = {sync} and x.sync_key in "
            f"(select sync_key from {reject_stage}), false) union all "
            f"select {sync}, r.sync_key, case when {same} then o.reason else r.reason end, "
            f"case when o.sync_key is null then 1 when {same} then o.attempts else o.attempts + 1 end, "
            f"coalesce(o.first_seen_at, {ts}), case when {same} then o.last_seen_at else {ts} end, {run} "
            f"from {reject_stage} r left join (select * from {rejections} where sync_name = {sync}) o "
            "on o.sync_key = r.sync_key"))

    def refresh(self, table: str) -> list[str]:
        """A Thrift session caches the file listing of a table it read: without REFRESH TABLE it does
        not see rows another session inserted since (measured: a waiting lock never saw the release)."""
        return [f"refresh table {table}"]

    def current_rows(self, table: str, key: str, order: str) -> str:
        if not self.appends_sync_rows:
            return table
        return (f"(select * from (select *, row_number() over (partition by {key} order by {order} desc) "
                f"as activate_rank from {table}) ranked where activate_rank = 1)")

    # --- the driver -----------------------------------------------------------------------------------

    def connection(self, handle: Any) -> Any:
        """The PyHive connection inside dbt-spark's wrapper (``handle.handle``)."""
        inner = getattr(handle, "handle", None)
        return inner if inner is not None and hasattr(inner, "cursor") else handle

    def begin(self, handle: Any) -> None:
        """Spark has no multi-statement transactions: each statement commits on its own."""

    def commit(self, handle: Any) -> None:
        pass

    def rollback(self, handle: Any) -> None:
        pass

    def render(self, sql: str, params: Sequence[Any] = ()) -> str:
        return sql % tuple(self.sql_value(v) for v in params) if params else sql

    def execute(self, cursor: Any, sql: str, params: Sequence[Any] = ()) -> None:
        sql = self.render(sql, params)
        if not hasattr(cursor, "poll"):  # a DB-API cursor other than PyHive's (Databricks SQL)
            cursor.execute(sql)
            return
        from TCLIService.ttypes import TOperationState  # type: ignore[import-untyped]

        cursor.execute(sql, async_=True)
        wait = 0.01
        while True:
            status = cursor.poll()
            if status.errorMessage:
                raise SparkStatementError(status.errorMessage)
            state = status.operationState
            if state == TOperationState.FINISHED_STATE:
                return
            if state not in (TOperationState.INITIALIZED_STATE, TOperationState.PENDING_STATE,
                             TOperationState.RUNNING_STATE):
                name = TOperationState._VALUES_TO_NAMES.get(state, str(state))
                raise SparkStatementError(f"the statement ended in state {name}")
            time.sleep(wait)
            wait = min(wait * 2, _POLL_MAX_SECONDS)

    def open_stream(self, handle: Any, sql: str, batch_rows: int, name: str) -> tuple[Any, Fetch]:
        cur = handle.cursor()
        cur.arraysize = batch_rows  # PyHive fetches arraysize rows a Thrift call
        self.execute(cur, sql)
        return cur, lambda: list(cur.fetchmany(batch_rows))

    def load_csv(self, handle: Any, table: str, path: Path, columns: Sequence[str]) -> None:
        """Make the stage view ``table`` hold the rows of the file (replacing what it held): views of
        a few thousand literal rows each, and ``table`` their union."""
        names = ", ".join(self.quote_own(c) for c in columns)
        base = table.strip("`")
        parts: list[str] = []
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for i in itertools.count():
                chunk = list(itertools.islice(reader, _STAGE_ROWS_PER_VIEW))
                if not chunk:
                    break
                rows = ", ".join("(" + ", ".join(self.literal(v) if v != "" else "cast(null as string)"
                                                  for v in row) + ")" for row in chunk)
                part = self.quote(f"{base}__{i}")
                self.execute(handle.cursor(), f"create or replace temporary view {part} as "
                                              f"select * from values {rows} as t({names})")
                parts.append(f"select * from {part}")
        if parts:
            self.execute(handle.cursor(), f"create or replace temporary view {table} as {' union all '.join(parts)}")


@dataclass(frozen=True)
class DatabricksDialect(SparkDialect):
    """Databricks: the Spark dialect on Delta tables (MERGE, DELETE), through dbt-databricks."""

    name: ClassVar[str] = "databricks"
    lock_kind: ClassVar[str] = "merge"
    appends_sync_rows: ClassVar[bool] = False
    delta: ClassVar[bool] = True
    shared_table_options: ClassVar[str] = ""  # Delta tables (the default there) take concurrent writes
