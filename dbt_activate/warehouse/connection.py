"""One raw warehouse connection: statements, transactions, streaming reads and bulk loads.

Streaming never holds a whole result in memory: psycopg2's default cursor and redshift_connector
buffer the full result client-side before ``fetchmany``, so PostgreSQL reads go through a named
(server-side) cursor and Redshift reads through ``DECLARE … CURSOR`` / ``FETCH FORWARD n`` inside a
transaction. DuckDB's cursor streams ``fetchmany`` natively.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbt_activate.errors import Redactor, WarehouseError
from dbt_activate.warehouse.dialect import Dialect

_INSERT_ROWS_PER_STATEMENT = 500


class WarehouseConnection:
    def __init__(self, handle: Any, dialect: Dialect, redactor: Redactor | None = None) -> None:
        self._handle = handle
        self.dialect = dialect
        self._redact = redactor or Redactor()
        self._cursor_seq = itertools.count()
        if dialect.name in ("postgres", "redshift"):
            # Explicit transactions everywhere: a state write is all or nothing.
            self._handle.autocommit = False
        memory_limit = os.environ.get("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT")
        if dialect.name == "duckdb" and memory_limit:
            # DuckDB runs inside this process: its buffer pool counts in our memory.
            self.execute(f"set memory_limit = {dialect.literal(memory_limit)}")

    # --- plain statements -------------------------------------------------------------------------

    def _cursor(self) -> Any:
        return self._handle.cursor()

    def _fail(self, what: str, exc: BaseException) -> WarehouseError:
        text = str(exc).strip().splitlines()
        detail = text[0] if text else type(exc).__name__
        return WarehouseError(self._redact(f"{what} failed on {self.dialect.name}: {detail}"))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            cur = self._cursor()
            cur.execute(sql, tuple(params)) if params else cur.execute(sql)
        except Exception as exc:
            raise self._fail("a statement", exc) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cur = self._cursor()
            cur.execute(sql, tuple(params)) if params else cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        except Exception as exc:
            raise self._fail("a query", exc) from exc

    def begin(self) -> None:
        if self.dialect.name == "duckdb":
            self.execute("begin transaction")
        # psycopg2 and redshift_connector open a transaction implicitly (autocommit off).

    def commit(self) -> None:
        try:
            if self.dialect.name == "duckdb":
                self._cursor().execute("commit")
            else:
                self._handle.commit()
        except Exception as exc:
            raise self._fail("commit", exc) from exc

    def rollback(self) -> None:
        try:
            if self.dialect.name == "duckdb":
                self._cursor().execute("rollback")
            else:
                self._handle.rollback()
        except Exception:
            pass

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    # --- streaming reads -------------------------------------------------------------------------

    def stream(self, sql: str, batch_rows: int) -> Iterator[list[tuple[Any, ...]]]:
        """Yield the result of ``sql`` in lists of at most ``batch_rows`` rows."""
        name = f"activate_cursor_{next(self._cursor_seq)}"
        try:
            if self.dialect.name == "postgres":
                cur = self._handle.cursor(name=name)
                cur.itersize = batch_rows
                cur.execute(sql)
                fetch = lambda: cur.fetchmany(batch_rows)  # noqa: E731
            elif self.dialect.name == "redshift":
                cur = self._handle.cursor()
                cur.execute(f"declare {name} cursor for {sql}")

                def fetch() -> list[Any]:
                    cur.execute(f"fetch forward {int(batch_rows)} from {name}")
                    return list(cur.fetchall() or [])
            else:
                cur = self._cursor()
                cur.execute(sql)
                fetch = lambda: cur.fetchmany(batch_rows)  # noqa: E731
        except Exception as exc:
            raise self._fail("the diff query", exc) from exc
        try:
            while True:
                try:
                    rows = fetch()
                except Exception as exc:
                    raise self._fail("reading rows", exc) from exc
                if not rows:
                    break
                yield [tuple(r) for r in rows]
        finally:
            self._close_stream(cur, name)

    def _close_stream(self, cur: Any, name: str) -> None:
        try:
            if self.dialect.name == "redshift":
                cur.execute(f"close {name}")
            cur.close() if self.dialect.name == "postgres" else None
            if self.dialect.name in ("postgres", "redshift"):
                self._handle.commit()
        except Exception:
            pass

    # --- bulk loads ------------------------------------------------------------------------------

    def load_csv(self, table: str, path: Path, columns: Sequence[str]) -> None:
        """Append a headerless CSV file to ``table`` (a quoted name) in the current transaction."""
        cols = ", ".join(self.dialect.quote(c) for c in columns)
        try:
            if self.dialect.name == "duckdb":
                literal = self.dialect.literal(str(path))
                self._cursor().execute(f"copy {table} ({cols}) from {literal} (format csv, header false, "
                                       "quote '\"', escape '\"')")
            elif self.dialect.name == "postgres":
                with path.open("rb") as fh:
                    self._handle.cursor().copy_expert(f"copy {table} ({cols}) from stdin with (format csv)", fh)
            else:
                self._insert_csv_rows(table, cols, path, len(columns))
        except WarehouseError:
            raise
        except Exception as exc:
            raise self._fail(f"loading {path.name}", exc) from exc

    def _insert_csv_rows(self, table: str, cols: str, path: Path, width: int) -> None:
        # Redshift loads files only from S3; multi-row INSERT is its documented fallback.
        row_sql = "(" + ", ".join([self.dialect.placeholder] * width) + ")"
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            while chunk := list(itertools.islice(reader, _INSERT_ROWS_PER_STATEMENT)):
                params = [v if v != "" else None for row in chunk for v in row]
                sql = f"insert into {table} ({cols}) values " + ", ".join([row_sql] * len(chunk))
                self._cursor().execute(sql, tuple(params))

    def close(self) -> None:
        try:
            self._handle.close()
        except Exception:
            pass


def csv_line(values: Sequence[str | None]) -> str:
    """One CSV record as PostgreSQL and DuckDB read it: None is an empty unquoted field (NULL)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["" if v is None else v for v in values])
    return buffer.getvalue()
