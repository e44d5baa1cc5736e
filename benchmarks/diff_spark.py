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

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.spark starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
import diff_runner

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.spark import SparkDialect
from tests.support import spark

MODEL = """create table {table} using parquet as select
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
CHANGED = """create table {model} using parquet as
select id, email, case when id % 100 = 0 then 'Changed' else first_name end as first_name, last_name,
       lead_score, is_customer, mrr, updated_at, signup_date, country
from {raw} where id % 1000 <> 1
union all
select id + {rows}, concat(email, '.new'), first_name, last_name, lead_score, is_customer, mrr, updated_at,
       signup_date, country
from {raw} where id % 1000 = 2"""


class Spark(diff_runner.Warehouse):
    name = "spark 4.0 thrift server (local, no Delta)"
    title = "diff_spark: dbt-activate's diff statement on Spark's Thrift server"
    dialect = SparkDialect()
    create_table = "create table {table} using parquet as"
    snapshot_suffix = ", current_timestamp() as synced_at"
    port_help = "a Thrift server already running on 127.0.0.1"

    @contextmanager
    def server(self, port: int | None) -> Iterator[int]:
        if port is not None:
            yield port
            return
        home = spark.spark_home()
        if home is None:
            raise SystemExit("pyspark 4.0 and java are needed: pip install 'pyspark>=4.0,<4.1'")
        with spark.thrift_server(home) as started:
            yield started

    def connect(self, port: int, name: str) -> tuple[Any, str]:
        return spark.connect(port), name  # a schema per run

    def generate(self, conn: WarehouseConnection, schema: str, rows: int) -> None:
        conn.execute(f"create schema {schema}")
        conn.execute(MODEL.format(table=self.table(schema, diff_runner.MODEL), rows=int(rows)))

    def change(self, conn: WarehouseConnection, schema: str, rows: int) -> str:
        # Parquet tables take no UPDATE or DELETE: the changed model is a new table.
        relation = self.table(schema, "contacts")
        conn.execute(CHANGED.format(model=relation, raw=self.table(schema, diff_runner.MODEL), rows=int(rows)))
        return relation

    def drop(self, conn: WarehouseConnection, schema: str) -> None:
        conn.execute(f"drop schema {schema} cascade")


if __name__ == "__main__":
    diff_runner.main(Spark(), __doc__)
