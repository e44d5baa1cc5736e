"""Shared by the diff benchmarks on a warehouse server (diff_bigquery.py, diff_snowflake.py, diff_spark.py).

Each run is the same: generate a 10-column model of N rows, build its snapshot with dbt-activate's own
fingerprint SQL (as a first sync leaves it), change 1% of rows, delete 0.1% and insert 0.1%, then time
the diff statement (``Dialect.diff_query``, the one ``run`` streams) as ``count`` (what ``plan`` runs)
and ``fetch`` (every changed row streamed in chunks of 5,000, as ``run`` reads them), through
dbt-activate's own connection. A ``Warehouse`` is what differs: its server, its connection and its SQL
for the model and its change; the script of each warehouse keeps its command line and docstring.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from delivery_common import report

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import FINGERPRINT, KEY, OP, Column, Dialect

MODEL = "raw_contacts"  # the generated table; its "id" column is the sync key


class Warehouse(ABC):
    """One warehouse's part of the benchmark: the rest is the same on every warehouse."""

    name: str  # each result's "warehouse": the server and version the figures come from
    title: str  # the report's title
    dialect: Dialect
    text_type = "string"  # of the snapshot's record_identity
    snapshot_suffix = ""  # what the warehouse's snapshot table has more (Spark: synced_at, as run leaves it)
    create_table = "create or replace table {table} as"
    port_help: str | None = None  # the help of --port (a server already running) where there is one

    @abstractmethod
    def server(self, port: int | None) -> AbstractContextManager[int]:
        """Start the warehouse's server (or use the one on ``port``); yield its port."""

    @abstractmethod
    def connect(self, port: int, name: str) -> tuple[Any, str]:
        """A DB-API connection for a run named ``name`` and the schema its tables go to."""

    @abstractmethod
    def generate(self, conn: WarehouseConnection, schema: str, rows: int) -> None:
        """Create ``schema`` and the model of ``rows`` rows (``MODEL``) in it."""

    @abstractmethod
    def change(self, conn: WarehouseConnection, schema: str, rows: int) -> str:
        """Change, delete and insert the model's rows; the relation that holds the changed model."""

    def table(self, schema: str, name: str) -> str:
        return f"{schema}.{name}"

    def drop(self, conn: WarehouseConnection, schema: str) -> None:  # noqa: B027 - nothing by default
        """Drop the run's schema where the server keeps it after the run (one given with --port);
        an emulator started for the run ends with it, its tables too."""


def measure(warehouse: Warehouse, port: int, rows: int) -> dict[str, object]:
    dialect = warehouse.dialect
    handle, schema = warehouse.connect(port, f"bench_{uuid.uuid4().hex[:8]}")
    conn = WarehouseConnection(handle, dialect)
    try:
        t0 = time.perf_counter()
        warehouse.generate(conn, schema, rows)
        columns = [Column(str(name), str(kind)) for name, kind in conn.columns(schema, MODEL)]
        keys = [c for c in columns if c.name.lower() == "id"]  # Snowflake reports it as ID
        initial = dialect.initial_query(warehouse.table(schema, MODEL), keys, columns, None).sql
        snapshot = warehouse.table(schema, "snapshot_contacts")
        conn.execute(f"{warehouse.create_table.format(table=snapshot)} select {KEY} as sync_key, {FINGERPRINT} "
                     f"as fingerprint, cast(null as {warehouse.text_type}) as record_identity"
                     f"{warehouse.snapshot_suffix} from ({initial}) i")
        relation = warehouse.change(conn, schema, rows)
        prepared = time.perf_counter() - t0
        diff = dialect.diff_query(relation, snapshot, keys, columns, None).sql
        started = time.perf_counter()
        counts = {str(op): int(n) for op, n in conn.query(f"select {OP}, count(*) from ({diff}) d group by {OP}")}
        count_seconds = time.perf_counter() - started
        started = time.perf_counter()
        fetched = sum(len(chunk) for chunk in conn.stream(diff, 5000))
        fetch_seconds = time.perf_counter() - started
        warehouse.drop(conn, schema)
    finally:
        conn.close()
    return {"warehouse": warehouse.name, "rows": rows, "diff_counts": counts,
            "count_seconds": round(count_seconds, 2), "fetch_seconds": round(fetch_seconds, 2),
            "rows_fetched": fetched, "setup_seconds": round(prepared, 1)}


def main(warehouse: Warehouse, doc: str | None) -> None:
    """The command line of a diff benchmark script (``doc`` is its docstring, shown by --help)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    if warehouse.port_help is not None:
        parser.add_argument("--port", type=int, default=None, help=warehouse.port_help)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with warehouse.server(getattr(args, "port", None)) as port:
        for rows in args.rows:
            result = measure(warehouse, port, rows)
            print(f"  {result}", file=sys.stderr)
            results.append(result)
    report(warehouse.title, {"results": results}, args.json)
