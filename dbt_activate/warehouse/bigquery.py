"""BigQuery through dbt-bigquery (google-cloud-bigquery).

Identifiers: backtick-quoted, one part at a time (`` `project`.`dataset`.`table` ``); a double-quoted
name is a string literal in GoogleSQL (https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical),
which is why no generic SQL may ever run here. Dataset and table names are case-sensitive, so names
are quoted exactly as the table schema spells them, and nothing is folded.

Text rules: ``TIMESTAMP`` is an absolute instant and ``DATETIME`` a wall-clock time; both become
``FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E6S', CAST(c AS TIMESTAMP), 'UTC')`` (a ``DATETIME`` cast to
``TIMESTAMP`` is read as UTC, so its wall clock is kept); ``JSON``, ``STRUCT`` and ``ARRAY`` render as
``TO_JSON_STRING`` (they cannot be cast to ``STRING``); everything else is ``CAST(c AS STRING)``. The
fingerprint is one ``TO_HEX(MD5(...))`` a row over length-prefixed texts, as PostgreSQL's.

Statements: the state tables are written with forms both BigQuery and the emulator the tests run
(crucible-emulator, tests/support/bigquery.py) accept. The emulator refuses ``DELETE``, ``UPDATE`` and
query parameters (HTTP 400), and BigQuery has no ``VARCHAR`` or ``DOUBLE PRECISION``. So the state
writes (the dialect's hooks) are ``MERGE`` statements: deleting rows is ``MERGE t USING (SELECT 1) ON
FALSE WHEN NOT MATCHED BY SOURCE AND c THEN DELETE`` (every target row is unmatched, so exactly the rows
where ``c`` holds go), updating them likewise with ``THEN UPDATE``, and the acknowledged rows and the
rejections of a journal segment each take one ``MERGE`` from their stage; the types are GoogleSQL's
(``STRING``, ``FLOAT64``). Parameters are inlined as escaped literals by the cursor (bigquery_client.py).
BigQuery has temporary tables only inside scripts and sessions, which the emulator lacks: journal stages
are tables of the state dataset, one per run (``stage_table``), that expire after a day. Each DML
statement is atomic on its own; ``BEGIN``/``COMMIT`` are not sent (every state write dbt-activate makes
is idempotent when replayed from its journal).

The driver seam (bigquery_client.py): dbt-bigquery's handle is a ``google.cloud.bigquery.Client``, not a
DB-API connection; ``connection()`` wraps it in a cursor that runs each statement as a query job
labelled ``tool: dbt-activate`` (find its cost in the billing export), pages through results with
``result(page_size=…)`` and lists a table's columns from its schema (``tables.get``) rather than
``INFORMATION_SCHEMA``, which the emulator refuses. The per-sync lock is the conditional ``MERGE``
(state/locks.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dbt_activate.errors import IdentifierError
from dbt_activate.warehouse.bigquery_client import COLUMNS_FROM_SCHEMA, BigQueryConnection, literal
from dbt_activate.warehouse.dialect import (
    BOOLEAN,
    TIMESTAMP,
    TIMESTAMPTZ,
    Column,
    Dialect,
    Fetch,
    Sql,
    assignment_list,
)

_FORMAT = "'%Y-%m-%dT%H:%M:%E6S'"
_SEMI_STRUCTURED = ("json", "struct", "array", "record")
# BigQuery's documented limits on names (https://cloud.google.com/bigquery/docs/tables#table_naming).
_MAX_NAME = 1024
# The source of a MERGE that only deletes or updates target rows: one row that matches none of them.
_NO_SOURCE = "(select 1 as __activate_one) __activate_none"
# A MERGE fails when two source rows match one target row: a key staged twice counts once.
_ONE_ROW_A_KEY = "where true qualify row_number() over (partition by sync_key) = 1"


@dataclass(frozen=True)
class BigQueryDialect(Dialect):
    name: ClassVar[str] = "bigquery"
    # Inlined as literals before a statement is sent (bigquery_client.py): the emulator refuses parameters.
    placeholder: ClassVar[str] = "?"
    text_type: ClassVar[str] = "string"
    key_type: ClassVar[str] = "string"
    double_type: ClassVar[str] = "float64"
    temp_table: ClassVar[str] = "table"
    lock_kind: ClassVar[str] = "merge"
    # Every statement commits on its own: there is no transaction to keep DDL out of.
    transactional_ddl: ClassVar[bool] = False

    # --- identifiers and literals -------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        """A backtick-quoted name; a backtick or backslash in it escaped with a backslash."""
        if not identifier or len(identifier) > _MAX_NAME or "\x00" in identifier or "\n" in identifier:
            raise IdentifierError(f"identifier {identifier!r} cannot be quoted (empty, longer than {_MAX_NAME} "
                                  "characters, a NUL byte or a line break): rename it")
        return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def literal(self, text: str) -> str:
        if "\x00" in text:
            raise ValueError("a NUL byte cannot be a SQL string literal")
        return literal(text)

    def table(self, schema: str, name: str, database: str | None = None) -> str:
        return ".".join(self.quote(p) for p in (database, schema, name) if p)

    # --- normalisation and fingerprint (macros/activate_text.sql, fingerprint.sql: bigquery__) --------

    def text_of(self, column_sql: str, kind: str, data_type: str) -> str:
        if kind == BOOLEAN:
            return super().text_of(column_sql, kind, data_type)
        if kind in (TIMESTAMP, TIMESTAMPTZ):
            return f"format_timestamp({_FORMAT}, cast({column_sql} as timestamp), 'UTC')"
        if data_type.startswith(_SEMI_STRUCTURED):
            return f"to_json_string({column_sql})"
        return f"cast({column_sql} as string)"

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """One TO_HEX(MD5(...)) a row over each text prefixed by its length in bytes and ':' ('-:' for null)."""
        texts = [self.normalized(f"{prefix}{self.quote(c.name)}", c.data_type) for c in columns]
        pieces = [f"coalesce(cast(byte_length({t}) as string), '-') || ':' || coalesce({t}, '')" for t in texts]
        return f"to_hex(md5({' || '.join(pieces)}))"

    # --- state tables -----------------------------------------------------------------------------

    def columns_query(self) -> str:
        return COLUMNS_FROM_SCHEMA

    def create_schema(self, schema: str) -> str:
        return f"create schema if not exists {self.quote(schema)}"

    def stage_table(self, name: str, schema: str) -> str:
        # No temporary tables outside scripts: one table per run in the state dataset.
        return f"{schema}.{name}_{uuid.uuid4().hex[:12]}"

    def quote_own(self, identifier: str) -> str:
        # A stage table (stage_table) is dataset.table: each part quoted on its own.
        return ".".join(self.quote(part) for part in identifier.split(".")) if "." in identifier \
            else self.quote(identifier)

    def stage_ddl(self, name: str, columns: Sequence[str]) -> str:
        cols = ", ".join(f"{self.quote(c)} string" for c in columns)
        return (f"create or replace table {self.quote_own(name)} ({cols}) "
                "options (expiration_timestamp = timestamp_add(current_timestamp(), interval 1 day))")

    # --- state writes: MERGE, which BigQuery and the emulator both run (module docstring) -------------

    def varchar(self, length: int) -> str:
        return "string"

    def delete_rows(self, table: str, where: Sql | None = None) -> list[Sql]:
        """Every target row is unmatched (ON FALSE): exactly the rows where ``where`` holds go."""
        condition = f" and ({where.text})" if where is not None else ""
        return [Sql(f"merge {table} using {_NO_SOURCE} on false when not matched by source{condition} then delete",
                    where.params if where is not None else ())]

    def delete_staged_keys(self, table: str, stage: str, where: Sql) -> list[Sql]:
        # A join on the key, not `sync_key IN (SELECT …)` in delete_rows' condition: the emulator
        # deletes every row the rest of that condition matches (measured), BigQuery does not.
        return [Sql(f"merge {table} t using (select distinct sync_key from {self.quote_own(stage)}) s "
                    f"on t.sync_key = s.sync_key when matched and ({where.text}) then delete", where.params)]

    def update_rows(self, table: str, columns: Sequence[str], assignments: Mapping[str, Sql],
                    where: Sql) -> list[Sql]:
        sets = assignment_list(assignments)
        return [Sql(f"merge {table} using {_NO_SOURCE} on false when not matched by source and ({where.text}) "
                    f"then update set {sets.text}", where.params + sets.params)]

    def apply_stage(self, snapshot: str, stage: str, now: str) -> list[Sql]:
        """One MERGE: a removed key's row deleted, a sent one's updated or inserted."""
        return [Sql(
            f"merge {snapshot} t using (select op, sync_key, fingerprint, record_identity, "
            f"cast({self.placeholder} as timestamp) as synced_at from {self.quote_own(stage)} {_ONE_ROW_A_KEY}) s "
            "on t.sync_key = s.sync_key "
            "when matched and s.op = 'remove' then delete "
            "when matched then update set fingerprint = s.fingerprint, record_identity = s.record_identity, "
            "synced_at = s.synced_at "
            "when not matched and s.op <> 'remove' then insert (sync_key, fingerprint, record_identity, synced_at) "
            "values (s.sync_key, s.fingerprint, s.record_identity, s.synced_at)", (now,))]

    def record_rejections(self, rejections: str, reject_stage: str, sync_name: str, run_id: str,
                          now: str) -> list[Sql]:
        """One MERGE: a row seen before counts one more attempt (unless this run counted it), a new one is added."""
        p = self.placeholder
        return [Sql(
            f"merge {rejections} t using (select sync_key, reason from {self.quote_own(reject_stage)} "
            f"{_ONE_ROW_A_KEY}) s "
            f"on t.sync_name = {p} and t.sync_key = s.sync_key "
            f"when matched and (t.last_run_id is null or t.last_run_id <> {p}) then update set "
            f"reason = s.reason, attempts = t.attempts + 1, last_seen_at = cast({p} as timestamp), last_run_id = {p} "
            "when not matched then insert (sync_name, sync_key, reason, attempts, first_seen_at, last_seen_at, "
            f"last_run_id) values ({p}, s.sync_key, s.reason, 1, cast({p} as timestamp), cast({p} as timestamp), {p})",
            (sync_name, run_id, now, run_id, sync_name, now, now, run_id))]

    # --- the driver: a cursor over the Client (bigquery_client.py) ------------------------------------

    def connection(self, handle: Any) -> Any:
        return BigQueryConnection(handle, self.placeholder)

    def begin(self, handle: Any) -> None:
        """Each statement is atomic and commits on its own (no multi-statement transactions)."""

    def commit(self, handle: Any) -> None:
        """Nothing to commit: see begin."""

    def rollback(self, handle: Any) -> None:
        """Nothing to roll back: see begin."""

    def open_stream(self, handle: Any, sql: str, batch_rows: int, name: str) -> tuple[Any, Fetch]:
        cur = handle.cursor()
        cur.execute(sql, page_size=batch_rows)
        return cur, lambda: cur.fetchmany(batch_rows)

    def load_csv(self, handle: Any, table: str, path: Path, columns: Sequence[str]) -> None:
        handle.load_csv(table, path, columns)
