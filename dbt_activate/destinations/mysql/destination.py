"""The ``mysql`` destination: rows into a MySQL or MariaDB table (pymysql, one transaction per batch).

The batch flow (savepoints, bisection of refused rows, rounds for repeated identities) is the
shared one of ``sql.py``; this module is the dialect. APPEND is one multi-row ``INSERT``, and so
is UPSERT (``ON DUPLICATE KEY UPDATE``) when the identity is the table's only unique key; with
another unique key (or none on the identity) an upsert updates the rows it finds and inserts the
others, because ON DUPLICATE KEY would merge a row into a record found by that other key and hand
it the row's identity. UPDATE, CREATE, DELETE and CLEAR join the table with the batch sent as a
derived table (``SELECT … UNION ALL SELECT …``) that carries each row's position in the batch, so
the database's own comparison (collation, type conversion) decides which records exist, and
UPDATE and CREATE report exactly the rows they touched. Statements are split to stay under the
server's ``max_allowed_packet``.

The session runs in strict mode (``STRICT_ALL_TABLES`` is added to the server's ``sql_mode``), so a
value that does not fit its column is an error that rejects that row, never a silent truncation,
and in UTC (``time_zone = '+00:00'``): aware datetimes are written as their UTC wall time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from dbt_activate.core.types import Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.mysql.driver import (
    CONFIG_CODES,
    RETRY_CODES,
    ROW_CODES,
    derived_table,
    driver,
    error_code,
    error_message,
    flat,
    parse_dsn,
    split_rows,
)
from dbt_activate.destinations.mysql.table import Column, TableSchema, column_converter, inspect_table, quote
from dbt_activate.destinations.sql import SqlDestination, TableRef, parse_table_ref
from dbt_activate.errors import ConfigError, DestinationError, Redactor, RetryableDestinationError

_ORD = "__dbt_activate_ord"
_ROWS = "__dbt_activate_rows"  # the batch as a derived table, named so no real table clashes with it
_SAVEPOINT = {
    "set": "SAVEPOINT dbt_activate_rows",
    "rollback": "ROLLBACK TO SAVEPOINT dbt_activate_rows",
    "release": "RELEASE SAVEPOINT dbt_activate_rows",
}


class MySQLDestination(SqlDestination):
    kind = "mysql"
    description = "Rows into a MySQL or MariaDB table: upsert, update, create, append, mirror (delete), clear."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("dsn", str, secret=True,
                  help="Connection URL (mysql://user:pass@host:3306/database). "
                       "host/port/user/password/database, when given, override its parts."),
        ConfigKey("host", str, help="Server host (when no dsn, or to override it); default 127.0.0.1."),
        ConfigKey("port", (int, str), help="Server port; default 3306."),
        ConfigKey("user", str, help="Login user."),
        ConfigKey("password", str, secret=True, help="Password of the login user."),
        ConfigKey("database", str, help="Database of objects given as a bare table name."),
        ConfigKey("create_table", bool, default=False,
                  help="Create the database, the table (types from the warehouse, primary key on the identity) "
                       "and missing columns instead of failing."),
        ConfigKey("connect_timeout", int, default=10, help="Seconds to wait for a connection."),
    )
    modes = frozenset(Mode)
    batch_size = 1000
    max_concurrency = 1

    planned_statements: ClassVar[Mapping[Operation, str]] = {
        Operation.UPSERT: "INSERT … ON DUPLICATE KEY UPDATE (or UPDATE … JOIN, then INSERT)",
        Operation.CREATE: "SELECT existing ({ids}) … FOR UPDATE; INSERT the others",
        Operation.APPEND: "INSERT",
        Operation.UPDATE: "UPDATE … JOIN (batch) ON ({ids})",
        Operation.DELETE: "DELETE … JOIN (batch) ON ({ids})",
        Operation.CLEAR: "UPDATE … JOIN (batch) ON ({ids}) SET <non-identity fields> = NULL",
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._conn: Any = None
        self._schema: TableSchema | None = None
        self._identity: tuple[Column, ...] = ()
        self._identity_fields: tuple[str, ...] = ()
        self._max_statement = 8 * 1024 * 1024  # bytes; set from the server's max_allowed_packet
        self._converters: dict[Operation, list[tuple[str, Callable[[Any], Any]]]] = {}
        try:
            self._params = parse_dsn(str(config["dsn"])) if config.get("dsn") else {}
        except ValueError as exc:
            raise ConfigError(f"invalid dsn: {Redactor(self.secrets())(str(exc))}",
                              location=f"destinations.yml: {name}.dsn") from None
        for key in ("host", "port", "user", "password", "database"):
            if config.get(key) not in (None, ""):
                self._params[key] = int(config[key]) if key == "port" else str(config[key])

    def secrets(self) -> list[str]:
        found = super().secrets()
        parts = urlsplit(str(self.config.get("dsn") or ""))
        if parts.password:
            found.extend({parts.password, unquote(parts.password)})  # URLs percent-encode it
        return found

    def table_ref(self, target: SyncTarget) -> TableRef:
        """``database.table``, or a bare ``table`` in the configured (or dsn) database."""
        database = str(self._params.get("database") or "")
        try:
            ref = parse_table_ref(target.object, database)
        except ConfigError as exc:
            raise ConfigError(f"mysql destination {self.name!r}, sync {target.sync_name!r}: {exc}") from None
        if not ref.schema:
            raise ConfigError(f"mysql destination {self.name!r}, sync {target.sync_name!r}: object "
                              f"{target.object!r} names no database; write 'database.table' or set "
                              f"`database` on the destination")
        return ref

    # -- connection -----------------------------------------------------------------------------

    def _where(self) -> str:
        table = f", table {self._schema.ref}" if self._schema else ""
        return f"mysql destination {self.name!r}{table}"

    def _connect(self) -> None:
        my = driver()
        redact = Redactor(self.secrets())
        # No default database: every statement names its table's database, so one connection serves
        # `crm.people` and `ext.changes` alike, and `create_table` can create a database the dsn names.
        params = {"host": "127.0.0.1", "port": 3306, "connect_timeout": int(self.config.get("connect_timeout") or 10),
                  **{k: v for k, v in self._params.items() if k != "database"}, "charset": "utf8mb4",
                  "autocommit": False}
        try:
            conn = my.connect(**params)
        except my.err.MySQLError as exc:
            message = redact(error_message(exc))
            if error_code(exc) in CONFIG_CODES:
                raise ConfigError(f"{self._where()}: cannot connect: {message}") from None
            raise RetryableDestinationError(f"{self._where()}: cannot connect: {message}") from None
        except (TypeError, ValueError) as exc:  # an unknown dsn query parameter
            raise ConfigError(f"{self._where()}: invalid connection settings: {redact(str(exc))}") from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@SESSION.sql_mode")
                modes = [m for m in str(cur.fetchone()[0] or "").split(",") if m]
                if "STRICT_ALL_TABLES" not in modes:
                    modes.append("STRICT_ALL_TABLES")
                cur.execute("SET SESSION sql_mode = %s, time_zone = '+00:00'", (",".join(modes),))
                cur.execute("SELECT @@max_allowed_packet")
                # A statement larger than the server's packet limit drops the connection; keep a margin.
                self._max_statement = max(64 * 1024, int(cur.fetchone()[0]) // 2)
            conn.commit()
        except my.err.MySQLError as exc:
            conn.close()
            raise RetryableDestinationError(f"{self._where()}: {redact(error_message(exc))}") from None
        self._conn = conn

    def _open_blocking(self, target: SyncTarget) -> None:
        my = driver()
        if self._conn is None or not self._conn.open:
            self._connect()
        try:
            self._schema = inspect_table(self._conn, self.name, self.table_ref(target), target,
                                         create=bool(self.config.get("create_table")))
        except Exception as exc:
            self._abort()
            if isinstance(exc, my.err.MySQLError):
                raise self._batch_error(exc) from exc
            raise
        columns = self._schema.columns
        self._identity = tuple(columns[f] for f in target.identity)
        self._identity_fields = target.identity
        for op in Operation:
            names = target.identity if op in (Operation.DELETE, Operation.CLEAR) else self._schema.written
            self._converters[op] = [(f, column_converter(columns[f])) for f in names]

    def _close_blocking(self) -> None:
        if self._conn is not None and self._conn.open:
            self._conn.close()
        self._conn = None

    # -- statements -----------------------------------------------------------------------------

    def _statement(self, operation: Operation, rows: list[tuple[Any, ...]]) -> tuple[str, list[Any]]:
        """The multi-row statement of ``operation`` for ``rows`` (ordinal first) and its parameters."""
        assert self._schema is not None
        table, columns = self._schema.sql.replace("%", "%%"), self._schema.columns
        cols = [columns[f] for f in self._schema.written]
        ids, id_names = self._identity, {c.name for c in self._identity}
        others = [c for c in cols if c.name not in id_names]

        def q(column: Column) -> str:
            return quote(column.name).replace("%", "%%")

        def on(left: str, right: str) -> str:
            return " AND ".join(f"{left}.{q(c)} = {right}.{q(c)}" for c in ids)

        def kept(new: str, current: str) -> str:
            """nulls: keep: a NULL keeps the row's value (sql.SqlDestination.null_handling)."""
            return new if self._clear_nulls else f"COALESCE({new}, {current})"

        if operation in (Operation.UPSERT, Operation.APPEND, Operation.CREATE):
            values = ", ".join(["(" + ", ".join(["%s"] * len(cols)) + ")"] * len(rows))
            text = f"INSERT INTO {table} ({', '.join(q(c) for c in cols)}) VALUES {values}"
            if operation is Operation.UPSERT:
                assigned = others or ids[:1]
                text += " ON DUPLICATE KEY UPDATE " + ", ".join(f"{q(c)} = {kept(f'VALUES({q(c)})', q(c))}"
                                                                 for c in assigned)
            return text, [v for row in rows for v in row[1:]]
        if operation in (Operation.UPDATE, Operation.DELETE, Operation.CLEAR):
            derived = derived_table([_ORD, *(c.name for c in (cols if operation is Operation.UPDATE else ids))], rows)
            if operation is Operation.DELETE:
                # No alias on the deleted table: MariaDB resolves `DELETE t … AS t` against the default
                # database ("No database selected" without one), so the table is named in full.
                rows_alias = quote(_ROWS).replace("%", "%%")
                return (f"DELETE {table} FROM {table} JOIN ({derived}) AS {rows_alias} ON {on(table, rows_alias)}",
                        flat(rows))
            assign = (", ".join(f"t.{q(c)} = {kept(f'v.{q(c)}', f't.{q(c)}')}" for c in others or ids[:1])
                      if operation is Operation.UPDATE
                      else ", ".join(f"t.{q(c)} = NULL" for c in others))
            return f"UPDATE {table} AS t JOIN ({derived}) AS v ON {on('t', 'v')} SET {assign}", flat(rows)
        raise DestinationError(f"{self._where()}: unknown operation {operation.value!r}")

    def _existing(self, cur: Any, rows: list[tuple[Any, ...]]) -> set[int]:
        """Ordinals of ``rows`` whose identity is in the table, compared by the database."""
        assert self._schema is not None
        # UPDATE and CREATE rows are (ordinal, *values of ``written``); keep the identity values.
        at = [1 + self._schema.written.index(f) for f in self._identity_fields]
        keyed = [(row[0], *(row[i] for i in at)) for row in rows]
        derived = derived_table([_ORD, *(c.name for c in self._identity)], keyed)
        on = " AND ".join(f"t.{quote(c.name)} = v.{quote(c.name)}".replace("%", "%%") for c in self._identity)
        cur.execute(f"SELECT v.{quote(_ORD)} FROM ({derived}) AS v JOIN {self._schema.sql.replace('%', '%%')} AS t "
                    f"ON {on} FOR UPDATE", flat(keyed))
        return {int(r[0]) for r in cur.fetchall()}

    # -- dialect hooks --------------------------------------------------------------------------

    def _prepare(self, operation: Operation, ordinal: int, record: Record) -> tuple[Any, ...]:
        values = record.values
        return (ordinal, *[convert(values.get(name)) for name, convert in self._converters[operation]])

    def _execute(self, operation: Operation, rows: list[tuple[Any, ...]]) -> Sequence[int]:
        if not self._identity and operation is not Operation.APPEND:
            raise DestinationError(f"{self._where()}: operation {operation.value!r} needs identity fields")
        assert self._schema is not None
        if operation is Operation.CLEAR and len(self._identity) == len(self._schema.written):
            return ()  # nothing but identity columns: nothing to empty
        touched: set[int] = set()
        with self._conn.cursor() as cur:
            for part in split_rows(rows, self._max_statement):
                if operation is Operation.UPSERT and not self._schema.keyed_by_identity:
                    # Another unique key (or none on the identity): update the rows found, insert the rest.
                    existing = self._existing(cur, part)
                    for op, of in ((Operation.UPDATE, [r for r in part if r[0] in existing]),
                                   (Operation.APPEND, [r for r in part if r[0] not in existing])):
                        if of:
                            cur.execute(*self._statement(op, of))
                    continue
                if operation in (Operation.UPDATE, Operation.CREATE):
                    existing = self._existing(cur, part)
                    if operation is Operation.CREATE:
                        part = [row for row in part if row[0] not in existing]
                        touched.update(int(row[0]) for row in part)
                    else:
                        touched.update(existing)
                if part:
                    cur.execute(*self._statement(operation, part))
        return sorted(touched)

    def _begin(self) -> None:
        if self._conn is None or not self._conn.open:
            self._connect()

    def _commit(self) -> None:
        self._conn.commit()

    def _abort(self) -> None:
        if self._conn is None:
            return
        try:
            if self._conn.open:
                self._conn.rollback()
        except Exception:  # the connection is unusable: drop it, the next batch reconnects
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            return
        if not self._conn.open:
            self._conn = None

    def _savepoint(self, action: str) -> None:
        with self._conn.cursor() as cur:
            cur.execute(_SAVEPOINT[action])
            if action == "rollback":
                cur.execute(_SAVEPOINT["release"])

    def _row_error(self, exc: Exception) -> str | None:
        my = driver()
        if isinstance(exc, my.err.MySQLError):
            return error_message(exc) if error_code(exc) in ROW_CODES else None
        if isinstance(exc, (ValueError, TypeError)):  # raised while escaping one row's values
            return str(exc)
        return None

    def _batch_error(self, exc: Exception) -> DestinationError:
        my = driver()
        message = f"{self._where()}: {Redactor(self.secrets())(error_message(exc))}"
        lost = isinstance(exc, my.err.InterfaceError) or (
            isinstance(exc, my.err.OperationalError) and self._conn is not None and not self._conn.open)
        if error_code(exc) in RETRY_CODES or lost:
            if self._conn is not None and not self._conn.open:
                self._conn = None
            return RetryableDestinationError(message)
        return DestinationError(message)
