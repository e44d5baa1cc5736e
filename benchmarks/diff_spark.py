"""The in-warehouse diff on Spark's Thrift server: seconds to diff a model of N rows against its snapshot.

    python benchmarks/diff_spark.py                      # 1M rows; starts the Thrift server itself
    python benchmarks/diff_spark.py --rows 100000 --json --port 10000   # a server already running

Needs pyspark 4.0 and Java 17 (tests/support/spark.py starts the server from the pyspark wheel). A
10-column model (text, numbers, a boolean, a timestamp, a date) is generated from ``range(N)``, its
snapshot is built with dbt-activate's own Spark fingerprint SQL (as a first sync leaves it), then a
second version of the model changes 1% of rows, deletes 0.1% and inserts 0.1% (a new table: Parquet
tables take no UPDATE or DELETE), and the diff statement (``SparkDialect.diff_query``, the one ``run``
streams) is timed as ``count`` (what ``plan`` runs) and ``fetch`` (every changed row read through
PyHive's ``fetchmany``, as ``run`` reads them).

Caveat: one local Spark in a single JVM (``local[*]``, 1 GB of driver memory) on this machine's cores,
without Delta; a Spark or Databricks cluster runs the same SQL on its own executors, so these figures
say that the SQL runs and how it scales locally, not how fast a cluster runs it.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.spark starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_common import report

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import FINGERPRINT, KEY, OP, Column
from dbt_activate.warehouse.spark import SparkDialect
from tests.support import spark

MODEL = """create table {schema}.raw_contacts using parquet as select
 id,
 concat('user', id, '@example.com') as email,
 concat('First ', id % 997) as first_name,
 concat('Last ', id % 991) as last_name,
 cast(id % 101 as int) as lead_score,
 id % 7 = 0 as is_customer,
 cast((id % 100000) / 100 as decimal(10, 2)) as mrr,
 timestamp_seconds(1704067200 + id) as updated_at,
 date_add(date'2015-01-01', cast(id % 3650 as int)) as signup_date,
 case id % 3 when 0 then 'FR' when 1 then 'GB' else 'RU' end as country
from range({rows})"""
CHANGED = """create table {schema}.contacts using parquet as
select id, email, case when id % 100 = 0 then 'Changed' else first_name end as first_name, last_name,
       lead_score, is_customer, mrr, updated_at, signup_date, country
from {schema}.raw_contacts where id % 1000 <> 1
union all
select id + {rows}, concat(email, '.new'), first_name, last_name, lead_score, is_customer, mrr, updated_at,
       signup_date, country
from {schema}.raw_contacts where id % 1000 = 2"""


@contextmanager
def server(port: int | None) -> Iterator[int]:
    if port is not None:
        yield port
        return
    home = spark.spark_home()
    if home is None:
        raise SystemExit("pyspark 4.0 and java are needed: pip install 'pyspark>=4.0,<4.1'")
    with spark.thrift_server(home) as started:
        yield started


def measure(port: int, rows: int) -> dict[str, object]:
    dialect = SparkDialect()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = WarehouseConnection(spark.connect(port), dialect)
    try:
        t0 = time.perf_counter()
        conn.execute(f"create schema {schema}")
        conn.execute(MODEL.format(schema=schema, rows=int(rows)))
        columns = [Column(str(name), str(kind)) for name, kind in conn.columns(schema, "raw_contacts")]
        keys = [c for c in columns if c.name == "id"]
        initial = dialect.initial_query(f"{schema}.raw_contacts", keys, columns, None).sql
        snapshot = f"{schema}.snapshot_contacts"
        conn.execute(f"create table {snapshot} using parquet as select {KEY} as sync_key, {FINGERPRINT} "
                     f"as fingerprint, cast(null as string) as record_identity, current_timestamp() as synced_at "
                     f"from ({initial}) i")
        conn.execute(CHANGED.format(schema=schema, rows=int(rows)))
        prepared = time.perf_counter() - t0
        diff = dialect.diff_query(f"{schema}.contacts", snapshot, keys, columns, None).sql
        started = time.perf_counter()
        counts = {str(op): int(n) for op, n in conn.query(f"select {OP}, count(*) from ({diff}) d group by {OP}")}
        count_seconds = time.perf_counter() - started
        started = time.perf_counter()
        fetched = sum(len(chunk) for chunk in conn.stream(diff, 5000))
        fetch_seconds = time.perf_counter() - started
        conn.execute(f"drop schema {schema} cascade")
    finally:
        conn.close()
    return {"warehouse": "spark 4.0 thrift server (local, no Delta)", "rows": rows, "diff_counts": counts,
            "count_seconds": round(count_seconds, 2), "fetch_seconds": round(fetch_seconds, 2),
            "rows_fetched": fetched, "setup_seconds": round(prepared, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--port", type=int, default=None, help="a Thrift server already running on 127.0.0.1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with server(args.port) as port:
        for rows in args.rows:
            result = measure(port, rows)
            print(f"  {result}", file=sys.stderr)
            results.append(result)
    report("diff_spark: dbt-activate's diff statement on Spark's Thrift server", {"results": results}, args.json)


if __name__ == "__main__":
    main()
