"""The script a data team writes by hand: read every row, POST batches of 100 to HubSpot, sleep on 429.

Deliberately what such scripts look like (no state, no deletes, no concurrency), written carefully:
values are sent as strings, Retry-After is honoured, 5xx is retried a few times. Run by compare.py:

    python handwritten.py --warehouse duckdb --database warehouse.duckdb --table main.contacts --base-url URL
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx

BATCH = 100


def rows(warehouse: str, database: str, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    if warehouse == "duckdb":
        import duckdb

        con = duckdb.connect(database, read_only=True)
    else:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    cur = con.cursor()
    cur.execute(f"select * from {table}")
    names = [d[0] for d in cur.description]
    return names, cur.fetchall()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", default="test-token")
    args = parser.parse_args()
    names, data = rows(args.warehouse, args.database, args.table)
    sent = throttled = 0
    with httpx.Client(base_url=args.base_url, headers={"Authorization": f"Bearer {args.token}"}, timeout=30) as http:
        for start in range(0, len(data), BATCH):
            inputs = []
            for row in data[start:start + BATCH]:
                record = dict(zip(names, row, strict=True))
                email = record.pop("email")
                inputs.append({"id": email, "idProperty": "email",
                               "properties": {k: "" if v is None else str(v) for k, v in record.items()}})
            for _attempt in range(10):
                response = http.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})
                if response.status_code == 429:
                    throttled += 1
                    time.sleep(float(response.headers.get("Retry-After", 10)))
                    continue
                if response.status_code >= 500:
                    time.sleep(1)
                    continue
                response.raise_for_status()
                sent += len(inputs)
                break
    print(json.dumps({"sent": sent, "throttled": throttled}))


if __name__ == "__main__":
    main()
