"""The target table of the ``mysql`` destination: find it, check it or create it, and fit values to it.

Read from ``information_schema`` (MySQL and MariaDB alike). A MySQL "schema" is a database, so an
object ``crm.people`` is table ``people`` of database ``crm``. Table names are compared exactly
(they are file names on most servers); column names are not, because MySQL itself does not.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from dbt_activate.core.types import Mode, SyncTarget
from dbt_activate.core.values import is_nonfinite, iso_duration, json_default
from dbt_activate.destinations.sql import RowRejected, TableRef, WarehouseType, warehouse_type, written_fields
from dbt_activate.destinations.sql import TableSchema as SqlTableSchema
from dbt_activate.errors import ConfigError

_FIND_TABLE = ("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
               "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s")
_FIND_DATABASE = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
_FIND_NEAR = ("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
              "WHERE LOWER(TABLE_SCHEMA) = LOWER(%s) AND LOWER(TABLE_NAME) = LOWER(%s)")
_COLUMNS = ("SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION")
_UNIQUE_KEYS = ("SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 "
                "ORDER BY INDEX_NAME, SEQ_IN_INDEX")

_MYSQL_TYPES = {
    "smallint": "SMALLINT", "integer": "INT", "bigint": "BIGINT", "hugeint": "DECIMAL(39,0)",
    "double": "DOUBLE", "real": "FLOAT", "boolean": "BOOLEAN", "date": "DATE",
    # DATETIME, not TIMESTAMP: no 2038 limit and no conversion by the session time zone (UTC anyway).
    "timestamp": "DATETIME(6)", "timestamptz": "DATETIME(6)", "time": "TIME(6)", "timetz": "VARCHAR(32)",
    "interval": "VARCHAR(64)", "uuid": "CHAR(36)", "json": "JSON", "text": "LONGTEXT", "binary": "LONGBLOB",
    "array": "JSON",
}
# Key columns need a bounded length: MySQL cannot index a whole TEXT or BLOB.
_KEY_TYPES = {"LONGTEXT": "VARCHAR(255)", "LONGBLOB": "VARBINARY(255)", "JSON": "VARCHAR(255)"}
_TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set"})
_EXACT_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric",
                          "bit", "year"})


def mysql_type(data_type: str, *, key: bool = False) -> str:
    """The MySQL column type for a warehouse type string, for ``create_table``."""
    found = _mysql_type(warehouse_type(data_type))
    return _KEY_TYPES.get(found, found) if key else found


def _mysql_type(wt: WarehouseType) -> str:
    if wt.family == "decimal":
        # MySQL caps DECIMAL at 65 digits, 30 after the point; beyond that keep the digits as text.
        p, s = wt.precision, wt.scale or 0
        if p is not None and 0 < p <= 65 and s <= min(p, 30):
            return f"DECIMAL({p},{s})"
        return "LONGTEXT" if p is not None else "DECIMAL(65,30)"
    return _MYSQL_TYPES.get(wt.family, "LONGTEXT")


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class Column:
    name: str  # as the table spells it
    data_type: str  # information_schema DATA_TYPE, lower case (varchar, int, json…)
    kind: str  # text | exact | float | binary | other


@dataclass(frozen=True)
class TableSchema(SqlTableSchema[Column]):
    # The identity is the table's only unique key, so ON DUPLICATE KEY UPDATE finds rows by it alone.
    # (It fires on any unique key: with another one, a row would be merged into a record found by
    # that key, e.g. its email, and take over its identity. Upserts then update, then insert.)
    keyed_by_identity: bool = False

    @property
    def sql(self) -> str:
        return f"{quote(self.ref.schema)}.{quote(self.ref.name)}"

    def converter(self, field: str) -> Callable[[Any], Any]:
        return column_converter(self.columns[field])


def _kind(data_type: str) -> str:
    if data_type in _TEXT_TYPES:
        return "text"
    if data_type in _EXACT_TYPES:
        return "exact"
    if data_type in ("float", "double", "real"):
        return "float"
    return "binary" if data_type.endswith(("blob", "binary")) else "other"


def inspect_table(conn: Any, destination: str, ref: TableRef, target: SyncTarget, *, create: bool) -> TableSchema:
    """Find, check and (with ``create``) create the table ``target`` writes to; commits."""
    where = f"mysql destination {destination!r}, sync {target.sync_name!r}"
    written = written_fields(target)
    types = {f.field: f.data_type for f in target.fields}
    table = f"{quote(ref.schema)}.{quote(ref.name)}"
    keyed = target.mode is not Mode.APPEND and bool(target.identity)
    with conn.cursor() as cur:
        found = cur.execute(_FIND_TABLE, (ref.schema, ref.name))
        has_database = bool(found) or bool(cur.execute(_FIND_DATABASE, (ref.schema,)))
        if not found and create:
            parts = [f"{quote(f)} {mysql_type(types.get(f, ''), key=keyed and f in target.identity)}"
                     for f in written]
            if keyed:
                parts.append(f"PRIMARY KEY ({', '.join(quote(f) for f in target.identity)})")
            if not has_database:  # only then: creating one needs a privilege the user may not have
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote(ref.schema)} CHARACTER SET utf8mb4")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(parts)}) CHARACTER SET utf8mb4")
            found = cur.execute(_FIND_TABLE, (ref.schema, ref.name))
        if not found and not has_database:
            raise ConfigError(f"{where}: database {ref.schema!r} does not exist; create it, or set "
                              f"create_table: true on destination {destination!r} to let dbt-activate create it")
        if not found:
            cur.execute(_FIND_NEAR, (ref.schema, ref.name))
            near = cur.fetchone()
            hint = f" (there is {near[0]}.{near[1]}: table names are case-sensitive)" if near else ""
            raise ref.missing(where, destination, hint)
        columns = _columns(cur, ref)
        missing = [f for f in written if f.lower() not in columns]
        if missing and create:
            for f in missing:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {quote(f)} {mysql_type(types.get(f, ''))}")
            columns = _columns(cur, ref)
            missing = [f for f in written if f.lower() not in columns]
        if missing:
            raise ref.missing_columns(where, destination, missing)
        cur.execute(_UNIQUE_KEYS, (ref.schema, ref.name))
        keys: dict[str, set[str]] = {}
        for index, column in cur.fetchall():
            keys.setdefault(index, set()).add(str(column).lower())
    conn.commit()
    keyed = bool(target.identity) and list(keys.values()) == [{f.lower() for f in target.identity}]
    return TableSchema(ref, {f: columns[f.lower()] for f in written}, written, keyed)


def _columns(cur: Any, ref: TableRef) -> dict[str, Column]:
    cur.execute(_COLUMNS, (ref.schema, ref.name))
    return {str(name).lower(): Column(str(name), str(dtype).lower(), _kind(str(dtype).lower()))
            for name, dtype, _ in cur.fetchall()}


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, allow_nan=False)


def column_converter(column: Column) -> Callable[[Any], Any]:
    """Turn one warehouse value into what pymysql should send for ``column``.

    MySQL has no NaN or infinity in any numeric type, so they are refused per row. Aware
    datetimes become naive UTC (the session time zone); lists and dicts become JSON text.
    """
    kind, name, data_type = column.kind, column.name, column.data_type

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, (str, bool, int)):
            return value
        if isinstance(value, (float, Decimal)):
            if is_nonfinite(value):
                raise RowRejected(f"{name}: {value} cannot be stored in MySQL (no NaN or infinite numbers)")
            return value
        if isinstance(value, datetime.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return value
        if isinstance(value, (dict, list, tuple)):
            if kind in ("text", "other"):
                return json_dumps(value)
            raise RowRejected(f"{name}: a {type(value).__name__} cannot be written to a {data_type} column")
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, datetime.timedelta) and kind == "text":
            return iso_duration(value)
        if isinstance(value, datetime.time) and value.tzinfo is not None:
            return value.isoformat() if kind == "text" else value.replace(tzinfo=None)
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return value  # date, time, timedelta, bytes: pymysql writes them

    return convert
