"""The state schema in an in-memory DuckDB database: the ``StateStore`` of the engine's in-process tests.

The same SQL as in the warehouse runs here (``WarehouseStateStore`` on DuckDB's dialect), so a test of
the engine's guarantees checks the real snapshot, rejection and run tables, in milliseconds and with
nothing left behind. ``connect()`` opens another connection to the same database: a source reading a
model table next to the snapshots (``diff.WarehouseSource``), or the lock's own connection.
"""

from __future__ import annotations

from typing import Any

from dbt_activate.state.store import WarehouseStateStore
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.registry import dialect_for


class _Handle:
    """A raw DuckDB connection shaped as dbt-duckdb's handle: ``cursor()`` is the connection itself, so
    a transaction begun on it spans the statements that follow (a DuckDB ``cursor()`` is a new connection)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def cursor(self) -> Any:
        return self._connection

    def close(self) -> None:
        self._connection.close()


class MemoryStateStore(WarehouseStateStore):
    def __init__(self, schema: str = "activate") -> None:
        import duckdb  # the duckdb extra; only tests and benchmarks open this store

        self._database = duckdb.connect(":memory:")
        super().__init__(self.connect(), schema, lock_connection=self.connect)
        self.ensure()

    def connect(self) -> WarehouseConnection:
        """A new connection to this store's database."""
        return WarehouseConnection(_Handle(self._database.cursor()), dialect_for("duckdb"))

    def close(self) -> None:
        self.conn.close()
        self._database.close()
