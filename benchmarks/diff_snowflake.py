"""The in-warehouse diff on Snowflake's emulator: seconds to diff a model of N rows against its snapshot.

    python benchmarks/diff_snowflake.py                 # 1M rows; starts fakesnow's server itself
    python benchmarks/diff_snowflake.py --rows 100000 --json

A 10-column model (text, numbers, a boolean, a timestamp, a date) is generated with Snowflake's
``GENERATOR``, its snapshot is built with dbt-activate's own Snowflake fingerprint SQL (as a first sync
leaves it), 1% of rows are changed, 0.1% deleted and 0.1% inserted, then the diff statement
(``SnowflakeDialect.diff_query``, the one ``run`` streams) is timed as ``count`` (what ``plan`` runs)
and ``fetch`` (every changed row streamed through the connector's ``fetchmany``, as ``run`` reads them).

Caveat: fakesnow (https://github.com/tekumara/fakesnow) is an emulator that translates Snowflake SQL to
DuckDB in one local process; these figures say that the SQL runs and how it scales on DuckDB behind a
Snowflake API, not how fast a Snowflake warehouse runs it.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.fakesnow starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
import diff_runner

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.snowflake import SnowflakeDialect
from tests.support import fakesnow

MODEL = """create or replace table {table} as select
 seq4() as id,
 'user' || seq4() || '@example.com' as email,
 'First ' || mod(seq4(), 997) as first_name,
 'Last ' || mod(seq4(), 991) as last_name,
 mod(seq4(), 101) as lead_score,
 mod(seq4(), 7) = 0 as is_customer,
 cast(mod(seq4(), 100000) / 100 as number(10, 2)) as mrr,
 dateadd(second, seq4(), cast('2024-01-01 00:00:00' as timestamp_ntz)) as updated_at,
 dateadd(day, mod(seq4(), 3650), cast('2015-01-01' as date)) as signup_date,
 case mod(seq4(), 3) when 0 then 'FR' when 1 then 'GB' else 'RU' end as country
from table(generator(rowcount => {rows}))"""


class Snowflake(diff_runner.Warehouse):
    name = "snowflake (fakesnow 0.12.1)"
    title = "diff_snowflake: dbt-activate's diff statement on fakesnow"
    dialect = SnowflakeDialect()
    text_type = "varchar"

    def server(self, port: int | None) -> AbstractContextManager[int]:
        return fakesnow.fakesnow_server()

    def connect(self, port: int, name: str) -> tuple[Any, str]:
        return fakesnow.connect(port, name, schema="bench"), "bench"  # a database per run

    def generate(self, conn: WarehouseConnection, schema: str, rows: int) -> None:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(MODEL.format(table=self.table(schema, diff_runner.MODEL), rows=int(rows)))

    def change(self, conn: WarehouseConnection, schema: str, rows: int) -> str:
        relation = self.table(schema, diff_runner.MODEL)  # changed in place
        conn.execute(f"update {relation} set first_name = 'Changed' where mod(id, 100) = 0")
        conn.execute(f"delete from {relation} where mod(id, 1000) = 1")
        conn.execute(f"insert into {relation} select id + {int(rows)}, email || '.new', first_name, last_name, "
                     f"lead_score, is_customer, mrr, updated_at, signup_date, country from {relation} "
                     "where mod(id, 1000) = 2")
        return relation


if __name__ == "__main__":
    diff_runner.main(Snowflake(), __doc__)
