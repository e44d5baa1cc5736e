"""One raw warehouse connection: statements, transactions, streaming reads and bulk loads.

The warehouse's own calls (how a transaction opens, how a result streams without being held in memory,
how a journal file loads) belong to its dialect (warehouse/<name>.py); this class sequences them,
retries DuckDB out of its memory and maps every driver error to a ``WarehouseError`` that carries the
warehouse's own message (messages.py), redacted.

DuckDB runs inside this process: its connections get a memory limit (duckdb_memory.py), and a query,
a stream before its first row or a transaction that runs out of it runs again with a higher one.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from dbt_activate.errors import Redactor, WarehouseError
from dbt_activate.warehouse.dialect import Dialect, Sql
from dbt_activate.warehouse.duckdb_memory import duckdb_tuning, memory_for_rows, next_memory_limit, size_bytes
from dbt_activate.warehouse.messages import warehouse_message

_OUT_OF_MEMORY = "Out of Memory Error"
T = TypeVar("T")


class WarehouseConnection:
    def __init__(self, handle: Any, dialect: Dialect, redactor: Redactor | None = None) -> None:
        self._handle = dialect.connection(handle)
        self.dialect = dialect
        self._redact = redactor or Redactor()
        self._cursor_seq = itertools.count()
        self._in_transaction = False
        self._memory_managed = False
        self._memory_explicit = False
        dialect.prepare(self._handle)
        if dialect.session_settings(memory_limit=None, threads=None):
            self._tune_duckdb()

    # --- DuckDB memory ------------------------------------------------------------------------------

    def _tune_duckdb(self) -> None:
        limit, threads = duckdb_tuning()
        explicit = {"memory_limit": "DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT" in os.environ,
                    "threads": "DBT_ACTIVATE_DUCKDB_THREADS" in os.environ, "preserve_insertion_order": False}
        for name, statement in self.dialect.session_settings(memory_limit=limit, threads=threads):
            try:
                self._cursor().execute(statement)
            except Exception as exc:
                if explicit[name]:
                    raise WarehouseError(f"DuckDB refused DBT_ACTIVATE_DUCKDB_{name.upper()}: "
                                         f"{self._fail('a setting', exc)}") from exc
                continue  # the defaults are an optimisation: DuckDB's own settings still work
            self._memory_managed = self._memory_managed or name == "memory_limit"
        self._memory_explicit = explicit["memory_limit"]

    def reserve_memory_for(self, table: str) -> None:
        """Before a diff against ``table`` (a snapshot): raise DuckDB's limit to what it will need.

        Only the limit dbt-activate chose itself; one set with DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT stays
        the user's start value. Elsewhere (PostgreSQL, Redshift) nothing to do, not even the count.
        """
        if not self._memory_managed or self._memory_explicit:
            return
        rows = int(self.query(f"select count(*) from {table}")[0][0])
        current = self._memory_limit()
        wanted = memory_for_rows(rows, current) if current is not None else None
        if wanted is not None:
            self.execute(self.dialect.set_memory_limit(f"{wanted}B"))

    def _memory_limit(self) -> int | None:
        cur = self._cursor()
        cur.execute(self.dialect.memory_limit_query())
        row = cur.fetchone()
        return size_bytes(str(row[0])) if row else None

    def _grow_memory(self, exc: BaseException) -> bool:
        """After DuckDB ran out of its limit: raise it for the rest of the run; False when it cannot."""
        if not self._memory_managed or _OUT_OF_MEMORY not in f"{exc} {exc.__cause__}":
            return False
        try:
            current = self._memory_limit()
            if current is None:
                return False
            wanted = next_memory_limit(current)
            self._cursor().execute(self.dialect.reset_memory_limit() if wanted is None
                                   else self.dialect.set_memory_limit(f"{wanted}B"))
            grown = self._memory_limit()
        except Exception:  # the original error is what the caller reports
            return False
        return grown is not None and grown > current

    # --- plain statements -------------------------------------------------------------------------

    def _cursor(self) -> Any:
        return self._handle.cursor()

    def _fail(self, what: str, exc: BaseException) -> WarehouseError:
        return WarehouseError(self._redact(f"{what} failed on {self.dialect.name}: {warehouse_message(exc)}"))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self.dialect.execute(self._cursor(), sql, params)
        except Exception as exc:
            raise self._fail("a statement", exc) from exc

    def execute_all(self, statements: Sequence[Sql]) -> None:
        """Run statements a dialect wrote (a state write, Dialect's hooks) in order, each with its values."""
        for statement in statements:
            self.execute(statement.text, statement.params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        while True:
            try:
                cur = self._cursor()
                self.dialect.execute(cur, sql, params)
                return [tuple(r) for r in cur.fetchall()]
            except Exception as exc:
                # Inside a transaction the error aborted it: run_transaction retries the whole body.
                if not self._in_transaction and self._grow_memory(exc):
                    continue
                raise self._fail("a query", exc) from exc

    def columns(self, schema: str, table: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """(column name, data type) of a relation, in order; [] when it does not exist."""
        return self.dialect.columns(self.query, schema, table, database)

    def begin(self) -> None:
        try:
            self.dialect.begin(self._handle)
        except Exception as exc:
            raise self._fail("begin", exc) from exc
        self._in_transaction = True

    def commit(self) -> None:
        self._in_transaction = False
        try:
            self.dialect.commit(self._handle)
        except Exception as exc:
            raise self._fail("commit", exc) from exc

    def end_read(self) -> None:
        """After plain reads: end the transaction a driver with autocommit off opened for them, so it
        holds no snapshot or locks."""
        if self.dialect.reads_open_transaction and not self._in_transaction:
            self.commit()

    def rollback(self) -> None:
        self._in_transaction = False
        with suppress(Exception):  # the error that led here is what the caller reports
            self.dialect.rollback(self._handle)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def run_ddl(self, statements: Sequence[str]) -> None:
        """Create what is missing: in one transaction where DDL is transactional; elsewhere each
        statement on its own, since an open transaction would be committed by the first of them."""
        if not self.dialect.transactional_ddl:
            for statement in statements:
                self.execute(statement)
            return
        with self.transaction():
            for statement in statements:
                self.execute(statement)

    def run_transaction(self, body: Callable[[], T]) -> T:
        """``body()`` in one transaction; on DuckDB, again with a higher memory limit if it ran out."""
        while True:
            try:
                with self.transaction():
                    return body()
            except WarehouseError as exc:
                self.rollback()  # a failed commit leaves DuckDB's transaction open and aborted
                if not self._grow_memory(exc):
                    raise

    # --- streaming reads -------------------------------------------------------------------------

    def stream(self, sql: str, batch_rows: int) -> Iterator[list[tuple[Any, ...]]]:
        """Yield the result of ``sql`` in lists of at most ``batch_rows`` rows.

        Running out of DuckDB's memory before the first row is retried with a higher limit; nothing
        has been yielded then, so the caller cannot tell.
        """
        while True:
            cur, name, fetch = self._open_stream(sql, batch_rows)
            try:
                rows = fetch()
            except Exception as exc:
                self._close_stream(cur, name)
                if self._grow_memory(exc):
                    continue
                raise self._fail("reading rows", exc) from exc
            break
        try:
            while rows:
                yield [tuple(r) for r in rows]
                try:
                    rows = fetch()
                except Exception as exc:
                    raise self._fail("reading rows", exc) from exc
        finally:
            self._close_stream(cur, name)

    def _open_stream(self, sql: str, batch_rows: int) -> tuple[Any, str, Callable[[], list[Any]]]:
        name = f"activate_cursor_{next(self._cursor_seq)}"
        while True:
            try:
                cur, fetch = self.dialect.open_stream(self._handle, sql, batch_rows, name)
                return cur, name, fetch
            except Exception as exc:
                if self._grow_memory(exc):
                    continue
                raise self._fail("the diff query", exc) from exc

    def _close_stream(self, cur: Any, name: str) -> None:
        with suppress(Exception):  # a stream that failed may leave nothing to close
            self.dialect.close_stream(self._handle, cur, name)

    # --- bulk loads ------------------------------------------------------------------------------

    def load_csv(self, table: str, path: Path, columns: Sequence[str]) -> None:
        """Append a headerless CSV file to ``table`` (a quoted name) in the current transaction."""
        try:
            self.dialect.load_csv(self._handle, table, path, columns)
        except Exception as exc:
            raise self._fail(f"loading {path.name}", exc) from exc

    def close(self) -> None:
        with suppress(Exception):  # closing a dead connection is not an error worth raising
            self._handle.close()
