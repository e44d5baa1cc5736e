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

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.bigquery starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_common import report

from dbt_activate.warehouse.bigquery import BigQueryDialect
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import KEY, OP, Column
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


def measure(port: int, rows: int) -> dict[str, object]:
    dialect = BigQueryDialect()
    dataset = f"bench_{uuid.uuid4().hex[:8]}"
    conn = WarehouseConnection(bigquery.client(port), dialect)
    try:
        t0 = time.perf_counter()
        conn.execute(dialect.create_schema(dataset))
        raw, relation = dialect.table(dataset, "raw_contacts"), dialect.table(dataset, "contacts")
        conn.execute(MODEL.format(table=raw, last=int(rows) - 1))
        types = conn.query(dialect.columns_query(), [dataset, "raw_contacts", None, None])
        columns = [Column(str(name), str(kind)) for name, kind in types]
        keys = [c for c in columns if c.name == "id"]
        initial = dialect.initial_query(raw, keys, columns, None).sql
        snapshot = dialect.table(dataset, "snapshot_contacts")
        conn.execute(f"create or replace table {snapshot} as select {KEY} as sync_key, __activate_fp as fingerprint, "
                     f"cast(null as string) as record_identity from ({initial}) i")
        conn.execute(MUTATED.format(model=relation, raw=raw, rows=int(rows)))
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
    return {"warehouse": "bigquery (crucible-emulator 0.1.0a2)", "rows": rows, "diff_counts": counts,
            "count_seconds": round(count_seconds, 2), "fetch_seconds": round(fetch_seconds, 2),
            "rows_fetched": fetched, "setup_seconds": round(prepared, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with bigquery.crucible_server() as port:
        for rows in args.rows:
            result = measure(port, rows)
            print(f"  {result}", file=sys.stderr)
            results.append(result)
    report("diff_bigquery: dbt-activate's diff statement on crucible-emulator", {"results": results}, args.json)


if __name__ == "__main__":
    main()
