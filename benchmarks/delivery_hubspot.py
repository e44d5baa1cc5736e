"""Benchmark: a HubSpot sync against an emulator enforcing HubSpot's 100 requests per 10 seconds.

    python benchmarks/delivery_hubspot.py                 # 20,000 rows
    python benchmarks/delivery_hubspot.py --rows 60000    # long enough to show the steady state

What runs: the HubSpot emulator as its own process (``python -m dbt_activate.testing hubspot
--rate-limit vendor``: a rolling 100 requests / 10 s window, 429 with HubSpot's body and headers
beyond it), a throwaway dbt project on DuckDB whose model generates ``--rows`` contacts, ``dbt
build`` (not timed), then ``dbt-activate run`` as a user runs it (timed). At 100 records per
request the window allows 1,000 records/s; the target is >= 95% of that and no 429 after the first
window. A poller reads the emulator's counters every 50 ms to time the requests and the 429s.

Reported: the sync's duration (``activate_results.json``: diff, extraction and delivery), the
delivery (first request to last record, as the emulator saw them), records/s over each, and
``sustained_records_per_s``: 100 requests x 100 records divided by the time between the openings
of consecutive windows (request 1, 101, 201, ...). HubSpot lets the first window go out as a burst,
so a 20,000-row sync (two windows) beats 1,000 records/s over its delivery; the sustained figure is
what the limiter keeps up once its history covers a window, i.e. what a long sync gets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_common import CounterPoller, emulator, report

TOKEN = "pat-na1-benchmark-token-00000000"
WINDOW, CEILING_REQUESTS = 10.0, 100
BIN = Path(sys.executable).parent
SCHEMA = {"properties": {"contacts": [
    {"name": "customer_id", "type": "number"}, {"name": "full_name"}, {"name": "score", "type": "number"},
    {"name": "is_vip", "type": "bool"}, {"name": "signup_date", "type": "date"}]}}
MODEL = """select i as customer_id, 'user' || i || '@example.com' as email, 'Customer ' || i as full_name,
       i * 0.5 as score, i % 2 = 0 as is_vip, date '2024-01-01' + cast(i % 365 as integer) as signup_date
from range(1, {rows} + 1) t(i)
"""


def write_project(root: Path, rows: int, base_url: str) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(yaml.safe_dump(
        {"name": "bench", "version": "1.0", "config-version": 2, "profile": "bench"}))
    (root / "profiles.yml").write_text(yaml.safe_dump({"bench": {"target": "dev", "outputs": {"dev": {
        "type": "duckdb", "path": str(root / "wh.duckdb"), "schema": "main", "threads": 1}}}}))
    (root / "models" / "customers.sql").write_text(MODEL.format(rows=rows))
    activate = [{"destination": "crm", "object": "contacts", "mode": "upsert", "primary_key": "customer_id",
                 "match": {"email": "email"}, "name": "customers_hubspot"}]
    (root / "models" / "schema.yml").write_text(yaml.safe_dump(
        {"version": 2, "models": [{"name": "customers", "config": {"meta": {"activate": activate}}}]}))
    (root / "destinations.yml").write_text(yaml.safe_dump(
        {"crm": {"type": "hubspot", "access_token": TOKEN, "base_url": base_url}}))


def run(argv: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1"}
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=3600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the emulator adds to every request")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--timeline", type=Path, default=None,
                        help="write the emulator's counters, sampled every 50 ms, to this CSV file")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="bench_hubspot_") as tmp:
        root = Path(tmp)
        schema = root / "schema.json"
        schema.write_text(json.dumps(SCHEMA))
        with emulator("hubspot", "--token", TOKEN, "--rate-limit", "vendor", "--latency", str(args.latency),
                      "--schema", str(schema)) as emu:
            write_project(root, args.rows, emu.base_url)
            build = run([str(BIN / "dbt"), "build", "--project-dir", str(root), "--profiles-dir", str(root)], root)
            if build.returncode != 0:
                raise SystemExit(f"dbt build failed:\n{build.stdout[-3000:]}")
            with CounterPoller(emu) as poller:
                started = time.perf_counter()
                proc = run([str(BIN / "dbt-activate"), "run"], root)
                wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(f"dbt-activate run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            result = json.loads((root / "target" / "activate_results.json").read_text())["results"][0]
            stored = len(emu.control("records/contacts"))
    if args.timeline is not None:
        args.timeline.write_text("seconds,requests,throttled,records\n" + "".join(
            f"{s.at:.3f},{s.requests},{s.throttled},{s.records}\n" for s in poller.samples))
    report("delivery_hubspot: sync against HubSpot's 100 requests / 10 s", {
        "command": f"python benchmarks/delivery_hubspot.py --rows {args.rows}"
                   + (f" --latency {args.latency}" if args.latency else ""),
        "load_average_1m_before": load_before,
        **measure(poller, result, wall, stored, args.rows),
    }, args.json)
    return 0


def measure(poller: CounterPoller, result: dict[str, Any], wall: float, stored: int, rows: int) -> dict[str, Any]:
    sent = result["counts"]["sent"]
    first = poller.first(lambda s: s.requests > 0)
    done = poller.first(lambda s: s.records >= sent)
    assert first is not None and done is not None, "the emulator saw no request"
    # Sampled every 50 ms: an event happened within the interval before the sample that saw it.
    start = first.at - poller.interval / 2
    delivery = done.at - start
    # Window k opens with request 100k+1: the time between openings is what the limiter sustains.
    openings = [start]
    for k in range(1, poller.samples[-1].requests // CEILING_REQUESTS + 1):
        opened = poller.first(lambda s, k=k: s.requests > k * CEILING_REQUESTS)
        if opened is not None:
            openings.append(opened.at - poller.interval / 2)
    period = (openings[-1] - openings[0]) / (len(openings) - 1) if len(openings) > 1 else None
    sustained = None if period is None else round(CEILING_REQUESTS * 100 / period)
    window_end = start + WINDOW
    throttled_by_window_end = max((s.throttled for s in poller.samples if s.at <= window_end), default=0)
    ceiling = round(CEILING_REQUESTS * 100 / WINDOW)
    return {
        "rows": rows, "records_sent": sent, "records_stored_in_emulator": stored,
        "sync_status": result["status"],
        "cli_wall_seconds": round(wall, 2),
        "sync_seconds": result["duration_seconds"],
        "delivery_seconds": round(delivery, 2),
        "records_per_s_over_sync": round(sent / result["duration_seconds"]),
        "records_per_s_over_delivery": round(sent / delivery),
        "window_period_seconds": None if period is None else round(period, 2),
        "sustained_records_per_s": sustained,
        "ceiling_records_per_s": ceiling,
        "sustained_share_of_ceiling": None if sustained is None else round(sustained / ceiling, 3),
        "requests": poller.samples[-1].requests,
        "http_429_total": poller.samples[-1].throttled,
        "http_429_after_first_window": poller.samples[-1].throttled - throttled_by_window_end,
    }


if __name__ == "__main__":
    raise SystemExit(main())
