"""dlt's reverse-ETL pattern: a resource reading the model table, incremental on ``updated_at``, and a
``@dlt.destination`` sink POSTing batches of 100 to HubSpot's batch upsert (sleeping on 429).

This follows dlt's documented "reverse ETL" recipe (custom destination with batch_size); dlt keeps
the cursor in its pipeline state under ``--pipelines-dir``, so a second run sends only rows whose
``updated_at`` moved past the last value. Deletions are not seen by a cursor. Run by compare.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import dlt
import httpx
from dlt.common.schema import TTableSchema
from dlt.common.typing import TDataItems

COUNTS = {"sent": 0, "throttled": 0}


def _connect(warehouse: str, database: str) -> Any:
    if warehouse == "duckdb":
        import duckdb

        return duckdb.connect(database, read_only=True)
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()
    http = httpx.Client(base_url=args.base_url, headers={"Authorization": f"Bearer {args.token}"}, timeout=30)

    @dlt.resource(name="contacts", primary_key="email")
    def contacts(updated_at: Any = dlt.sources.incremental(  # noqa: B008 - dlt's own idiom
            "updated_at", initial_value=dt.datetime(1970, 1, 1))) -> Iterator[list[dict[str, Any]]]:
        con = _connect(args.warehouse, args.database)
        cur = con.cursor()
        placeholder = "?" if args.warehouse == "duckdb" else "%s"
        cur.execute(f"select * from {args.table} where updated_at >= {placeholder}",
                    (updated_at.last_value.replace(tzinfo=None),))
        names = [d[0] for d in cur.description]
        while chunk := cur.fetchmany(10_000):
            yield [dict(zip(names, row, strict=True)) for row in chunk]

    @dlt.destination(batch_size=100, name="hubspot", naming_convention="direct")
    def hubspot(items: TDataItems, table: TTableSchema) -> None:
        inputs = [{"id": item["email"], "idProperty": "email",
                   "properties": {k: "" if v is None else str(v) for k, v in item.items()
                                  if k != "email" and not k.startswith("_dlt")}} for item in items]
        for _attempt in range(10):
            response = http.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})
            if response.status_code == 429:
                COUNTS["throttled"] += 1
                time.sleep(float(response.headers.get("Retry-After", 10)))
                continue
            response.raise_for_status()
            COUNTS["sent"] += len(inputs)
            return

    pipeline = dlt.pipeline(pipeline_name="contacts_to_hubspot", destination=hubspot,
                            pipelines_dir=args.pipelines_dir, progress=None)
    pipeline.run(contacts())
    print(json.dumps(COUNTS))


if __name__ == "__main__":
    main()
