"""The target table of the ``postgres`` destination: find it, check it or create it, and fit values to it.

Read from ``pg_catalog`` (not ``information_schema``, which hides tables the role cannot write
and has no index details). Names are compared exactly, as the destination quotes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from dbt_activate.core.types import Mode, SyncTarget
from dbt_activate.core.values import is_nonfinite, json_default
from dbt_activate.destinations.sql import RowRejected, TableRef, WarehouseType, warehouse_type, written_fields
from dbt_activate.destinations.sql import TableSchema as SqlTableSchema
from dbt_activate.errors import ConfigError

# Modes whose statements use ON CONFLICT (identity): PostgreSQL needs a matching unique index.
_CONFLICT_MODES = frozenset({Mode.UPSERT, Mode.MIRROR, Mode.CREATE})

_FIND_TABLE = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'f') AND {match}
"""
# The cast type drops length and precision so the assignment to the column enforces them;
# bare "character" and "bit" would mean length 1 and truncate, hence bpchar and varbit.
_COLUMNS = """
SELECT a.attname,
       CASE t.oid WHEN 'bpchar'::regtype THEN 'bpchar' WHEN '_bpchar'::regtype THEN 'bpchar[]'
                  WHEN 'bit'::regtype THEN 'varbit' WHEN '_bit'::regtype THEN 'varbit[]'
                  ELSE format_type(a.atttypid, NULL) END,
       b.typcategory, b.typname
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# Unique indexes usable as ON CONFLICT arbiters: plain columns, not partial, not deferrable.
_UNIQUE_INDEXES = """
SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) AS k(attnum)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)::text[]
FROM pg_index i
WHERE i.indrelid = %s AND i.indisunique AND i.indimmediate AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL
"""

_PG_TYPES = {
    "smallint": "smallint", "integer": "integer", "bigint": "bigint", "hugeint": "numeric",
    "double": "double precision", "real": "real", "boolean": "boolean", "date": "date",
    "timestamp": "timestamp", "timestamptz": "timestamptz", "time": "time", "timetz": "timetz",
    "interval": "interval", "uuid": "uuid", "json": "jsonb", "text": "text", "binary": "bytea",
}


def pg_type(data_type: str) -> str:
    """The PostgreSQL column type for a warehouse type string, for ``create_table``."""
    return _pg_type(warehouse_type(data_type))


def _pg_type(wt: WarehouseType) -> str:
    if wt.family == "decimal":
        # PostgreSQL caps declared precision at 1000; beyond that (or without one) use plain numeric.
        fits = wt.precision is not None and 0 < wt.precision <= 1000 and (wt.scale or 0) <= wt.precision
        return f"numeric({wt.precision},{wt.scale or 0})" if fits else "numeric"
    if wt.family == "array":
        if wt.element is None or wt.element.family in ("array", "json"):
            return "jsonb"  # nested or untyped lists: PostgreSQL arrays must be rectangular and typed
        return _pg_type(wt.element) + "[]"
    return _PG_TYPES.get(wt.family, "text")


def json_dumps(value: Any) -> str:
    """JSON for json/jsonb columns: dates ISO 8601, Decimals as strings, NaN refused."""
    return json.dumps(value, default=json_default, ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class Column:
    name: str
    cast: str  # the parameter cast: the column's type without length or precision
    kind: str  # json | array | text | exact (numbers without NaN) | float | other


@dataclass(frozen=True)
class TableSchema(SqlTableSchema[Column]):
    def ref_sql(self, sql: Any) -> Any:
        return sql.SQL("{}.{}").format(sql.Identifier(self.ref.schema), sql.Identifier(self.ref.name))

    def converter(self, field: str) -> Callable[[Any], Any]:
        return column_converter(self.columns[field])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(category: str, base: str) -> str:
    if base in ("json", "jsonb"):
        return "json"
    if category == "N":
        return "float" if base in ("float4", "float8") else "exact"
    return {"A": "array", "S": "text"}.get(category, "other")


def inspect_table(conn: Any, destination: str, ref: TableRef, target: SyncTarget, *, create: bool) -> TableSchema:
    """Find, check and (with ``create``) create the table ``target`` writes to; commits."""
    from psycopg2 import sql

    where = f"postgres destination {destination!r}, sync {target.sync_name!r}"
    written = written_fields(target)
    types = {f.field: f.data_type for f in target.fields}
    table = sql.SQL("{}.{}").format(sql.Identifier(ref.schema), sql.Identifier(ref.name))
    with conn.cursor() as cur:
        cur.execute(_FIND_TABLE.format(match="n.nspname = %s AND c.relname = %s"), (ref.schema, ref.name))
        found = cur.fetchone()
        if found is None and create:
            keyed = target.mode is not Mode.APPEND and target.identity
            parts = [sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(pg_type(types.get(f, ""))))
                     for f in written]
            if keyed:
                parts.append(sql.SQL("PRIMARY KEY ({})").format(
                    sql.SQL(", ").join(sql.Identifier(f) for f in target.identity)))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ref.schema)))
            cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table, sql.SQL(", ").join(parts)))
            cur.execute(_FIND_TABLE.format(match="n.nspname = %s AND c.relname = %s"), (ref.schema, ref.name))
            found = cur.fetchone()
        if found is None:
            cur.execute(_FIND_TABLE.format(match="lower(n.nspname) = lower(%s) AND lower(c.relname) = lower(%s)"),
                        (ref.schema, ref.name))
            near = cur.fetchone()
            hint = f" (there is {near[1]}.{near[2]}: names are case-sensitive)" if near else ""
            raise ref.missing(where, destination, hint)
        oid = found[0]
        cur.execute(_COLUMNS, (oid,))
        columns = {name: Column(name, cast, _kind(cat, base)) for name, cast, cat, base in cur.fetchall()}
        missing = [f for f in written if f not in columns]
        if missing and create:
            for f in missing:
                cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    table, sql.Identifier(f), sql.SQL(pg_type(types.get(f, "")))))
            cur.execute(_COLUMNS, (oid,))
            columns = {name: Column(name, cast, _kind(cat, base)) for name, cast, cat, base in cur.fetchall()}
            missing = [f for f in written if f not in columns]
        if missing:
            raise ref.missing_columns(where, destination, missing)
        if target.mode in _CONFLICT_MODES and target.identity:
            cur.execute(_UNIQUE_INDEXES, (oid,))
            if not any(set(cols) == set(target.identity) for (cols,) in cur.fetchall()):
                ids = ", ".join(_quote(f) for f in target.identity)
                raise ConfigError(
                    f"{where}: mode {target.mode.value!r} needs a unique constraint or unique index on exactly "
                    f"({', '.join(target.identity)}) of {ref} (for ON CONFLICT); add one, e.g. "
                    f"CREATE UNIQUE INDEX ON {_quote(ref.schema)}.{_quote(ref.name)} ({ids})")
    conn.commit()
    return TableSchema(ref, columns, written)


def column_converter(column: Column) -> Callable[[Any], Any]:
    """Turn one warehouse value into what psycopg2 should send for ``column``."""
    from psycopg2.extras import Json

    kind, name, cast = column.kind, column.name, column.cast

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            if "\x00" in value:
                raise RowRejected(f"{name}: text with a NUL (0x00) character cannot be stored in PostgreSQL")
            return value
        if kind == "json":  # a str is already JSON text (DuckDB JSON); anything else is encoded
            return Json(value, dumps=json_dumps)
        if isinstance(value, (float, Decimal)):
            if kind == "exact" and is_nonfinite(value):
                raise RowRejected(f"{name}: {value} cannot be stored in a {cast} column")
            return value
        if isinstance(value, (dict, list, tuple)):
            if kind == "array" and not isinstance(value, dict):
                return list(value) if value else "{}"  # ARRAY[] has no type; '{}' takes the column's
            if kind == "text":
                return json_dumps(value)
            raise RowRejected(f"{name}: a {type(value).__name__} cannot be written to a {cast} column")
        if isinstance(value, UUID):
            return str(value)
        return value

    return convert
