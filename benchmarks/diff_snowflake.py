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

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.fakesnow starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_common import report

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import KEY, OP, Column
from dbt_activate.warehouse.snowflake import SnowflakeDialect
from tests.support import fakesnow

MODEL = """create or replace table bench.raw_contacts as select
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


def measure(port: int, rows: int) -> dict[str, object]:
    dialect = SnowflakeDialect()
    conn = WarehouseConnection(fakesnow.connect(port, f"bench_{uuid.uuid4().hex[:8]}", schema="bench"), dialect)
    try:
        t0 = time.perf_counter()
        conn.execute("create schema if not exists bench")
        conn.execute(MODEL.format(rows=int(rows)))
        types = conn.query(dialect.columns_query(), ["bench", "raw_contacts", None, None])
        columns = [Column(str(name), str(kind)) for name, kind in types]
        keys = [c for c in columns if c.name == "ID"]
        relation = "bench.raw_contacts"
        initial = dialect.initial_query(relation, keys, columns, None).sql
        snapshot = "bench.snapshot_contacts"
        conn.execute(f"create or replace table {snapshot} as select {KEY} as sync_key, __activate_fp as fingerprint, "
                     f"cast(null as varchar) as record_identity from ({initial}) i")
        conn.execute(f"update {relation} set first_name = 'Changed' where mod(id, 100) = 0")
        conn.execute(f"delete from {relation} where mod(id, 1000) = 1")
        conn.execute(f"insert into {relation} select id + {int(rows)}, email || '.new', first_name, last_name, "
                     f"lead_score, is_customer, mrr, updated_at, signup_date, country from {relation} "
                     "where mod(id, 1000) = 2")
        prepared = time.perf_counter() - t0
        diff = dialect.diff_query(relation, snapshot, keys, columns, None).sql
        started = time.perf_counter()
        counts = {str(op): int(n) for op, n in conn.query(f"select {OP}, count(*) from ({diff}) d group by {OP}")}
        count_seconds = time.perf_counter() - started
        started = time.perf_counter()
        fetched = sum(len(chunk) for chunk in conn.stream(diff, 5000))
        fetch_seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {"warehouse": "snowflake (fakesnow 0.12.1)", "rows": rows, "diff_counts": counts,
            "count_seconds": round(count_seconds, 2), "fetch_seconds": round(fetch_seconds, 2),
            "rows_fetched": fetched, "setup_seconds": round(prepared, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with fakesnow.fakesnow_server() as port:
        for rows in args.rows:
            result = measure(port, rows)
            print(f"  {result}", file=sys.stderr)
            results.append(result)
    report("diff_snowflake: dbt-activate's diff statement on fakesnow", {"results": results}, args.json)


if __name__ == "__main__":
    main()
