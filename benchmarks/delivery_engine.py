"""Benchmark: how many records/s the delivery engine pushes when the vendor is not the limit.

    python benchmarks/delivery_engine.py                          # HubSpot destination, 100,000 records
    python benchmarks/delivery_engine.py --destination webhook
    python benchmarks/delivery_engine.py --concurrency 2 --repeat 5

What runs: an emulator as its own process (HubSpot, or the webhook receiver) with no rate limit
and no latency, and in this process the engine as the runner drives it: records already in memory
(the warehouse is not measured), batches of the destination's size, ``deliver()`` with a
``RetryPolicy`` and a ``RateLimiter`` (set far above what is reached, so its bookkeeping is
paid for but never waits), at most ``--concurrency`` batches in flight (default: the destination's
``max_concurrency``), through the destination's ``HttpSession``. Records carry text, a float, a
boolean and a date, so the HubSpot formatting runs for every type a contact usually has.

Reported per run and as best/median: records/s, and the CPU seconds of this process (the engine)
and of the emulator, which share the machine's cores. ``engine_records_per_cpu_second`` is the
engine's own cost, the figure that moves least when other processes load the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dbt_activate.core.types import Batch, FieldSpec, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.delivery import RateLimiter, RetryPolicy, deliver
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.hubspot.destination import HubSpotDestination
from dbt_activate.destinations.webhook.destination import WebhookDestination

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_common import Emulator, emulator, report

TOKEN = "pat-na1-benchmark-token-00000000"
FIELDS = ("email", "firstname", "lastname", "score", "is_vip", "signup_date")
SCHEMA = {"properties": {"contacts": [{"name": "score", "type": "number"}, {"name": "is_vip", "type": "bool"},
                                      {"name": "signup_date", "type": "date"}]}}


def records(count: int) -> list[Record]:
    return [Record(str(i), {"email": f"user{i}@example.com", "firstname": f"First {i}", "lastname": "Lovelace",
                            "score": i * 0.5, "is_vip": i % 2 == 0, "signup_date": dt.date(2024, 1, 1 + i % 28)})
            for i in range(count)]


def destination(kind: str, emu: Emulator, concurrency: int | None) -> Destination:
    extra: dict[str, Any] = {} if concurrency is None else {"max_concurrency": concurrency}
    if kind == "hubspot":
        return HubSpotDestination("bench", {"type": "hubspot", "access_token": TOKEN, "base_url": emu.base_url,
                                            **extra})
    return WebhookDestination("bench", {"type": "webhook", "url": f"{emu.base_url}/hook", **extra})


async def run_once(dest: Destination, target: SyncTarget, batches: list[Batch], limited: bool) -> float:
    """Seconds to deliver every batch, at most ``effective_concurrency`` in flight (as the pipeline does)."""
    limiter = RateLimiter(RateLimit(1_000_000, 1.0)) if limited else None
    policy = RetryPolicy()
    slots = asyncio.Semaphore(dest.effective_concurrency)

    async def send(batch: Batch) -> None:
        async with slots:
            result = await deliver(dest, target, batch, limiter=limiter, policy=policy)
        if result.rejected:
            raise RuntimeError(f"records were rejected: {dict(list(result.rejected.items())[:3])}")

    await dest.open(target)
    try:
        started = time.perf_counter()
        await asyncio.gather(*(send(b) for b in batches))
        return time.perf_counter() - started
    finally:
        await dest.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--destination", choices=("hubspot", "webhook"), default="hubspot")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=None, help="batches in flight (default: the type's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-limiter", action="store_true", help="deliver without a RateLimiter")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    target = SyncTarget("bench__contacts", "contacts", Mode.UPSERT, tuple(FieldSpec(f, f) for f in FIELDS),
                        ("email",), run_id="bench")
    data = records(args.records)
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        schema = Path(tmp) / "schema.json"
        schema.write_text(json.dumps(SCHEMA))
        vendor_args = ["--token", TOKEN, "--schema", str(schema)] if args.destination == "hubspot" else []
        with emulator(args.destination, *vendor_args) as emu:
            dest = destination(args.destination, emu, args.concurrency)
            size = dest.effective_batch_size
            batches = [Batch(Operation.UPSERT, data[i:i + size]) for i in range(0, len(data), size)]
            for _ in range(args.repeat):
                cpu, emu_cpu = time.process_time(), emu.cpu_seconds()
                seconds = asyncio.run(run_once(dest, target, batches, not args.no_limiter))
                engine_cpu = time.process_time() - cpu
                runs.append({"seconds": round(seconds, 3), "records_per_s": round(args.records / seconds),
                             "engine_cpu_seconds": round(engine_cpu, 2),
                             "engine_records_per_cpu_second": round(args.records / engine_cpu),
                             "emulator_cpu_seconds": round(emu.cpu_seconds() - emu_cpu, 2)})
            received = emu.control("counters")["records"]
    rates = [r["records_per_s"] for r in runs]
    command = f"python benchmarks/delivery_engine.py --destination {args.destination} --records {args.records}"
    report(f"delivery_engine: deliver() over {args.destination}, emulator without limits", {
        "command": command + (f" --concurrency {args.concurrency}" if args.concurrency else "")
                   + (" --no-limiter" if args.no_limiter else ""),
        "load_average_1m_before": load_before,
        "records_per_run": args.records, "batch_size": size, "concurrency": dest.effective_concurrency,
        "rate_limiter": not args.no_limiter,
        "records_received_by_emulator": received,
        "best_records_per_s": max(rates), "median_records_per_s": round(statistics.median(rates)),
        "runs": runs,
    }, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
