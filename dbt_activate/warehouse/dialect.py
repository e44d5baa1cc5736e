"""What every warehouse dialect has in common: the diff, the state tables, quoting, the driver calls.

A dialect is one class per warehouse (duckdb.py, postgres.py, redshift.py, snowflake.py, bigquery.py), found by the
dbt adapter's type in ``registry.py``. This base class holds the SQL that is the same everywhere (the
diff statement, the state tables) and the hooks each warehouse overrides: how a column becomes text
that renders the same whatever the session settings, the row fingerprint, the text types, how
identifiers fold, how the driver opens a transaction and streams a result. The fingerprint and text
rules are shared with the dbt package's macros (macros/fingerprint.sql, macros/activate_text.sql):
change both together.

There is no generic dialect: an adapter without a class of its own is refused (``registry.py``)
rather than sent SQL written for another warehouse.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dbt_activate.errors import IdentifierError

KEY = "__activate_key"
FINGERPRINT = "__activate_fp"
DUPLICATES = "__activate_dups"
OP = "__activate_op"
IDENTITY = "__activate_identity"
SAVED = "__activate_saved_fp"

_SAFE_IDENT = re.compile(r"^[^\x00]{1,127}$")
# A name every warehouse reads the same whether quoted or not (after folding its case).
_PLAIN_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSERT_ROWS_PER_STATEMENT = 500

# The kinds of column the text rules tell apart (macros/activate_text.sql: activate_type_kind).
BOOLEAN, TIMESTAMP, TIMESTAMPTZ, SUPER, TEXT = "boolean", "timestamp", "timestamptz", "super", "text"

Fetch = Callable[[], list[Any]]
Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str


@dataclass(frozen=True)
class DiffQuery:
    """The one statement that yields the rows to send: op, key, fingerprint, identity, fields."""

    sql: str
    field_columns: tuple[str, ...]


@dataclass(frozen=True)
class Sql:
    """A statement, or a piece of one (a condition, assignments), with the values of its placeholders
    in order: what the state-write hooks take and return, so the dialect decides which statement of
    several takes which values, and in which order its own form needs them."""

    text: str
    params: tuple[Any, ...] = ()


SNAPSHOT_COLUMNS = ("sync_key", "fingerprint", "record_identity", "synced_at")  # a snapshot table's, in order


def assignment_list(assignments: Mapping[str, Sql]) -> Sql:
    """``col = expr, …`` of update_rows' assignments, their values in order."""
    return Sql(", ".join(f"{column} = {value.text}" for column, value in assignments.items()),
               tuple(p for value in assignments.values() for p in value.params))


def type_kind(data_type: str) -> str:
    """One of the kinds above for a warehouse data type name (the macros' activate_type_kind)."""
    kind = data_type.strip().lower()
    if kind in ("boolean", "bool"):
        return BOOLEAN
    if kind in ("timestamptz", "timestamp_tz", "timestamp_ltz") or kind.startswith("timestamp with time zone"):
        return TIMESTAMPTZ
    if kind.startswith("timestamp") or kind == "datetime":
        return TIMESTAMP
    if kind == "super":
        return SUPER
    return TEXT


@dataclass(frozen=True)
class Dialect:
    """The SQL and driver calls of one warehouse. Subclasses set the class attributes and override
    the hooks; instances hold no state."""

    name: ClassVar[str] = ""
    placeholder: ClassVar[str] = "%s"
    text_type: ClassVar[str] = "varchar"  # free text in the state tables
    key_type: ClassVar[str] = "varchar"  # a sync key in the state tables
    double_type: ClassVar[str] = "double precision"
    temp_table: ClassVar[str] = "temporary table"
    # Whether snapshots may hold the per-column fingerprint dbt-activate 0.1.0 wrote (see fingerprint).
    has_legacy_fingerprints: ClassVar[bool] = False
    # Whether state tables are named with the profile's database (DuckDB: the attached file).
    names_state_database: ClassVar[bool] = False
    # How the per-sync lock (state/locks.py) is made atomic: "file" (the warehouse allows one writing
    # process), "lock_table" (LOCK TABLE serialises acquirers), "merge" (a conditional MERGE) or "claim"
    # (insert-only: a claim row, then the run gives way to any other live claim; Spark without Delta).
    lock_kind: ClassVar[str] = "merge"
    # Whether DDL runs inside a transaction (PostgreSQL, DuckDB) or commits it (Snowflake: every DDL
    # statement is its own transaction), in which case it runs on its own (WarehouseConnection.run_ddl).
    transactional_ddl: ClassVar[bool] = True

    # --- identifiers and literals -------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        """Quote a name as the catalog spells it; names that cannot be quoted safely are refused."""
        if not _SAFE_IDENT.match(identifier):
            raise IdentifierError(f"identifier {identifier!r} cannot be quoted (empty, longer than 127 "
                                  "characters or a NUL byte): rename it")
        return '"' + identifier.replace('"', '""') + '"'

    def fold(self, identifier: str) -> str:
        """A name dbt-activate chose (state schema, its tables and columns) as the warehouse stores it
        when written without quotes; PostgreSQL and DuckDB keep our lower-case names as they are."""
        return identifier

    def quote_own(self, identifier: str) -> str:
        """Quote a name dbt-activate chose, folded first, so the same name unquoted finds it too."""
        return self.quote(self.fold(identifier) if _PLAIN_IDENT.match(identifier) else identifier)

    def field_name(self, column: str) -> str:
        """The name a column of the model goes by outside the warehouse (``fields: auto``)."""
        return column

    def literal(self, text: str) -> str:
        if "\x00" in text:
            raise ValueError("a NUL byte cannot be a SQL string literal")
        return "'" + text.replace("'", "''") + "'"

    def table(self, schema: str, name: str, database: str | None = None) -> str:
        """A table of the state schema (names dbt-activate chose)."""
        parts = [p for p in (database, schema, name) if p]
        return ".".join(self.quote_own(p) for p in parts)

    # --- normalisation and fingerprint (same rules as macros/activate_text.sql, fingerprint.sql) -------

    def normalized(self, column_sql: str, data_type: str) -> str:
        """A column as text that renders the same whatever the session settings."""
        return self.text_of(column_sql, type_kind(data_type), data_type.strip().lower())

    def text_of(self, column_sql: str, kind: str, data_type: str) -> str:
        """The text of a column of ``kind`` (PostgreSQL's rules; other dialects override)."""
        if kind == BOOLEAN:
            return f"case when {column_sql} then 'true' when not {column_sql} then 'false' end"
        if kind == TIMESTAMPTZ:
            return f"to_char(({column_sql} at time zone 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        if kind == TIMESTAMP:
            return f"to_char({column_sql}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        return f"cast({column_sql} as varchar)"

    def column_hash(self, column: Column, prefix: str = "") -> str:
        ref = f"{prefix}{self.quote(column.name)}"
        return f"coalesce(md5({self.normalized(ref, column.data_type)}), '-')"

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """The row fingerprint, 32 hex characters. The base form is md5 per column, then md5 of their
        concatenation (Redshift keeps it; dialects override with one md5 a row)."""
        return self.legacy_fingerprint(columns, prefix)

    def legacy_fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """md5 per column, then md5 of their concatenation: Redshift's form, and the snapshots
        dbt-activate 0.1.0 wrote on DuckDB and PostgreSQL (see diff_query)."""
        # 32 bytes a column keeps the concatenation far below Redshift's 65,535-byte limit even for
        # wide models.
        return "md5(" + " || ".join(self.column_hash(c, prefix) for c in columns) + ")"

    def is_legacy_fingerprint(self, fingerprint_sql: str) -> str:
        """True for a saved fingerprint in the lower-case per-column form (see fingerprint)."""
        # 'unconfirmed' (journal.MAYBE_FINGERPRINT) is neither form.
        return f"({fingerprint_sql} <> upper({fingerprint_sql}) and {fingerprint_sql} ~ '^[0-9a-f]{{32}}$')"

    def key_expression(self, columns: Sequence[Column], prefix: str = "") -> str:
        parts = [self.normalized(f"{prefix}{self.quote(c.name)}", c.data_type) for c in columns]
        # A composite key joins its parts with the unit separator; a null part makes the key null.
        return " || chr(31) || ".join(parts) if len(parts) > 1 else parts[0]

    # --- the diff -------------------------------------------------------------------------------

    def diff_query(
        self,
        relation: str,
        snapshot: str,
        key_columns: Sequence[Column],
        field_columns: Sequence[Column],
        where: str | None,
        *,
        include_changed: bool = True,
        include_removed: bool = True,
        include_unchanged: bool = False,
    ) -> DiffQuery:
        """Added, changed and removed rows of a model against its snapshot, in one statement.

        Rows come as (op, key, fingerprint, saved identity, rows sharing the key, fields…). Rows with
        a null or duplicate key come back once per key with op ``null_key`` / ``duplicate_key`` and
        the number of rows, so the runner rejects them with the reason and the others go through.

        The comparison runs on narrow rows (key, fingerprint) and only the changed keys are joined
        back to the model for their fields: the engine never holds whole rows of the model in a
        hash table, so the diff of a wide 10-million-row model stays cheap in memory. The model's
        rows meet the snapshot before any grouping: only the candidates (a differing or missing
        side, a null or duplicated key) are grouped by key, not every row (grouping all of them
        first and joining the grouped result cost twice as much on DuckDB, spilling at 1M rows).
        """
        names = [c.name for c in field_columns]
        segment = f" where ({where})" if where else ""
        key = self.key_expression(key_columns)
        duplicated = (f"select {KEY} from (select {key} as {KEY} from {relation}{segment}) x "
                      f"group by {KEY} having count(*) > 1")
        candidates = [f"r.{KEY} is null", "s.sync_key is null", f"r.{KEY} in ({duplicated})"]
        if include_changed:
            candidates.append(f"r.{FINGERPRINT} <> s.fingerprint")
        if include_unchanged:
            candidates = ["1 = 1"]
        joined = (
            f"select r.{KEY} as model_key, r.{FINGERPRINT}, s.sync_key, s.fingerprint, s.record_identity from "
            f"(select {key} as {KEY}, {self.fingerprint(field_columns)} as {FINGERPRINT} from {relation}{segment}) r "
            f"full outer join {snapshot} s on r.{KEY} = s.sync_key where {' or '.join(candidates)}"
        )
        # A key's rows of the model (none for a removed key) and its snapshot row, as one row.
        keyed = (
            f"select coalesce(model_key, sync_key) as {KEY}, min({FINGERPRINT}) as {FINGERPRINT}, "
            f"nullif(count({FINGERPRINT}), 0) as {DUPLICATES}, min(sync_key) as sync_key, "
            f"min(fingerprint) as fingerprint, min(record_identity) as record_identity "
            f"from ({joined}) j group by coalesce(model_key, sync_key)"
        )
        wanted = [f"k.{KEY} is null", f"k.{DUPLICATES} > 1", "k.sync_key is null"]
        if include_changed:
            wanted.append(f"k.{FINGERPRINT} <> k.fingerprint")
        if include_unchanged:
            wanted.append("1 = 1")
        present = f"k.{DUPLICATES} is not null and ({' or '.join(wanted)})"
        condition = f"k.{DUPLICATES} is null or ({present})" if include_removed else present
        op = (
            f"case when k.{DUPLICATES} is null then 'remove' when k.{KEY} is null then 'null_key' "
            f"when k.{DUPLICATES} > 1 then 'duplicate_key' when k.sync_key is null then 'add' else 'change' end"
        )
        fields = "".join(f", m.{self.quote(n)}" for n in names)
        selected = "".join(f", {self.quote(n)}" for n in names)
        saved, legacy = "", ""
        if self.has_legacy_fingerprints and include_changed and not include_unchanged:
            # A snapshot row saved with the older fingerprint form differs from every new one: its
            # row is a 'change' only if the older form of the model row differs too. That form is
            # computed on the few joined-back candidates only (the or-terms run left to right), and a
            # row sent again saves the new form (upgrade_fingerprints does all rows at once).
            saved = f", k.fingerprint as {SAVED}"
            legacy_fp = self.legacy_fingerprint(field_columns, "m.")
            legacy = (f" where c.{OP} <> 'change' or c.{SAVED} is null "
                      f"or not ({self.is_legacy_fingerprint(f'c.{SAVED}')}) or {legacy_fp} <> c.{SAVED}")
        sql = (
            f"with changes as (select {op} as {OP}, k.{KEY}, k.{FINGERPRINT}, "
            f"k.record_identity as {IDENTITY}, k.{DUPLICATES}{saved} from ({keyed}) k where {condition}) "
            f"select c.{OP}, c.{KEY}, c.{FINGERPRINT}, c.{IDENTITY}, c.{DUPLICATES}{fields} "
            f"from changes c left join (select {key} as {KEY}{selected} from {relation}{segment}) m "
            f"on c.{OP} in ('add', 'change') and m.{KEY} = c.{KEY}{legacy}"
        )
        return DiffQuery(sql=sql, field_columns=tuple(names))

    def initial_query(self, relation: str, key_columns: Sequence[Column], field_columns: Sequence[Column],
                      where: str | None) -> DiffQuery:
        """Every row of the model as an add: the first sync, when there is no snapshot to compare.

        A plain scan streams without any join; duplicate keys come from ``duplicate_keys_query``.
        """
        names = [c.name for c in field_columns]
        segment = f" where ({where})" if where else ""
        key = self.key_expression(key_columns)
        selected = "".join(f", {self.quote(n)}" for n in names)
        sql = (
            f"select case when {KEY} is null then 'null_key' else 'add' end as {OP}, {KEY}, {FINGERPRINT}, "
            f"cast(null as {self.text_type}) as {IDENTITY}, 1 as {DUPLICATES}{selected} from "
            f"(select {key} as {KEY}, {self.fingerprint(field_columns)} as {FINGERPRINT}{selected} "
            f"from {relation}{segment}) m"
        )
        return DiffQuery(sql=sql, field_columns=tuple(names))

    def duplicate_keys_query(self, relation: str, key_columns: Sequence[Column], where: str | None) -> str:
        segment = f" where ({where})" if where else ""
        return (f"select {KEY}, count(*) from (select {self.key_expression(key_columns)} as {KEY} "
                f"from {relation}{segment}) x where {KEY} is not null group by {KEY} having count(*) > 1")

    def upgrade_fingerprints(self, relation: str, snapshot: str, key_columns: Sequence[Column],
                             field_columns: Sequence[Column], where: str | None) -> str | None:
        """One statement rewriting a snapshot's older-form fingerprints (None where there is no other form).

        Only rows whose model row still has the saved fingerprint get the new form; the others stay
        as they are, so they still show as changed. Costs one full compare, once.
        """
        if not self.has_legacy_fingerprints:
            return None
        segment = f" where ({where})" if where else ""
        return (
            f"update {snapshot} set fingerprint = m.fp from (select {KEY}, min(fp) as fp, min(old) as old from "
            f"(select {self.key_expression(key_columns)} as {KEY}, {self.fingerprint(field_columns)} as fp, "
            f"{self.legacy_fingerprint(field_columns)} as old from {relation}{segment}) x "
            f"group by {KEY} having count(*) = 1) m "
            f"where {snapshot}.sync_key = m.{KEY} and {snapshot}.fingerprint = m.old"
        )

    def legacy_fingerprints_query(self, snapshot: str) -> str | None:
        """Whether a snapshot holds older-form fingerprints (one row if so); None where there is no other form."""
        if not self.has_legacy_fingerprints:
            return None
        return f"select 1 from {snapshot} where {self.is_legacy_fingerprint('fingerprint')} limit 1"

    # --- state tables -----------------------------------------------------------------------------

    def columns_query(self) -> str:
        """(column name, data type) of a relation; parameters: schema, table, database, database."""
        # Parameters are cast: drivers that bind server-side (redshift_connector) cannot type a bare NULL.
        p = f"cast({self.placeholder} as varchar)"
        return (
            "select column_name, data_type from information_schema.columns "
            f"where lower(table_schema) = lower({p}) and lower(table_name) = lower({p}) "
            f"and ({p} is null or lower(table_catalog) = lower({p})) order by ordinal_position"
        )

    def columns(self, query: Query, schema: str, table: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """(column name, data type) of a relation, [] when it does not exist; ``query`` runs a statement."""
        return query(self.columns_query(), [schema, table, database, database])

    def create_schema(self, schema: str) -> str:
        return f"create schema if not exists {self.quote_own(schema)}"

    def snapshot_ddl(self, table: str) -> str:
        types = {"sync_key": self.key_type, "fingerprint": self.varchar(32), "record_identity": self.text_type,
                 "synced_at": "timestamp"}
        columns = ", ".join(f"{c} {types[c]}" for c in SNAPSHOT_COLUMNS)
        return f"create table if not exists {table} ({columns})"

    def stage_table(self, name: str, schema: str) -> str:
        """The name of a journal stage (see stage_ddl): a session-local temporary table as it is; a
        table of the state schema, one per run, where there are no temporary tables (BigQuery)."""
        return name

    def stage_ddl(self, name: str, columns: Sequence[str]) -> str:
        """A session-local table that journal files are loaded into before they reach the state."""
        types = {"op": self.varchar(16), "sync_key": self.key_type, "fingerprint": self.varchar(32)}
        cols = ", ".join(f"{self.quote_own(c)} {types.get(c, self.text_type)}" for c in columns)
        return f"create {self.temp_table} {self.quote_own(name)} ({cols})"

    # --- state writes ---------------------------------------------------------------------------------
    # Table arguments are quoted names (the state store's); a stage is named as stage_table made it and
    # quoted here, as the dialect quotes its own names.
    # Every write to the state tables goes through these hooks, so the state layer (state/) holds no
    # warehouse's special case. The base forms are plain DELETE, UPDATE and INSERT; Spark without Delta
    # rewrites tables (INSERT OVERWRITE) to delete and update, BigQuery MERGEs every write, Databricks
    # (Delta) MERGEs the staged segments and keeps plain DELETE/UPDATE (spark.py, bigquery.py).

    def varchar(self, length: int) -> str:
        """A bounded text type of the state tables."""
        return f"varchar({length})"

    def delete_rows(self, table: str, where: Sql | None = None) -> list[Sql]:
        """Delete the rows of ``table`` that match ``where`` (all of them without)."""
        if where is None:
            return [Sql(f"delete from {table}")]
        return [Sql(f"delete from {table} where {where.text}", where.params)]

    def delete_staged_keys(self, table: str, stage: str, where: Sql) -> list[Sql]:
        """Delete the rows of ``table`` that match ``where`` and whose sync_key is in ``stage``."""
        return self.delete_rows(table, Sql(
            f"{where.text} and sync_key in (select sync_key from {self.quote_own(stage)})", where.params))

    def update_rows(self, table: str, columns: Sequence[str], assignments: Mapping[str, Sql],
                    where: Sql) -> list[Sql]:
        """Set each column of ``assignments`` to its expression on the rows of ``table`` that match
        ``where``; ``columns`` are all of the table's, in order (a dialect that rewrites the table needs them)."""
        sets = assignment_list(assignments)
        return [Sql(f"update {table} set {sets.text} where {where.text}", sets.params + where.params)]

    def superseded_rows(self, table: str, where: Sql) -> list[Sql]:
        """Remove the rows of ``table`` that a row inserted next replaces: deleted, or kept where rows
        are only appended and the latest one counts (appends_sync_rows, current_rows)."""
        return self.delete_rows(table, where)

    def clear_stage(self, name: str, columns: Sequence[str]) -> list[Sql]:
        """Empty a stage table (stage_ddl) before a journal file is loaded into it."""
        return self.delete_rows(self.quote_own(name))

    def apply_stage(self, snapshot: str, stage: str, now: str) -> list[Sql]:
        """Move acknowledged rows from the stage into the snapshot: delete + insert, no upsert syntax."""
        p = self.placeholder
        stage_q = self.quote_own(stage)
        return [
            *self.delete_rows(snapshot, Sql(f"sync_key in (select sync_key from {stage_q})")),
            Sql(f"insert into {snapshot} (sync_key, fingerprint, record_identity, synced_at) "
                f"select sync_key, fingerprint, record_identity, cast({p} as timestamp) from {stage_q} "
                "where op <> 'remove'", (now,)),
        ]

    def record_rejections(self, rejections: str, reject_stage: str, sync_name: str, run_id: str,
                          now: str) -> list[Sql]:
        """Record the rows of ``reject_stage`` (sync_key, reason) in ``rejections``: a row seen before
        counts one more attempt, unless this run already counted it; a new one is added."""
        p, reject_stage = self.placeholder, self.quote_own(reject_stage)
        return [
            Sql(f"update {rejections} set reason = r.reason, attempts = {rejections}.attempts + 1, "
                f"last_seen_at = cast({p} as timestamp), last_run_id = {p} from {reject_stage} r "
                f"where {rejections}.sync_name = {p} and {rejections}.sync_key = r.sync_key "
                f"and ({rejections}.last_run_id is null or {rejections}.last_run_id <> {p})",
                (now, run_id, sync_name, run_id)),
            Sql(f"insert into {rejections} (sync_name, sync_key, reason, attempts, first_seen_at, last_seen_at, "
                f"last_run_id) select {p}, r.sync_key, r.reason, 1, cast({p} as timestamp), "
                f"cast({p} as timestamp), {p} from {reject_stage} r where not exists (select 1 from "
                f"{rejections} x where x.sync_name = {p} and x.sync_key = r.sync_key)",
                (sync_name, now, now, run_id, sync_name)),
        ]

    # Appended to the CREATE TABLE of the state tables every run writes to (runs, syncs, locks, rejections).
    shared_table_options: ClassVar[str] = ""
    # Whether ``activate_syncs`` is appended to (a row per run, the latest one counts) rather than
    # deleted from and inserted into, on warehouses without DELETE (see current_rows).
    appends_sync_rows: ClassVar[bool] = False

    def current_rows(self, table: str, key: str, order: str) -> str:
        """``table`` as one row per ``key``: the table itself, or its latest rows by ``order`` where
        rows are only appended (appends_sync_rows)."""
        return table

    def refresh(self, table: str) -> list[str]:
        """Statements making this session see what other sessions wrote to ``table`` since it last read it."""
        return []

    def lock_statement(self, table: str) -> str | None:
        """The statement that serialises lock acquirers until commit (lock_kind "lock_table")."""
        return None

    # --- the driver: transactions, statements, streaming reads, bulk loads ------------------------------
    # Handles are the raw connections dbt's adapter opens (warehouse/adapter.py).

    def connection(self, handle: Any) -> Any:
        """What dbt-activate talks to: the adapter's handle itself, a DB-API connection, except where
        the handle is not one (BigQuery's Client, wrapped in bigquery_client.py)."""
        return handle

    def prepare(self, handle: Any) -> None:
        """Set up a new handle for dbt-activate's own use (called once per connection)."""

    def begin(self, handle: Any) -> None:
        """Open a transaction (the default: the driver opens one implicitly, autocommit off)."""

    def commit(self, handle: Any) -> None:
        handle.commit()

    def rollback(self, handle: Any) -> None:
        handle.rollback()

    @property
    def reads_open_transaction(self) -> bool:
        """Whether a plain read leaves a transaction open (autocommit off) that should be ended."""
        return False

    def execute(self, cursor: Any, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement on a cursor of the handle."""
        cursor.execute(sql, tuple(params)) if params else cursor.execute(sql)

    def open_stream(self, handle: Any, sql: str, batch_rows: int, name: str) -> tuple[Any, Fetch]:
        """Run ``sql`` and return its cursor and a function giving the next batch ([] at the end).
        The default relies on the driver's ``fetchmany`` fetching from the server as it goes."""
        cur = handle.cursor()
        self.execute(cur, sql)
        return cur, lambda: list(cur.fetchmany(batch_rows))

    def close_stream(self, handle: Any, cursor: Any, name: str) -> None:
        cursor.close()

    def load_csv(self, handle: Any, table: str, path: Path, columns: Sequence[str]) -> None:
        """Append a headerless CSV file (empty field = NULL) to ``table``, in the current transaction.
        The default: multi-row INSERTs with bound parameters, a few hundred rows a statement."""
        cols = ", ".join(self.quote_own(c) for c in columns)
        row_sql = "(" + ", ".join([self.placeholder] * len(columns)) + ")"
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            while chunk := list(itertools.islice(reader, _INSERT_ROWS_PER_STATEMENT)):
                params = [v if v != "" else None for row in chunk for v in row]
                sql = f"insert into {table} ({cols}) values " + ", ".join([row_sql] * len(chunk))
                self.execute(handle.cursor(), sql, params)

    # --- DuckDB's session (duckdb.py); nothing elsewhere ---------------------------------------------

    def session_settings(self, *, memory_limit: str | None, threads: int | None) -> list[tuple[str, str]]:
        """(setting, statement) pairs for dbt-activate's own connections."""
        return []

    def set_memory_limit(self, size: str) -> str:
        raise NotImplementedError(f"{self.name} has no memory limit to set")

    def reset_memory_limit(self) -> str:
        raise NotImplementedError(f"{self.name} has no memory limit to reset")

    def memory_limit_query(self) -> str:
        raise NotImplementedError(f"{self.name} has no memory limit to read")


def snapshot_table_name(sync_name: str) -> str:
    """A table name that fits PostgreSQL's 63 bytes and stays unique per sync name."""
    slug = re.sub(r"[^a-z0-9_]+", "_", sync_name.lower()).strip("_")[:40]
    digest = hashlib.sha1(sync_name.encode()).hexdigest()[:8]
    return f"snapshot_{slug}_{digest}"
