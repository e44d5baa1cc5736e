"""Quarantine: hold back the rows a failing dbt test listed, instead of blocking the whole sync.

With ``quarantine: true`` a sync whose model has failing tests that stored their failures
(``store_failures: true``) runs without the rows whose primary key appears in those tests' failures
tables (gating.py decides which tests). The rows are neither sent nor removed: the model side of the
diff leaves them out and so does the snapshot side, so a held-back row keeps what was last synced
and goes through on the first run after its test passes again.

A failures table names its rows by the primary key columns (the package's ``activate_primary_key``
test, or any test that selects the key), or, for dbt's ``unique`` test on the key column, by
``unique_field``. A table that does neither cannot name rows: that is a configuration error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dbt_activate.dbt.gating import Quarantine
from dbt_activate.errors import ConfigError
from dbt_activate.spec import ResolvedSync
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Column, Dialect

_MODEL = "__activate_m"
_FAILED = "__activate_f"
_SNAPSHOT = "__activate_s"
# dbt's `unique` test stores the tested column as unique_field.
_DBT_UNIQUE_COLUMN = "unique_field"
# A part of a relation name: "double-quoted" ("" escapes a quote), `backtick-quoted` (BigQuery's, with
# backslash escapes), or bare.
_PART = re.compile(r'"((?:[^"]|"")*)"|`((?:[^`\\]|\\.)*)`|([^.`"]+)')
_BACKSLASH_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class HeldBack:
    """The SQL that leaves a sync's quarantined rows out, and how many rows it holds back."""

    predicate: str  # true for a model row (alias __activate_m) that is held back
    key_sql: str  # the row's sync key, same expression as the diff's
    rows: int
    tests: tuple[str, ...]

    def relation(self, relation: str) -> str:
        """The model without its held-back rows, usable wherever the relation name was."""
        return f"(select * from {relation} {_MODEL} where not ({self.predicate})) {_MODEL}_kept"

    def snapshot(self, snapshot: str, relation: str) -> str:
        """The snapshot without the held-back keys: they count neither as changed nor as removed."""
        held = f"select {self.key_sql} as held_key from {relation} {_MODEL} where {self.predicate}"
        return (f"(select * from {snapshot} {_SNAPSHOT} where not exists (select 1 from ({held}) h "
                f"where h.held_key = {_SNAPSHOT}.sync_key))")

    @property
    def reason(self) -> str:
        return f"{self.rows} row(s) quarantined by failing test(s): {', '.join(self.tests)}"


def split_relation(name: str) -> tuple[str | None, str, str]:
    """'"db"."schema"."table"' (dbt's relation_name; dbt-bigquery's is '`project`.`dataset`.`table`')
    -> (database, schema, table)."""
    parts = [q.replace('""', '"') if q else _BACKSLASH_ESCAPE.sub(r"\1", b) if b else u
             for q, b, u in _PART.findall(name)]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return None, parts[0], parts[1]
    raise ValueError(f"not a schema-qualified relation name: {name!r}")


def key_pairs(quarantine: Quarantine, failure_columns: Sequence[str], key_columns: Sequence[str]
              ) -> list[tuple[str, str]] | None:
    """(model key column, failures table column) pairs, or None when the table cannot name rows."""
    by_lower = {c.lower(): c for c in failure_columns}
    if all(k.lower() in by_lower for k in key_columns):
        return [(k, by_lower[k.lower()]) for k in key_columns]
    column = (quarantine.column_name or "").strip('"').lower()
    if len(key_columns) == 1 and column == key_columns[0].lower() and _DBT_UNIQUE_COLUMN in by_lower:
        return [(key_columns[0], by_lower[_DBT_UNIQUE_COLUMN])]
    return None


def hold_back(conn: WarehouseConnection, dialect: Dialect, rs: ResolvedSync,
              quarantines: Sequence[Quarantine]) -> HeldBack:
    """Check each failures table can name rows by the sync's key and count the rows held back."""
    spec = rs.spec
    clauses = []
    for q in quarantines:
        database, schema, table = split_relation(q.relation)
        rows = conn.columns(schema, table, database)
        if not rows:
            raise ConfigError(f"test {q.test} failed but its failures table {q.relation} does not exist: "
                              "run `dbt build` (or `dbt test`) again", location=f"{spec.location}.quarantine")
        pairs = key_pairs(q, [str(r[0]) for r in rows], rs.key_columns)
        if pairs is None:
            raise ConfigError(
                f"test {q.test} stores its failures in {q.relation} without the primary key column(s) "
                f"{', '.join(spec.primary_key)}: quarantine cannot tell which rows to hold back. Use the "
                "dbt_activate.activate_primary_key test or a test that selects the key columns",
                location=f"{spec.location}.quarantine")
        match = " and ".join(f"{_FAILED}.{dialect.quote(f)} = {_MODEL}.{dialect.quote(k)}" for k, f in pairs)
        clauses.append(f"exists (select 1 from {q.relation} {_FAILED} where {match})")
    predicate = " or ".join(f"({c})" for c in clauses)
    types = dict(rs.column_types)
    key_sql = dialect.key_expression([Column(c, types.get(c, "")) for c in rs.key_columns], prefix=f"{_MODEL}.")
    segment = f"({spec.where}) and " if spec.where else ""
    count = conn.query(f"select count(*) from {spec.relation} {_MODEL} where {segment}({predicate})")
    return HeldBack(predicate, key_sql, int(count[0][0]), tuple(q.test for q in quarantines))
