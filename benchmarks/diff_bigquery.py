"""The in-warehouse diff on BigQuery's emulator: seconds to diff a model of N rows against its snapshot.

    python benchmarks/diff_bigquery.py                 # 1M rows; starts crucible's server itself
    python benchmarks/diff_bigquery.py --rows 100000 --json

A 10-column model (text, numbers, a boolean, a TIMESTAMP, a DATE) is generated with ``GENERATE_ARRAY``,
its snapshot is built with dbt-activate's own BigQuery fingerprint SQL (as a first sync leaves it),
then the model is rebuilt with 1% of rows changed, 0.1% deleted and 0.1% inserted (the emulator has no
UPDATE or DELETE), and the diff statement (``BigQueryDialect.diff_query``, the one ``run`` streams) is
timed as ``count`` (what ``plan`` runs) and ``fetch`` (every changed row paged through the Client's
``result(page_size=…)``, as ``run`` reads them), through dbt-activate's own connection.

Caveat: crucible-emulator (https://pypi.org/project/crucible-emulator/) translates GoogleSQL to DuckDB
in one local process behind BigQuery's REST API; these figures say that the BigQuery SQL runs and how it
scales on DuckDB there, not how fast BigQuery runs it (slots, bytes scanned and cost are not emulated).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.bigquery starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
import diff_runner

from dbt_activate.warehouse.bigquery import BigQueryDialect
from dbt_activate.warehouse.connection import WarehouseConnection
from tests.support import bigquery

MODEL = """create or replace table {table} as select
 n as id,
 concat('user', cast(n as string), '@example.com') as email,
 concat('First ', cast(mod(n, 997) as string)) as first_name,
 concat('Last ', cast(mod(n, 991) as string)) as last_name,
 mod(n, 101) as lead_score,
 mod(n, 7) = 0 as is_customer,
 cast(mod(n, 100000) / 100 as numeric) as mrr,
 timestamp_add(timestamp '2024-01-01 00:00:00+00', interval n second) as updated_at,
 date_add(date '2015-01-01', interval mod(n, 3650) day) as signup_date,
 case mod(n, 3) when 0 then 'FR' when 1 then 'GB' else 'RU' end as country
from unnest(generate_array(0, {last})) as n"""
# 1% changed, 0.1% deleted, 0.1% inserted: the model rebuilt from the first one.
MUTATED = """create or replace table {model} as
select id, email, case when mod(id, 100) = 0 then 'Changed' else first_name end as first_name, last_name,
       lead_score, is_customer, mrr, updated_at, signup_date, country
from {raw} where mod(id, 1000) <> 1
union all
select id + {rows}, concat(email, '.new'), first_name, last_name, lead_score, is_customer, mrr, updated_at,
       signup_date, country
from {raw} where mod(id, 1000) = 2"""


class BigQuery(diff_runner.Warehouse):
    name = "bigquery (crucible-emulator 0.1.0a2)"
    title = "diff_bigquery: dbt-activate's diff statement on crucible-emulator"
    dialect = BigQueryDialect()

    def server(self, port: int | None) -> AbstractContextManager[int]:
        return bigquery.crucible_server()

    def connect(self, port: int, name: str) -> tuple[Any, str]:
        return bigquery.client(port), name  # a dataset per run

    def table(self, schema: str, name: str) -> str:
        return self.dialect.table(schema, name)

    def generate(self, conn: WarehouseConnection, schema: str, rows: int) -> None:
        conn.execute(self.dialect.create_schema(schema))
        conn.execute(MODEL.format(table=self.table(schema, diff_runner.MODEL), last=int(rows) - 1))

    def change(self, conn: WarehouseConnection, schema: str, rows: int) -> str:
        # The emulator has no UPDATE or DELETE: the changed model is a new table.
        relation = self.table(schema, "contacts")
        conn.execute(MUTATED.format(model=relation, raw=self.table(schema, diff_runner.MODEL), rows=int(rows)))
        return relation


if __name__ == "__main__":
    diff_runner.main(BigQuery(), __doc__)
