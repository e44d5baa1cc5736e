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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote

from dbt_activate.core.types import Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.postgres.table import Column, TableSchema, column_converter, inspect_table
from dbt_activate.destinations.sql import SqlDestination
from dbt_activate.errors import ConfigError, DestinationError, Redactor, RetryableDestinationError

_INSTALL_HINT = "pip install 'dbt-activate[postgres]' (or pip install psycopg2-binary)"
_ORD = "__dbt_activate_ord"
_VALUES = "__dbt_activate_values__"  # stands for the VALUES list until the query text is final
_SAVEPOINT = {
    "set": "SAVEPOINT dbt_activate_rows",
    "rollback": "ROLLBACK TO SAVEPOINT dbt_activate_rows; RELEASE SAVEPOINT dbt_activate_rows",
    "release": "RELEASE SAVEPOINT dbt_activate_rows",
}
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


class PostgresDestination(SqlDestination):
    kind = "postgres"
    description = "Rows into a PostgreSQL table: upsert, update, create, append, mirror (delete), clear."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("dsn", str, secret=True,
                  help="libpq connection string or URL (postgresql://user:pass@host:5432/db). "
                       "host/port/user/password/dbname, when given, override its parts."),
        ConfigKey("host", str, help="Server host (when no dsn, or to override it)."),
        ConfigKey("port", (int, str), help="Server port; default 5432."),
        ConfigKey("user", str, help="Login role."),
        ConfigKey("password", str, secret=True, help="Password of the login role."),
        ConfigKey("dbname", str, help="Database name."),
        ConfigKey("schema", str, default="public", help="Schema of objects given as a bare table name."),
        ConfigKey("create_table", bool, default=False,
                  help="Create the schema, the table (types from the warehouse, primary key on the identity) "
                       "and missing columns instead of failing."),
        ConfigKey("connect_timeout", int, default=10, help="Seconds to wait for a connection."),
    )
    modes = frozenset(Mode)
    batch_size = 1000
    max_concurrency = 1

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
        self._conn: Any = None
        self._schema: TableSchema | None = None
        self._statements: dict[Operation, tuple[str, str, bool] | None] = {}
        self._converters: dict[Operation, list[tuple[str, Callable[[Any], Any]]]] = {}

    def secrets(self) -> list[str]:
        found = super().secrets()
        dsn = str(self.config.get("dsn") or "")
        # The password inside a DSN can surface on its own (e.g. in a libpq parse error).
        for pattern in (r"password\s*=\s*'((?:[^'\\]|\\.)*)'", r"password\s*=\s*([^\s']+)",
                        r"^[a-z][a-z0-9+.-]*://[^:/@]*:([^/]*)@"):
            match = re.search(pattern, dsn)
            if match and match.group(1):
                found.extend({match.group(1), unquote(match.group(1))})  # URLs percent-encode it
        return found

    # -- connection -----------------------------------------------------------------------------

    def _where(self) -> str:
        table = f", table {self._schema.ref}" if self._schema else ""
        return f"postgres destination {self.name!r}{table}"

    def _connect(self) -> None:
        pg = _driver()
        redact = Redactor(self.secrets())
        params: dict[str, Any] = {}
        try:
            if self.config.get("dsn"):
                params.update(pg.extensions.parse_dsn(str(self.config["dsn"])))
        except pg.ProgrammingError as exc:
            raise ConfigError(f"{self._where()}: invalid dsn: {redact(_message(exc))}") from None
        for key in ("host", "port", "user", "password", "dbname"):
            if self.config.get(key) not in (None, ""):
                params[key] = str(self.config[key])
        params.setdefault("connect_timeout", str(self.config.get("connect_timeout") or 10))
        params.setdefault("application_name", "dbt-activate")
        params.setdefault("client_encoding", "UTF8")
        try:
            conn = pg.connect(**params)
        except pg.Error as exc:
            message = redact(_message(exc))
            if re.search(r"authentication failed|does not exist|no password supplied", message):
                raise ConfigError(f"{self._where()}: cannot connect: {message}") from None
            raise RetryableDestinationError(f"{self._where()}: cannot connect: {message}") from None
        try:
            with conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
            conn.commit()
        except pg.Error as exc:
            conn.close()
            raise RetryableDestinationError(f"{self._where()}: {redact(_message(exc))}") from None
        self._conn = conn

    def _open_blocking(self, target: SyncTarget) -> None:
        pg = _driver()
        if self._conn is None or self._conn.closed:
            self._connect()
        try:
            self._schema = inspect_table(self._conn, self.name, self.table_ref(target), target,
                                         create=bool(self.config.get("create_table")))
        except Exception as exc:
            self._abort()
            if isinstance(exc, pg.Error):
                raise self._batch_error(exc) from exc
            raise
        self._prepare_statements(pg, target)

    def _close_blocking(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    # -- statements -----------------------------------------------------------------------------

    def _prepare_statements(self, pg: Any, target: SyncTarget) -> None:
        assert self._schema is not None
        S = pg.sql
        columns = self._schema.columns
        cols = [columns[name] for name in self._schema.written]
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

        fmt = {"t": self._schema.ref_sql(S), "ord": S.Identifier(_ORD), "values": S.SQL(_VALUES),
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
        for op in Operation:
            of = ids if op in (Operation.DELETE, Operation.CLEAR) else cols
            self._converters[op] = [(c.name, column_converter(c)) for c in of]

    # -- dialect hooks --------------------------------------------------------------------------

    def _prepare(self, operation: Operation, ordinal: int, record: Record) -> tuple[Any, ...]:
        values = record.values
        return (ordinal, *[convert(values.get(name)) for name, convert in self._converters[operation]])

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

    def _begin(self) -> None:
        if self._conn is None or self._conn.closed:
            self._connect()

    def _commit(self) -> None:
        self._conn.commit()

    def _abort(self) -> None:
        if self._conn is None:
            return
        try:
            if not self._conn.closed:
                self._conn.rollback()
        except Exception:  # the connection is unusable: drop it, the next batch reconnects
            self._conn.close()
        if self._conn.closed:
            self._conn = None

    def _savepoint(self, action: str) -> None:
        with self._conn.cursor() as cur:
            cur.execute(_SAVEPOINT[action])

    def _row_error(self, exc: Exception) -> str | None:
        pg = _driver()
        code = getattr(exc, "pgcode", None)
        if code:
            return _message(exc) if code[:2] in _ROW_CLASSES or code in _ROW_CODES else None
        if isinstance(exc, pg.ProgrammingError) and "can't adapt" in str(exc):
            return _message(exc)
        if isinstance(exc, (ValueError, TypeError)):  # raised while adapting one row's values
            return str(exc)
        return None

    def _batch_error(self, exc: Exception) -> DestinationError:
        pg = _driver()
        code = getattr(exc, "pgcode", None) or ""
        message = f"{self._where()}: {_message(exc)}"
        if code[:2] in _RETRY_CLASSES or code in _RETRY_CODES or (
                not code and isinstance(exc, (pg.OperationalError, pg.InterfaceError))):
            if self._conn is not None and self._conn.closed:
                self._conn = None
            return RetryableDestinationError(message)
        return DestinationError(message)

