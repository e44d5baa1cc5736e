"""The ``postgres`` destination: rows into a PostgreSQL table (psycopg2, one transaction per batch).

Every statement sends a batch as one ``VALUES`` list whose parameters are cast to the columns'
types without length or precision (``character varying``, ``numeric``), so the assignment to the
column still enforces them and a too-long string is an error rather than silently cut. Each row
carries its position in the batch, which ``RETURNING`` hands back, so UPDATE and CREATE know which
records they touched without comparing values across Python and SQL types. The session time zone
is UTC: aware datetimes written to ``timestamp`` columns keep their UTC wall time, and naive ones
written to ``timestamptz`` columns are read as UTC. Dicts and lists become JSON for json/jsonb
columns (strings there are taken as JSON text) and for text columns, lists become arrays for array
columns; NaN and infinities are refused for integer and numeric columns (kept for float ones).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from dbt_activate.core.types import Operation, SyncTarget
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.postgres.table import Column, TableSchema, inspect_table
from dbt_activate.destinations.sql import ORDINAL, SqlDestination, server_keys, server_overrides
from dbt_activate.errors import ConfigError, DestinationError, Redactor

_INSTALL_HINT = "pip install 'dbt-activate[postgres]' (or pip install psycopg2-binary)"
_VALUES = "__dbt_activate_values__"  # stands for the VALUES list until the query text is final
# SQLSTATEs that blame the rows sent, not the batch: cardinality (21), data exception (22),
# integrity constraint (23), datatype mismatch, cannot coerce, trigger RAISE EXCEPTION.
_ROW_CLASSES = ("21", "22", "23")
_ROW_CODES = frozenset({"42804", "42846", "P0001"})
# Worth a retry: connection (08), serialization/deadlock (40), resources (53), operator
# intervention such as pg_terminate_backend or statement_timeout (57), lock_not_available.
_RETRY_CLASSES = ("08", "40", "53", "57")
_RETRY_CODES = frozenset({"55P03"})


def _driver() -> Any:
    try:
        import psycopg2
        import psycopg2.extensions
        import psycopg2.extras
        import psycopg2.sql
    except ImportError as exc:
        raise ConfigError(f"the postgres destination needs psycopg2: {_INSTALL_HINT}") from exc
    return psycopg2


def _message(exc: BaseException) -> str:
    """PostgreSQL's own message, first line only (no 'ERROR:' prefix, no DETAIL/CONTEXT)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return str(primary)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class PostgresDestination(SqlDestination[TableSchema]):
    kind = "postgres"
    description = "Rows into a PostgreSQL table: upsert, update, create, append, mirror (delete), clear."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = server_keys(
        dsn="libpq connection string or URL (postgresql://user:pass@host:5432/db)", port=5432, login="role",
        databases=(ConfigKey("dbname", str, help="Database name."),
                   ConfigKey("schema", str, default="public", help="Schema of objects given as a bare table name.")),
        container="schema")

    planned_statements: ClassVar[Mapping[Operation, str]] = {
        Operation.UPSERT: "INSERT … ON CONFLICT ({ids}) DO UPDATE",
        Operation.CREATE: "INSERT … ON CONFLICT ({ids}) DO NOTHING RETURNING",
        Operation.APPEND: "INSERT",
        Operation.UPDATE: "UPDATE … FROM (VALUES …) WHERE ({ids}) match RETURNING",
        Operation.DELETE: "DELETE … WHERE ({ids}) match",
        Operation.CLEAR: "UPDATE … SET <non-identity fields> = NULL WHERE ({ids}) match",
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._statements: dict[Operation, tuple[str, str, bool] | None] = {}

    # -- connection -----------------------------------------------------------------------------

    def _driver_error(self) -> type[Exception]:
        error: type[Exception] = _driver().Error
        return error

    def _new_connection(self) -> Any:
        pg = _driver()
        params: dict[str, Any] = {}
        try:
            if self.config.get("dsn"):
                params.update(pg.extensions.parse_dsn(str(self.config["dsn"])))
        except pg.ProgrammingError as exc:
            raise ConfigError(f"{self._where()}: invalid dsn: {Redactor(self.secrets())(_message(exc))}") from None
        params.update(server_overrides(self.config, "dbname"))
        params.setdefault("connect_timeout", str(self.config.get("connect_timeout") or 10))
        params.setdefault("application_name", "dbt-activate")
        params.setdefault("client_encoding", "UTF8")
        return pg.connect(**params)

    def _connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def _set_up_session(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")

    def _login_refused(self, exc: Exception, message: str) -> bool:
        return re.search(r"authentication failed|does not exist|no password supplied", message) is not None

    def _inspect(self, target: SyncTarget) -> TableSchema:
        return inspect_table(self._conn, self.name, self.table_ref(target), target,
                             create=bool(self.config.get("create_table")))

    # -- statements -----------------------------------------------------------------------------

    def _prepare_statements(self, target: SyncTarget, schema: TableSchema) -> None:
        S = _driver().sql
        columns = schema.columns
        cols = [columns[name] for name in schema.written]
        ids = [columns[name] for name in target.identity]
        others = [c for c in cols if c.name not in target.identity]

        def names(of: Sequence[Column], prefix: str = "") -> Any:
            return S.SQL(", ").join(S.SQL(prefix) + S.Identifier(c.name) for c in of)

        def assign(of: Sequence[Column], source: str) -> Any:
            return S.SQL(", ").join(S.SQL("{0} = " + source).format(S.Identifier(c.name)) for c in of)

        def match(left: str, right: str) -> Any:
            return S.SQL(" AND ").join(S.SQL(f"{left}.{{0}} = {right}.{{0}}").format(S.Identifier(c.name))
                                       for c in ids)

        def template(of: Sequence[Column]) -> str:
            return "(" + ", ".join(["%s", *(f"%s::{c.cast}" for c in of)]) + ")"

        fmt = {"t": schema.ref_sql(S), "ord": S.Identifier(ORDINAL), "values": S.SQL(_VALUES),
               "cols": names(cols), "vcols": names(cols, "v."), "ids": names(ids), "tids": names(ids, "t.")}
        if ids:
            # nulls: keep: a NULL keeps the row's value (sql.SqlDestination.null_handling).
            new_value = "{0}" if self._clear_nulls else "COALESCE({0}, t.{1})"
            fmt.update(on=match("t", "v"), ins=match("v", "ins"),
                       excluded=assign(others, new_value.format("EXCLUDED.{0}", "{0}")),
                       set=assign(others or ids[:1], new_value.format("v.{0}", "{0}")), null=assign(others, "NULL"))
        every, by_id = template(cols), template(ids)
        from_all = "FROM (VALUES {values}) AS v ({ord}, {cols})"
        from_ids = "(VALUES {values}) AS v ({ord}, {ids})"
        insert = "INSERT INTO {t} AS t ({cols}) SELECT {vcols} " + from_all
        queries: dict[Operation, tuple[str, str, bool] | None] = {Operation.APPEND: (insert, every, False)}
        if ids:
            conflict = " ON CONFLICT ({ids}) DO UPDATE SET {excluded}" if others else " ON CONFLICT ({ids}) DO NOTHING"
            queries[Operation.UPSERT] = (insert + conflict, every, False)
            queries[Operation.CREATE] = (
                "WITH v ({ord}, {cols}) AS (VALUES {values}), ins AS (INSERT INTO {t} AS t ({cols}) "
                "SELECT {vcols} FROM v ON CONFLICT ({ids}) DO NOTHING RETURNING {tids}) "
                "SELECT v.{ord} FROM v JOIN ins ON {ins}", every, True)
            queries[Operation.UPDATE] = (
                "UPDATE {t} AS t SET {set} " + from_all + " WHERE {on} RETURNING v.{ord}", every, True)
            queries[Operation.DELETE] = ("DELETE FROM {t} AS t USING " + from_ids + " WHERE {on}", by_id, False)
            queries[Operation.CLEAR] = (
                "UPDATE {t} AS t SET {null} FROM " + from_ids + " WHERE {on}", by_id, False) if others else None
        for op, query in queries.items():
            if query is not None:
                text = S.SQL(query[0]).format(**fmt).as_string(self._conn)
                # execute_values splits on %s; a % inside a quoted name must not count as one.
                query = (text.replace("%", "%%").replace(_VALUES, "%s"), query[1], query[2])
            self._statements[op] = query

    # -- dialect hooks --------------------------------------------------------------------------

    def _execute(self, operation: Operation, rows: list[tuple[Any, ...]]) -> Sequence[int]:
        statement = self._statements.get(operation)
        if statement is None:
            if operation in self._statements:
                return ()  # CLEAR with nothing but identity columns: nothing to empty
            raise DestinationError(f"{self._where()}: operation {operation.value!r} needs identity fields")
        query, template, fetch = statement
        with self._conn.cursor() as cur:
            out = _driver().extras.execute_values(cur, query, rows, template=template,
                                                   page_size=len(rows), fetch=fetch)
        return [row[0] for row in out] if fetch else ()

    def _error_message(self, exc: BaseException) -> str:
        return _message(exc)

    def _driver_row_error(self, exc: Exception) -> str | None:
        code = getattr(exc, "pgcode", None)
        if code:
            return _message(exc) if code[:2] in _ROW_CLASSES or code in _ROW_CODES else None
        if isinstance(exc, _driver().ProgrammingError) and "can't adapt" in str(exc):
            return _message(exc)
        return None

    def _retryable(self, exc: Exception) -> bool:
        pg = _driver()
        code = getattr(exc, "pgcode", None) or ""
        return code[:2] in _RETRY_CLASSES or code in _RETRY_CODES or (
            not code and isinstance(exc, (pg.OperationalError, pg.InterfaceError)))
