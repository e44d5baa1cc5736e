"""What every SQL database destination shares: table names, warehouse types, the batch flow.

A batch is written in one transaction. The fast path sends each operation as one multi-row
statement. When the database refuses it for a reason that belongs to some rows (a value that does
not fit its column, a NOT NULL or unique violation), the statement is rolled back to a savepoint
and the rows are bisected, each half under its own savepoint, until every refused row stands alone
and is reported as rejected with the database's message; the rest of the batch is committed. A
batch with k bad rows of n costs about 2·k·log2(n) extra statements instead of n.

Records whose identity repeats inside a batch are written in successive rounds of the same
transaction (last one wins), because one statement may not touch a row twice
(``ON CONFLICT DO UPDATE``) or would count a single insert twice (``ON CONFLICT DO NOTHING``).

The connection's life is shared too: connect (a refused login is a config error, anything else a
retry), check the table, roll back and drop a broken connection so the next batch reconnects, map
driver errors to the row or to the batch. Dialects (``postgres``, ``mysql``) implement the hooks at
the bottom of ``SqlDestination`` (the driver, its error codes, the statements); they run on the
destination's own thread (see ``blocking.py``).
"""

from __future__ import annotations

import abc
import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import unquote

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, Record, SyncTarget
from dbt_activate.destinations.base import ConfigKey, Destination
from dbt_activate.destinations.blocking import BlockingWorker
from dbt_activate.errors import ConfigError, DestinationError, Redactor, RetryableDestinationError

ROW_NOT_FOUND = "no record with this identity"
ROW_EXISTS = "a record with this identity already exists"

# Operations whose statement reports the rows it touched; the others are skipped with this reason.
_UNREPORTED_REASON = {Operation.UPDATE: ROW_NOT_FOUND, Operation.CREATE: ROW_EXISTS}
# The column that carries each row's position in the batch through a statement (RETURNING, joins).
ORDINAL = "__dbt_activate_ord"
# One savepoint guards the rows of each statement; both dialects speak the SQL standard's words.
_SAVEPOINT = {
    "set": ("SAVEPOINT dbt_activate_rows",),
    "rollback": ("ROLLBACK TO SAVEPOINT dbt_activate_rows", "RELEASE SAVEPOINT dbt_activate_rows"),
    "release": ("RELEASE SAVEPOINT dbt_activate_rows",),
}
# The password inside a DSN, which can surface on its own (e.g. in a driver's parse error): libpq
# keywords (quoted or bare), or the user information of a URL.
_DSN_PASSWORDS = (re.compile(r"password\s*=\s*'((?:[^'\\]|\\.)*)'"), re.compile(r"password\s*=\s*([^\s']+)"),
                  re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@]*:([^/]*)@", re.IGNORECASE))

# A name part: "double quoted" (PostgreSQL), `backquoted` (MySQL) or bare.
_PART = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|[^"`.\s][^"`.]*)'
_TABLE_RE = re.compile(rf"^(?:({_PART})\.)?({_PART})$")


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    def missing(self, where: str, destination: str, hint: str = "") -> ConfigError:
        """The table a sync writes to is not there (``hint``: a table whose name differs only in case)."""
        return ConfigError(f"{where}: table {self} does not exist{hint}; create it, or set create_table: true on "
                           f"destination {destination!r} to let dbt-activate create it")

    def missing_columns(self, where: str, destination: str, missing: Sequence[str]) -> ConfigError:
        """Fields the sync writes have no column in the table."""
        listed = ", ".join(repr(f) for f in missing)
        return ConfigError(f"{where}: table {self} has no column {listed}; add it, change the sync's fields, "
                           f"or set create_table: true on destination {destination!r}")


def parse_table_ref(obj: str, default_schema: str) -> TableRef:
    """``schema.table`` or ``table``; quotes (``"a.b".c``, ```a.b`.c``) keep a dot inside a name.

    Names are taken exactly as written (case included): the destination quotes every identifier.
    """
    match = _TABLE_RE.match(obj.strip())
    if not match:
        raise ConfigError(f"object {obj!r} is not a table name: use 'schema.table' or 'table'")
    schema, name = (_unquote(p) if p else None for p in match.groups())
    assert name is not None  # the regex requires the table part
    return TableRef(schema or default_schema, name)


def _unquote(part: str) -> str:
    if part[:1] in ('"', "`"):
        return part[1:-1].replace(part[0] * 2, part[0])
    return part.strip()


@dataclass(frozen=True)
class WarehouseType:
    """A warehouse column type reduced to a family a destination can map to its own DDL."""

    family: str  # smallint integer bigint hugeint decimal double real boolean date timestamp
    # timestamptz time timetz interval uuid json text binary array
    precision: int | None = None
    scale: int | None = None
    element: WarehouseType | None = None  # for arrays


_FAMILY_NAMES: dict[str, tuple[str, ...]] = {
    "smallint": ("smallint", "int2", "tinyint", "int1", "utinyint", "byteint", "short"),
    "integer": ("integer", "int", "int4", "signed", "usmallint", "mediumint"),
    "bigint": ("bigint", "int8", "long", "uinteger", "int64"),
    "hugeint": ("hugeint", "int128", "ubigint", "uhugeint", "varint", "bignumeric", "bigdecimal"),
    "decimal": ("numeric", "decimal", "number", "dec"),
    "double": ("double precision", "double", "float8", "float", "float64"),
    "real": ("real", "float4"),
    "boolean": ("boolean", "bool", "logical"),
    "date": ("date",),
    "timestamp": ("timestamp", "timestamp without time zone", "datetime", "timestamp_ntz", "timestamp_ns",
                  "timestamp_ms", "timestamp_s", "timestamp_us"),
    "timestamptz": ("timestamp with time zone", "timestamptz", "timestamp_tz", "timestamp_ltz"),
    "time": ("time", "time without time zone"),
    "timetz": ("time with time zone", "timetz"),
    "interval": ("interval",),
    "uuid": ("uuid",),
    "json": ("json", "jsonb", "super", "variant", "object", "struct", "map", "union", "record"),
    "binary": ("bytea", "blob", "binary", "varbinary", "bytes"),
}
_FAMILY_OF = {name: family for family, names in _FAMILY_NAMES.items() for name in names}
_DECIMAL_RE = re.compile(r"^(?:numeric|decimal|number|dec)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")


def warehouse_type(data_type: str) -> WarehouseType:
    """Classify the type string a dbt adapter reports ('numeric(10,2)', 'VARCHAR', 'INTEGER[]').

    Anything unknown (and every string type, whatever its length) is ``text``: the destination
    column must accept every value the warehouse can hold.
    """
    text = " ".join(data_type.strip().lower().split())
    array = re.match(r"^(.*\S)\s*\[\d*\]$", text)
    if array:
        return WarehouseType("array", element=warehouse_type(array.group(1)))
    if text in ("array", "list") or text.startswith(("array<", "list(")):
        return WarehouseType("array")
    decimal = _DECIMAL_RE.match(text)
    if decimal:
        precision, scale = decimal.groups()
        return WarehouseType("decimal", int(precision), int(scale or 0))
    base = " ".join(re.sub(r"\(.*\)|<.*>", " ", text).split())  # varchar(255), timestamp(6) with time zone
    return WarehouseType(_FAMILY_OF.get(base, "text"))


def server_keys(*, dsn: str, port: int, login: str, databases: tuple[ConfigKey, ...], container: str,
                host_default: str = "") -> tuple[ConfigKey, ...]:
    """The config keys of a database server destination, in its dialect's words: ``dsn`` (a
    connection string, e.g. a URL) whose parts ``host``, ``port``, ``user``, ``password`` and the
    ``databases`` keys override, ``create_table`` (which also creates the ``container`` of a table:
    a schema, a database), ``connect_timeout``."""
    named = "/".join(("host", "port", "user", "password", databases[0].name))
    host_note = f"; default {host_default}" if host_default else ""
    return (
        ConfigKey("dsn", str, secret=True, help=f"{dsn}. {named}, when given, override its parts."),
        ConfigKey("host", str, help=f"Server host (when no dsn, or to override it){host_note}."),
        ConfigKey("port", (int, str), help=f"Server port; default {port}."),
        ConfigKey("user", str, help=f"Login {login}."),
        ConfigKey("password", str, secret=True, help=f"Password of the login {login}."),
        *databases,
        ConfigKey("create_table", bool, default=False,
                  help=f"Create the {container}, the table (types from the warehouse, primary key on the identity) "
                       "and missing columns instead of failing."),
        ConfigKey("connect_timeout", int, default=10, help="Seconds to wait for a connection."),
    )


def server_overrides(config: Mapping[str, Any], database: str) -> dict[str, str]:
    """The connection parts given as keys of their own (they override the dsn's), as text."""
    return {key: str(config[key]) for key in ("host", "port", "user", "password", database)
            if config.get(key) not in (None, "")}


def dsn_passwords(dsn: str) -> list[str]:
    """The password written inside ``dsn``, as written and percent-decoded (URLs encode it)."""
    found: list[str] = []
    for pattern in _DSN_PASSWORDS:
        match = pattern.search(dsn)
        if match and match.group(1):
            found.extend({match.group(1), unquote(match.group(1))})
    return found


def written_fields(target: SyncTarget) -> tuple[str, ...]:
    """The columns a sync writes: its mapped fields, then identity fields not among them."""
    return (*target.field_names, *(f for f in target.identity if f not in target.field_names))


ColumnT = TypeVar("ColumnT")


@dataclass(frozen=True)
class TableSchema(abc.ABC, Generic[ColumnT]):
    """The target table as the dialect found (or created) it."""

    ref: TableRef
    columns: dict[str, ColumnT]  # by destination field name
    written: tuple[str, ...]  # written_fields(target)

    @abc.abstractmethod
    def converter(self, field: str) -> Callable[[Any], Any]:
        """Turn a warehouse value of ``field`` into what the driver sends for its column; RowRejected
        when the value cannot be stored there."""


SchemaT = TypeVar("SchemaT", bound=TableSchema[Any])


class RowRejected(Exception):
    """A record refused before anything is sent (e.g. NaN for an integer column)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class _Row:
    key: str
    ordinal: int  # position in the batch; statements report touched rows by it
    identity: tuple[Any, ...]
    values: tuple[Any, ...]


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class SqlDestination(Destination, Generic[SchemaT]):
    """Base of SQL destinations: config ``schema``, object ``schema.table``, the batch flow, the
    connection's life (one connection, reopened after a failure) and the mapping of driver errors."""

    default_schema: ClassVar[str] = "public"
    batch_size = 1000  # rows per transaction: one multi-row statement per operation
    # nulls: keep updates a column to COALESCE(new, current), so a NULL never replaces a value;
    # a new row gets NULL. nulls: clear writes the NULL.
    null_handling: ClassVar[Nulls] = Nulls.OWN
    # What each operation runs, for ``plan``; ``{ids}`` is the identity's columns.
    planned_statements: ClassVar[Mapping[Operation, str]] = {}

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._worker = BlockingWorker(name)
        self._opened = False
        self._clear_nulls = False  # set by open() from the sync's `nulls`
        self._conn: Any = None  # the driver's connection, None until connected and after it broke
        self._schema: SchemaT | None = None
        self._converters: dict[Operation, list[tuple[str, Callable[[Any], Any]]]] = {}

    def secrets(self) -> list[str]:
        return [*super().secrets(), *dsn_passwords(str(self.config.get("dsn") or ""))]

    # -- the seam -------------------------------------------------------------------------------

    def table_ref(self, target: SyncTarget) -> TableRef:
        schema = str(self.config.get("schema") or self.default_schema)
        try:
            return parse_table_ref(target.object, schema)
        except ConfigError as exc:
            raise ConfigError(f"{self.kind} destination {self.name!r}, sync {target.sync_name!r}: {exc}") from None

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        summary = self.planned_statements[batch.operation].format(ids=", ".join(target.identity))
        return {"table": str(self.table_ref(target)), "operation": batch.operation.value,
                "statement": summary, "rows": [dict(r.values) for r in batch.records]}

    def check_target(self, target: SyncTarget) -> None:
        self.table_ref(target)
        if target.mode is not Mode.APPEND and not target.identity:
            raise ConfigError(f"{self.kind} destination {self.name!r}, sync {target.sync_name!r}: mode "
                              f"{target.mode.value!r} needs identity fields (primary_key or match)")

    async def open(self, target: SyncTarget) -> None:
        self.check_target(target)
        self._clear_nulls = self.clears_nulls(target)
        await self._worker.run(self._open_blocking, target)
        self._opened = True

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if not self._opened:
            await self.open(target)
        return await self._worker.run(self._write_blocking, target, batch)

    async def close(self) -> None:
        await self._worker.shutdown(self._close_blocking)
        self._opened = False

    # -- the batch flow (worker thread) ---------------------------------------------------------

    def _write_blocking(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        rows = self._rows(target, batch, result)
        if not rows:
            return result
        touched: set[int] = set()
        self._begin()
        try:
            for round_rows in self._rounds(batch.operation, rows):
                self._apply(batch.operation, round_rows, result, touched)
            self._commit()
        except Exception as exc:
            self._abort()
            if isinstance(exc, DestinationError):
                raise
            raise self._batch_error(exc) from exc
        reason = _UNREPORTED_REASON.get(batch.operation)
        if reason:
            for row in rows:
                if row.ordinal not in touched and row.key not in result.rejected:
                    result.skipped[row.key] = reason
        return result

    def _rows(self, target: SyncTarget, batch: Batch, result: BatchResult) -> list[_Row]:
        needs_identity = batch.operation is not Operation.APPEND
        rows: list[_Row] = []
        for ordinal, record in enumerate(batch.records):
            identity = tuple(record.values.get(f) for f in target.identity)
            if needs_identity and None in identity:
                missing = [f for f, v in zip(target.identity, identity, strict=True) if v is None]
                result.rejected[record.key] = f"identity field {missing[0]!r} is null"
                continue
            try:
                values = self._prepare(batch.operation, ordinal, record)
            except RowRejected as exc:
                result.rejected[record.key] = exc.reason
                continue
            rows.append(_Row(record.key, ordinal, tuple(_hashable(v) for v in identity), values))
        return rows

    @staticmethod
    def _rounds(operation: Operation, rows: list[_Row]) -> list[list[_Row]]:
        if operation is Operation.APPEND:
            return [rows]
        rounds: list[list[_Row]] = []
        seen: dict[tuple[Any, ...], int] = {}
        for row in rows:
            n = seen.get(row.identity, 0)
            seen[row.identity] = n + 1
            if n == len(rounds):
                rounds.append([])
            rounds[n].append(row)
        return rounds

    def _apply(self, operation: Operation, rows: Sequence[_Row], result: BatchResult, touched: set[int]) -> None:
        self._savepoint("set")
        try:
            reported = self._execute(operation, [row.values for row in rows])
        except Exception as exc:
            reason = self._row_error(exc)
            if reason is None:
                raise
            self._savepoint("rollback")
            if len(rows) == 1:
                result.rejected[rows[0].key] = reason
                return
            middle = len(rows) // 2
            self._apply(operation, rows[:middle], result, touched)
            self._apply(operation, rows[middle:], result, touched)
            return
        self._savepoint("release")
        touched.update(reported)

    # -- the connection (worker thread) --------------------------------------------------------

    def _where(self) -> str:
        table = f", table {self._schema.ref}" if self._schema else ""
        return f"{self.kind} destination {self.name!r}{table}"

    def _connect(self) -> None:
        errors = self._driver_error()
        redact = Redactor(self.secrets())
        try:
            conn = self._new_connection()
        except errors as exc:
            message = redact(self._error_message(exc))
            refused = ConfigError if self._login_refused(exc, message) else RetryableDestinationError
            raise refused(f"{self._where()}: cannot connect: {message}") from None
        try:
            self._set_up_session(conn)
            conn.commit()
        except errors as exc:
            conn.close()
            raise RetryableDestinationError(f"{self._where()}: {redact(self._error_message(exc))}") from None
        self._conn = conn

    def _open_blocking(self, target: SyncTarget) -> None:
        errors = self._driver_error()
        if not self._connected():
            self._connect()
        try:
            self._schema = schema = self._inspect(target)
        except Exception as exc:
            self._abort()
            if isinstance(exc, errors):
                raise self._batch_error(exc) from exc
            raise
        for op in Operation:
            names = target.identity if op in (Operation.DELETE, Operation.CLEAR) else schema.written
            self._converters[op] = [(f, schema.converter(f)) for f in names]
        self._prepare_statements(target, schema)

    def _prepare(self, operation: Operation, ordinal: int, record: Record) -> tuple[Any, ...]:
        """The statement parameters of one record (ordinal first); RowRejected for a value that cannot fit."""
        values = record.values
        return (ordinal, *[convert(values.get(name)) for name, convert in self._converters[operation]])

    def _begin(self) -> None:
        if not self._connected():
            self._connect()

    def _commit(self) -> None:
        self._conn.commit()

    def _abort(self) -> None:
        """Roll back after a failure; never raise (the connection may be gone)."""
        if self._conn is None:
            return
        try:
            if self._connected():
                self._conn.rollback()
        except Exception:  # the connection is unusable: drop it, the next batch reconnects
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            return
        if not self._connected():
            self._conn = None

    def _savepoint(self, action: str) -> None:
        """``set``, ``rollback`` (to it, then release it) or ``release`` the row savepoint."""
        with self._conn.cursor() as cur:
            for statement in _SAVEPOINT[action]:
                cur.execute(statement)

    def _row_error(self, exc: Exception) -> str | None:
        """The reason to report when ``exc`` is the fault of the rows sent, else None."""
        if isinstance(exc, self._driver_error()):
            return self._driver_row_error(exc)
        if isinstance(exc, (ValueError, TypeError)):  # raised while adapting one row's values
            return str(exc)
        return None

    def _batch_error(self, exc: Exception) -> DestinationError:
        """A failure of the whole batch: retryable for lost connections, deadlocks, timeouts…"""
        message = f"{self._where()}: {Redactor(self.secrets())(self._error_message(exc))}"
        if self._retryable(exc):
            if not self._connected():
                self._conn = None
            return RetryableDestinationError(message)
        return DestinationError(message)

    def _close_blocking(self) -> None:
        if self._connected():
            self._conn.close()
        self._conn = None

    # -- dialect hooks (blocking, worker thread) ------------------------------------------------

    @abc.abstractmethod
    def _driver_error(self) -> type[Exception]:
        """The base class of the driver's errors (importing the driver, or a ConfigError saying how)."""

    @abc.abstractmethod
    def _new_connection(self) -> Any:
        """A new connection of the configured settings (ConfigError for settings it cannot take)."""

    @abc.abstractmethod
    def _connected(self) -> bool:
        """True while ``self._conn`` is there and open."""

    def _set_up_session(self, conn: Any) -> None:
        """Session settings of a new connection (time zone, strictness); committed by the caller."""

    @abc.abstractmethod
    def _login_refused(self, exc: Exception, message: str) -> bool:
        """True when a failed connect is the settings' fault (login, database): no retry helps."""

    @abc.abstractmethod
    def _inspect(self, target: SyncTarget) -> SchemaT:
        """Find, check (or create) the table of ``target``; commits."""

    def _prepare_statements(self, target: SyncTarget, schema: SchemaT) -> None:
        """Build what ``_execute`` runs for ``target`` once the table is known."""

    @abc.abstractmethod
    def _execute(self, operation: Operation, rows: list[tuple[Any, ...]]) -> Sequence[int]:
        """Run one multi-row statement; return the ordinals it reports as touched (UPDATE, CREATE)."""

    @abc.abstractmethod
    def _error_message(self, exc: BaseException) -> str:
        """The database's own message of ``exc``, without the driver's decoration."""

    @abc.abstractmethod
    def _driver_row_error(self, exc: Exception) -> str | None:
        """The reason to report when the driver error ``exc`` blames the rows sent, else None."""

    @abc.abstractmethod
    def _retryable(self, exc: Exception) -> bool:
        """True when the failure of a whole batch is worth a retry (lost connection, deadlock…)."""
