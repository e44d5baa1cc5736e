"""Benchmark: the engine's CPU per record on a first sync, without the network and the warehouse.

    python benchmarks/record_path.py                    # 100,000 contacts rows, best of 5 runs
    python benchmarks/record_path.py --rows 200000 --repeat 9
    PYTHONPATH=/path/to/older/checkout python benchmarks/record_path.py   # the same for another version

What runs: the real ``Stream`` of a HubSpot ``mirror`` sync, in this process, on the rows a first
sync's scan yields for the 18-column contacts model of ``compare.py`` (text, integers, a boolean, a
decimal, a date and timestamps), served from memory in reads of ``FETCH_ROWS``. Everything the event
loop does per record runs: routing rows into records, the identity and fingerprint bookkeeping, the
in-flight log, batching, ``deliver()``, the HubSpot destination turning each batch into its request
body (``_prepare`` and ``json_body``, as ``write`` does before sending), the journal of
acknowledgements and its checkpoints (given to a state store that drops them). Only the HTTP
exchange and the warehouse are left out, which ``compare.py`` measures with them.

Why: on a shared VM the wall time of a 1M-row sync moves by 20% from one minute to the next, more
than most changes to the record path; the best of several in-process runs of the same work moves
by a few percent, so an older checkout (``PYTHONPATH``) can be compared with this one.
Reported: microseconds of CPU per record for every run, and the best.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

import dbt_activate
from dbt_activate.core.types import Batch, BatchResult, Mode, SyncTarget
from dbt_activate.delivery import json_body
from dbt_activate.destinations.hubspot.destination import HubSpotDestination
from dbt_activate.diff import FETCH_ROWS
from dbt_activate.stream import Stream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_data import COLUMNS, ROW_NUMBERS, ROWS_SQL
from delivery_common import report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.factories import engine_sync, resolved_sync


def scan_rows(rows: int) -> list[tuple[Any, ...]]:
    """What the first sync's scan yields: op, key, fingerprint, identity, duplicates, then the fields.

    The fields are compare.py's contacts model (``compare_data``'s SQL), made by DuckDB in memory,
    so the values and their Python types are the ones a sync of that model reads.
    """
    fields = duckdb.sql(f"{ROWS_SQL} {ROW_NUMBERS['duckdb'].format(start=1, stop=rows + 1)} order by i")
    return [("add", row[0], f"{i:032X}", None, 1, *row) for i, row in enumerate(fields.fetchall(), start=1)]


def chunks(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """The source seam: the scan's rows, read FETCH_ROWS at a time as ``WarehouseConnection.stream``."""
    for start in range(0, len(rows), FETCH_ROWS):
        yield rows[start:start + FETCH_ROWS]


class DroppingState:
    """The state seam: checkpoints are taken and dropped (the warehouse write is not measured)."""

    def apply_segment(self, *args: Any) -> None:
        return None


class OfflineHubSpot(HubSpotDestination):
    """HubSpot's own request building, acknowledged without sending."""

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        prepared = self._prepare(target, batch, result)
        json_body(prepared.body)
        return result


def one_run(rows: list[tuple[Any, ...]], work: Path) -> float:
    resolved = resolved_sync("contacts_hubspot", mode=Mode.MIRROR.value, columns=dict.fromkeys(COLUMNS, ""),
                             primary_key=("email",), destination="crm", object="contacts")
    destination = OfflineHubSpot("crm", {"type": "hubspot", "access_token": "t", "max_concurrency": 8})
    stream = Stream(engine_sync(resolved, destination, None, DroppingState(), work, run_id="bench"))

    async def send() -> Any:
        result = await stream.run(chunks(rows))
        await stream.checkpoint()
        return result

    started = time.process_time()
    result = asyncio.run(send())
    spent = time.process_time() - started
    if result.error is not None or result.counts.sent != len(rows):
        raise SystemExit(f"the pipeline did not acknowledge every row: {result.counts} {result.error}")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    rows = scan_rows(args.rows)
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="record_path_") as work:
            runs.append(one_run(rows, Path(work)) / args.rows * 1e6)
    report("record_path: the engine's CPU per record, first sync to HubSpot, no network", {
        "command": " ".join(["python", "benchmarks/record_path.py", *sys.argv[1:]]),
        "dbt_activate_from": str(Path(dbt_activate.__file__).resolve().parent),
        "rows": args.rows, "fetch_rows": FETCH_ROWS,
        "cpu_us_per_record": [round(r, 2) for r in runs],
        "best_cpu_us_per_record": round(min(runs), 2),
        "median_cpu_us_per_record": round(statistics.median(runs), 2),
    }, as_json=args.json)


if __name__ == "__main__":
    main()
