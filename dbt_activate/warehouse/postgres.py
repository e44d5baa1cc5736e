"""PostgreSQL through dbt-postgres (psycopg2).

psycopg2's default cursor buffers the whole result client-side before ``fetchmany``, so reads go
through a named (server-side) cursor. Every write runs in an explicit transaction (autocommit off);
``LOCK TABLE`` serialises lock acquirers; journal files load with ``COPY … FROM STDIN``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dbt_activate.warehouse.dialect import Column, Dialect, Fetch


@dataclass(frozen=True)
class PostgresDialect(Dialect):
    name: ClassVar[str] = "postgres"
    text_type: ClassVar[str] = "text"
    key_type: ClassVar[str] = "text"
    has_legacy_fingerprints: ClassVar[bool] = True
    lock_kind: ClassVar[str] = "lock_table"

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """DuckDB's one-md5 form (duckdb.py), with || (PostgreSQL's concat() takes at most 100
        arguments) and the length in bytes."""
        texts = [self.normalized(f"{prefix}{self.quote(c.name)}", c.data_type) for c in columns]
        pieces = [f"coalesce(cast(octet_length({t}) as varchar), '-') || ':' || coalesce({t}, '')" for t in texts]
        return f"upper(md5({' || '.join(pieces)}))"

    def lock_statement(self, table: str) -> str | None:
        return f"lock table {table}"

    # --- driver --------------------------------------------------------------------------------------

    def prepare(self, handle: Any) -> None:
        # Explicit transactions everywhere: a state write is all or nothing.
        handle.autocommit = False

    @property
    def reads_open_transaction(self) -> bool:
        return True

    def open_stream(self, handle: Any, sql: str, batch_rows: int, name: str) -> tuple[Any, Fetch]:
        cur = handle.cursor(name=name)
        cur.itersize = batch_rows
        cur.execute(sql)
        return cur, lambda: list(cur.fetchmany(batch_rows))

    def close_stream(self, handle: Any, cursor: Any, name: str) -> None:
        cursor.close()
        handle.commit()

    def load_csv(self, handle: Any, table: str, path: Path, columns: Sequence[str]) -> None:
        cols = ", ".join(self.quote_own(c) for c in columns)
        with path.open("rb") as fh:
            handle.cursor().copy_expert(f"copy {table} ({cols}) from stdin with (format csv)", fh)
