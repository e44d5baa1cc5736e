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

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from dbt_activate.core.types import Operation, SyncTarget
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
from dbt_activate.destinations.mysql.table import Column, TableSchema, inspect_table, quote
from dbt_activate.destinations.sql import (
    ORDINAL,
    SqlDestination,
    TableRef,
    parse_table_ref,
    server_keys,
    server_overrides,
)
from dbt_activate.errors import ConfigError, DestinationError, Redactor

_ROWS = "__dbt_activate_rows"  # the batch as a derived table, named so no real table clashes with it


class MySQLDestination(SqlDestination[TableSchema]):
    kind = "mysql"
    description = "Rows into a MySQL or MariaDB table: upsert, update, create, append, mirror (delete), clear."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = server_keys(
        dsn="Connection URL (mysql://user:pass@host:3306/database)", port=3306, login="user",
        databases=(ConfigKey("database", str, help="Database of objects given as a bare table name."),),
        container="database", host_default="127.0.0.1")

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
        self._identity: tuple[Column, ...] = ()
        self._identity_fields: tuple[str, ...] = ()
        self._max_statement = 8 * 1024 * 1024  # bytes; set from the server's max_allowed_packet
        try:
            self._params = parse_dsn(str(config["dsn"])) if config.get("dsn") else {}
        except ValueError as exc:
            raise ConfigError(f"invalid dsn: {Redactor(self.secrets())(str(exc))}",
                              location=f"destinations.yml: {name}.dsn") from None
        self._params.update(server_overrides(config, "database"))
        if "port" in self._params:
            self._params["port"] = int(self._params["port"])

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

    def _driver_error(self) -> type[Exception]:
        error: type[Exception] = driver().err.MySQLError
        return error

    def _new_connection(self) -> Any:
        # No default database: every statement names its table's database, so one connection serves
        # `crm.people` and `ext.changes` alike, and `create_table` can create a database the dsn names.
        params = {"host": "127.0.0.1", "port": 3306, "connect_timeout": int(self.config.get("connect_timeout") or 10),
                  **{k: v for k, v in self._params.items() if k != "database"}, "charset": "utf8mb4",
                  "autocommit": False}
        try:
            return driver().connect(**params)
        except (TypeError, ValueError) as exc:  # an unknown dsn query parameter
            raise ConfigError(f"{self._where()}: invalid connection settings: "
                              f"{Redactor(self.secrets())(str(exc))}") from None

    def _connected(self) -> bool:
        return self._conn is not None and bool(self._conn.open)

    def _set_up_session(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT @@SESSION.sql_mode")
            modes = [m for m in str(cur.fetchone()[0] or "").split(",") if m]
            if "STRICT_ALL_TABLES" not in modes:
                modes.append("STRICT_ALL_TABLES")
            cur.execute("SET SESSION sql_mode = %s, time_zone = '+00:00'", (",".join(modes),))
            cur.execute("SELECT @@max_allowed_packet")
            # A statement larger than the server's packet limit drops the connection; keep a margin.
            self._max_statement = max(64 * 1024, int(cur.fetchone()[0]) // 2)

    def _login_refused(self, exc: Exception, message: str) -> bool:
        return error_code(exc) in CONFIG_CODES

    def _inspect(self, target: SyncTarget) -> TableSchema:
        return inspect_table(self._conn, self.name, self.table_ref(target), target,
                             create=bool(self.config.get("create_table")))

    def _prepare_statements(self, target: SyncTarget, schema: TableSchema) -> None:
        self._identity = tuple(schema.columns[f] for f in target.identity)
        self._identity_fields = target.identity

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
            sent = cols if operation is Operation.UPDATE else ids
            derived = derived_table([ORDINAL, *(c.name for c in sent)], rows)
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
        derived = derived_table([ORDINAL, *(c.name for c in self._identity)], keyed)
        on = " AND ".join(f"t.{quote(c.name)} = v.{quote(c.name)}".replace("%", "%%") for c in self._identity)
        cur.execute(f"SELECT v.{quote(ORDINAL)} FROM ({derived}) AS v JOIN {self._schema.sql.replace('%', '%%')} AS t "
                    f"ON {on} FOR UPDATE", flat(keyed))
        return {int(r[0]) for r in cur.fetchall()}

    # -- dialect hooks --------------------------------------------------------------------------

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

    def _error_message(self, exc: BaseException) -> str:
        return error_message(exc)

    def _driver_row_error(self, exc: Exception) -> str | None:
        return error_message(exc) if error_code(exc) in ROW_CODES else None

    def _retryable(self, exc: Exception) -> bool:
        my = driver()
        return error_code(exc) in RETRY_CODES or isinstance(exc, my.err.InterfaceError) or (
            isinstance(exc, my.err.OperationalError) and self._conn is not None and not self._conn.open)
