"""The in-warehouse diff alone: seconds to diff a model of N rows against its snapshot, 1% changed.

    python benchmarks/diff_speed.py                              # 1M and 10M rows, DuckDB and PostgreSQL
    python benchmarks/diff_speed.py --rows 1000000 --warehouses duckdb

The contacts model of compare.py (18 columns) is generated in the warehouse, its snapshot is built
with dbt-activate's own fingerprint SQL (as a first sync leaves it), 1% of rows are changed, 0.1%
deleted and 0.1% inserted (seeded), then dbt-activate's diff statement (``Dialect.diff_query``, the
one ``run`` streams) is timed two ways: ``count`` (``select op, count(*) from (diff) group by op``,
what ``plan`` runs) and ``fetch`` (every changed row streamed into Python, as ``run`` reads them).
DuckDB runs with the settings dbt-activate gives its own connections (``DBT_ACTIVATE_DUCKDB_*``).
``count_cpu_seconds`` is the CPU time of the count: this process's for DuckDB (it runs inside), the
server backend's for PostgreSQL (read from /proc; parallel workers are turned off for it). On a
shared machine it is steadier than wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_data import COLUMNS, Warehouse
from delivery_common import report

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import KEY, OP, Column
from dbt_activate.warehouse.registry import dialect_for

TYPES = {"lead_score": "integer", "created_at": "timestamp", "updated_at": "timestamp", "is_customer": "boolean",
         "mrr": "numeric", "seats": "integer", "signup_date": "date", "last_login_at": "timestamp", "nps": "integer"}


def _admin(sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    con.autocommit = True
    con.cursor().execute(sql)
    con.close()


def backend_cpu(pid: int) -> float:
    """utime + stime of a local PostgreSQL backend, from /proc (the server runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, rows: int, work: Path, database: str) -> dict[str, object]:
    wh = Warehouse(kind, work, database)
    dialect = dialect_for(kind)
    t0 = time.perf_counter()
    wh.generate(rows)
    relation = f"{wh.schema}.raw_contacts"
    keys = [Column("email", "varchar")]
    fields = [Column(c, TYPES.get(c, "varchar")) for c in COLUMNS]
    initial = dialect.initial_query(relation, keys, fields, None).sql
    snapshot = f"{wh.schema}.snapshot_contacts"
    wh.execute(f"drop table if exists {snapshot}",
               f"create table {snapshot} as select {KEY} as sync_key, __activate_fp as fingerprint, "
               f"cast(null as varchar) as record_identity from ({initial}) i")
    mutation = wh.mutate(rows, seed=7)
    prepared = time.perf_counter() - t0
    diff = dialect.diff_query(relation, snapshot, keys, fields, None).sql
    with wh.connect() as con:
        backend = None
        if kind == "postgres":
            cur = con.cursor()
            cur.execute("set max_parallel_workers_per_gather = 0")  # all of the work in the measured backend
            cur.execute("select pg_backend_pid()")
            backend = int(cur.fetchone()[0])
        # dbt-activate's own connection: its DuckDB settings, the limit sized from the snapshot's rows,
        # and a higher one when a statement still runs out of it (it runs again, and that time counts).
        warehouse = WarehouseConnection(con, dialect)

        def cpu() -> float:
            return backend_cpu(backend) if backend is not None else time.process_time()

        started, cpu_started = time.perf_counter(), cpu()
        warehouse.reserve_memory_for(snapshot)  # as run does before its diff (counted in the time)
        counted = warehouse.query(f"select {OP}, count(*) from ({diff}) d group by {OP} order by 1")
        counts = {str(op): int(n) for op, n in counted}
        count_seconds, count_cpu = time.perf_counter() - started, cpu() - cpu_started
        started = time.perf_counter()
        fetched = sum(len(chunk) for chunk in warehouse.stream(diff, 5000))  # as run streams
        memory_limit = (str(warehouse.query(dialect.memory_limit_query())[0][0]) if kind == "duckdb" else None)
        fetch_seconds = time.perf_counter() - started
    return {"warehouse": kind, "rows": rows, "mutation": vars(mutation), "diff_counts": counts,
            "count_seconds": round(count_seconds, 2),
            # DuckDB runs in this process: its CPU time is the diff's; PostgreSQL's is its backend's
            # (parallel workers off, so the backend does all of it).
            "count_cpu_seconds": round(count_cpu, 2),
            "fetch_seconds": round(fetch_seconds, 2),
            "rows_fetched": fetched, "duckdb_memory_limit_after": memory_limit, "setup_seconds": round(prepared, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--warehouses", nargs="+", default=["duckdb", "postgres"], choices=["duckdb", "postgres"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for kind in args.warehouses:
        for rows in args.rows:
            database = f"bench_diff_{uuid.uuid4().hex[:8]}" if kind == "postgres" else ""
            if database:
                _admin(f"create database {database}")
            try:
                with tempfile.TemporaryDirectory(prefix="diff_speed_") as work:
                    result = measure(kind, rows, Path(work), database)
            finally:
                if database:
                    _admin(f"drop database if exists {database} with (force)")
            print(f"  {result}", file=sys.stderr)
            results.append(result)
    report("diff_speed: dbt-activate's diff statement alone", {"results": results}, args.json)


if __name__ == "__main__":
    main()
