"""SQL per warehouse dialect (DuckDB, PostgreSQL, Redshift). Pure string building, no IO.

Every statement here must be valid on the engines that use it; Redshift is the strictest: no
``ON CONFLICT``, no ``||`` beyond 65,535 bytes, no cast of boolean to varchar, SUPER casts to NULL,
CONCAT takes two arguments. The fingerprint rules are shared with the dbt package's
``fingerprint`` macro (macros/fingerprint.sql): change both together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dbt_activate.errors import IdentifierError

KEY = "__activate_key"
FINGERPRINT = "__activate_fp"
DUPLICATES = "__activate_dups"
OP = "__activate_op"
IDENTITY = "__activate_identity"
SAVED = "__activate_saved_fp"

# Text columns in the state tables. Redshift counts varchar length in bytes and caps it at 65,535.
_TEXT = {"duckdb": "varchar", "postgres": "text", "redshift": "varchar(65535)"}
_KEY_TEXT = {"duckdb": "varchar", "postgres": "text", "redshift": "varchar(4096)"}
# Dialects whose fingerprint is one md5 a row (see Dialect.fingerprint).
_ONE_MD5 = ("duckdb", "postgres")
_SAFE_IDENT = re.compile(r"^[^\x00]{1,127}$")


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
class Dialect:
    name: str  # duckdb | postgres | redshift

    @property
    def placeholder(self) -> str:
        return "?" if self.name == "duckdb" else "%s"

    @property
    def text_type(self) -> str:
        return _TEXT.get(self.name, "varchar")

    @property
    def key_type(self) -> str:
        return _KEY_TEXT.get(self.name, "varchar")

    def quote(self, identifier: str) -> str:
        """Quote an identifier from YAML; names that cannot be quoted safely are refused."""
        if not _SAFE_IDENT.match(identifier):
            raise IdentifierError(f"identifier {identifier!r} cannot be quoted (empty, longer than 127 "
                                  "characters or a NUL byte): rename it")
        return '"' + identifier.replace('"', '""') + '"'

    def literal(self, text: str) -> str:
        if "\x00" in text:
            raise ValueError("a NUL byte cannot be a SQL string literal")
        return "'" + text.replace("'", "''") + "'"

    def table(self, schema: str, name: str, database: str | None = None) -> str:
        parts = [p for p in (database, schema, name) if p]
        return ".".join(self.quote(p) for p in parts)

    # --- normalisation and fingerprint (same rules as macros/fingerprint.sql) ---------------------

    def normalized(self, column_sql: str, data_type: str) -> str:
        """A column as text that renders the same whatever the session settings."""
        kind = data_type.strip().lower()
        if kind in ("boolean", "bool"):
            return f"case when {column_sql} then 'true' when not {column_sql} then 'false' end"
        with_tz = kind in ("timestamptz", "timestamp with time zone") or kind.startswith("timestamp with time zone")
        if kind.startswith("timestamp") or kind == "datetime":
            expr = column_sql
            if with_tz:
                expr = (f"timezone('UTC', {column_sql})" if self.name == "duckdb"
                        else f"({column_sql} at time zone 'UTC')")
            if self.name == "duckdb":
                return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S.%f')"
            return f"to_char({expr}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        if kind == "super" and self.name == "redshift":
            return f"json_serialize({column_sql})"
        return f"cast({column_sql} as varchar)"

    def column_hash(self, column: Column, prefix: str = "") -> str:
        ref = f"{prefix}{self.quote(column.name)}"
        return f"coalesce(md5({self.normalized(ref, column.data_type)}), '-')"

    @property
    def one_md5(self) -> bool:
        """Whether this dialect's fingerprint is the one-md5 form (see fingerprint)."""
        return self.name in _ONE_MD5

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """The row fingerprint: 32 hex characters, upper-case on DuckDB and PostgreSQL, else lower-case.

        DuckDB and PostgreSQL: one md5 over one concatenation, each text prefixed by its length in
        bytes and ':' ('-:' for null), so the encoding stays injective ('a','' / '','a' / null all
        differ) without the 19 md5 calls a row of 18 columns cost in the per-column form (8 of the
        12 CPU-seconds of a 1M-row DuckDB diff). Upper-case hex tells it from the per-column form
        0.1.0 saved (lower-case), which the diff still recognises. Redshift keeps the per-column
        form: a concatenation of whole texts could pass its 65,535-byte limit.
        """
        if not self.one_md5:
            return self.legacy_fingerprint(columns, prefix)
        texts = [self.normalized(f"{prefix}{self.quote(c.name)}", c.data_type) for c in columns]
        if self.name == "duckdb":
            parts = [f"coalesce(cast(strlen({t}) as varchar), '-'), ':', {t}" for t in texts]
            return f"upper(md5(concat({', '.join(parts)})))"
        # PostgreSQL: || rather than concat(), which takes at most 100 arguments.
        pieces = [f"coalesce(cast(octet_length({t}) as varchar), '-') || ':' || coalesce({t}, '')" for t in texts]
        return f"upper(md5({' || '.join(pieces)}))"

    def legacy_fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """md5 per column, then md5 of their concatenation: Redshift and other warehouses, and the
        snapshots dbt-activate 0.1.0 wrote on DuckDB and PostgreSQL (see diff_query)."""
        # 32 bytes a column keeps the concatenation far below Redshift's 65,535-byte limit even for
        # wide models.
        return "md5(" + " || ".join(self.column_hash(c, prefix) for c in columns) + ")"

    def is_legacy_fingerprint(self, fingerprint_sql: str) -> str:
        """True for a saved fingerprint in the lower-case per-column form (see fingerprint)."""
        # 'unconfirmed' (journal.MAYBE_FINGERPRINT) is neither form.
        hexadecimal = (f"regexp_full_match({fingerprint_sql}, '[0-9a-f]{{32}}')" if self.name == "duckdb"
                       else f"{fingerprint_sql} ~ '^[0-9a-f]{{32}}$'")
        return f"({fingerprint_sql} <> upper({fingerprint_sql}) and {hexadecimal})"

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
        if self.one_md5 and include_changed and not include_unchanged:
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
        if not self.one_md5:
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
        if not self.one_md5:
            return None
        return f"select 1 from {snapshot} where {self.is_legacy_fingerprint('fingerprint')} limit 1"

    # --- state tables -----------------------------------------------------------------------------

    def columns_query(self) -> str:
        # Parameters are cast: drivers that bind server-side (redshift_connector) cannot type a bare NULL.
        p = f"cast({self.placeholder} as varchar)"
        return (
            "select column_name, data_type from information_schema.columns "
            f"where lower(table_schema) = lower({p}) and lower(table_name) = lower({p}) "
            f"and ({p} is null or lower(table_catalog) = lower({p})) order by ordinal_position"
        )

    def create_schema(self, schema: str) -> str:
        return f"create schema if not exists {self.quote(schema)}"

    def snapshot_ddl(self, table: str) -> str:
        return (f"create table if not exists {table} (sync_key {self.key_type}, fingerprint varchar(32), "
                f"record_identity {self.text_type}, synced_at timestamp)")

    def stage_ddl(self, name: str, columns: Sequence[str]) -> str:
        """A session-local table that journal files are loaded into before they reach the state."""
        types = {"op": "varchar(16)", "sync_key": self.key_type, "fingerprint": "varchar(32)"}
        cols = ", ".join(f"{self.quote(c)} {types.get(c, self.text_type)}" for c in columns)
        temp = "temp table" if self.name == "redshift" else "temporary table"
        return f"create {temp} {self.quote(name)} ({cols})"

    def apply_stage(self, snapshot: str, stage: str) -> list[str]:
        """Move acknowledged rows from the stage into the snapshot: delete + insert, no upsert syntax."""
        p = self.placeholder
        stage_q = self.quote(stage)
        return [
            f"delete from {snapshot} where sync_key in (select sync_key from {stage_q})",
            f"insert into {snapshot} (sync_key, fingerprint, record_identity, synced_at) "
            f"select sync_key, fingerprint, record_identity, cast({p} as timestamp) from {stage_q} "
            "where op <> 'remove'",
        ]


    # --- DuckDB session: DuckDB runs inside dbt-activate's process (see connection.py) -----------------

    def session_settings(self, *, memory_limit: str | None, threads: int | None) -> list[tuple[str, str]]:
        """(setting, statement) pairs for dbt-activate's own connections; none outside DuckDB."""
        if self.name != "duckdb":
            return []
        settings = [("memory_limit", self.set_memory_limit(memory_limit))] if memory_limit is not None else []
        if threads is not None:
            settings.append(("threads", f"set threads = {int(threads)}"))
        # No statement of dbt-activate depends on the order of rows without ORDER BY; keeping that
        # order makes parallel scans buffer chunks that finish early (~10 MB at 1M rows).
        return [*settings, ("preserve_insertion_order", "set preserve_insertion_order = false")]

    def set_memory_limit(self, size: str) -> str:
        return f"set memory_limit = {self.literal(size)}"

    def reset_memory_limit(self) -> str:
        return "reset memory_limit"

    def memory_limit_query(self) -> str:
        return "select current_setting('memory_limit')"


def snapshot_table_name(sync_name: str) -> str:
    """A table name that fits PostgreSQL's 63 bytes and stays unique per sync name."""
    slug = re.sub(r"[^a-z0-9_]+", "_", sync_name.lower()).strip("_")[:40]
    digest = hashlib.sha1(sync_name.encode()).hexdigest()[:8]
    return f"snapshot_{slug}_{digest}"


def dialect_for(adapter_type: str) -> Dialect:
    if adapter_type in ("duckdb", "postgres", "redshift"):
        return Dialect(adapter_type)
    # Snowflake and BigQuery speak close enough for the diff; state DDL is generic varchar.
    return Dialect(adapter_type)
