"""Redshift through dbt-redshift (redshift_connector), the strictest of the PostgreSQL family.

No ``ON CONFLICT``, no ``||`` beyond 65,535 bytes, no cast of boolean to varchar, SUPER casts to NULL,
CONCAT takes two arguments, varchar length counts bytes. redshift_connector buffers whole results, so
reads go through ``DECLARE … CURSOR`` / ``FETCH FORWARD n`` inside a transaction; files load only
from S3, so journal files go in as multi-row INSERTs (the base class's load).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dbt_activate.warehouse.dialect import SUPER, Column, Dialect, Fetch
from dbt_activate.warehouse.postgres import PostgresDialect


@dataclass(frozen=True)
class RedshiftDialect(PostgresDialect):
    name: ClassVar[str] = "redshift"
    # Redshift counts varchar length in bytes and caps it at 65,535.
    text_type: ClassVar[str] = "varchar(65535)"
    key_type: ClassVar[str] = "varchar(4096)"
    temp_table: ClassVar[str] = "temp table"
    has_legacy_fingerprints: ClassVar[bool] = False

    def text_of(self, column_sql: str, kind: str, data_type: str) -> str:
        if kind == SUPER:
            return f"json_serialize({column_sql})"
        return super().text_of(column_sql, kind, data_type)

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """The per-column form: a concatenation of whole texts could pass the 65,535-byte limit."""
        return self.legacy_fingerprint(columns, prefix)

    def open_stream(self, handle: Any, sql: str, batch_rows: int, name: str) -> tuple[Any, Fetch]:
        cur = handle.cursor()
        cur.execute(f"declare {name} cursor for {sql}")

        def fetch() -> list[Any]:
            cur.execute(f"fetch forward {int(batch_rows)} from {name}")
            return list(cur.fetchall() or [])
        return cur, fetch

    def close_stream(self, handle: Any, cursor: Any, name: str) -> None:
        cursor.execute(f"close {name}")
        handle.commit()

    def load_csv(self, handle: Any, table: str, path: Path, columns: Sequence[str]) -> None:
        Dialect.load_csv(self, handle, table, path, columns)
