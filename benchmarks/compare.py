"""dbt-activate against the tools a data team would pick instead, in the same run, on the same machine.

    python benchmarks/compare.py                                  # 100k rows, DuckDB and PostgreSQL
    python benchmarks/compare.py --rows 100000 1000000 --json results.json
    python benchmarks/compare.py --tools dbt-activate handwritten --warehouses duckdb
    python benchmarks/compare.py --rows 1000000 --repeat 3    # (a) three times per tool, interleaved

Peers are installed from PyPI into their own virtual environments under ``benchmarks/.peers`` on
first use (``--peers-dir``): the hand-written script (httpx), dlt (``@dlt.destination`` sink,
incremental on ``updated_at``) and drt-core (its ``rest_api`` destination pointed at the emulator).
Every tool syncs the same dbt model (``contacts``, email key, 18 columns) to the HubSpot emulator
(CRM v3 batch upsert, 100 records per request), each in its own emulator process:

  (a) first full sync;  (b) after a seeded mutation (1% changed, 0.1% deleted, 0.1% inserted) and
  ``dbt build``, the incremental sync, then the emulator is compared with the model: missing, stale
  (lead score or plan differ) and not-deleted records;  (c) 20k rows against HubSpot's 100 requests
  per 10 s with 50 ms latency.

Per tool and scenario: wall and CPU seconds and peak RSS of the tool's process, the emulator's
requests, records, 429s and CPU seconds. ``dbt build`` is not timed. With ``--repeat N`` the first
full sync runs N times per tool, each on a fresh emulator with the tool's state emptied, the tools
taking turns so that each meets the same load on a shared machine; the medians close the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_data import COLUMNS, Warehouse
from compare_peers import PEERS, Launch, Peer, peer_python, peer_versions
from delivery_common import Emulator, emulator, report

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
TOKEN = "test-token"
HUBSPOT_SCHEMA = {"properties": {"contacts": [{"name": c} for c in COLUMNS if c != "email"]}}


@dataclass
class Figures:
    tool: str
    scenario: str
    warehouse: str
    rows: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    requests: int
    records: int
    throttled: int
    records_per_s: float
    exit_code: int
    # The emulator's own CPU during the run: it shares the two cores with the tool, and a tool
    # that waits for each answer (the hand-written script) adds it to its wall time.
    emulator_cpu_s: float = 0.0
    run: int = 1  # which of the --repeat runs of a scenario
    missing: int | None = None
    stale: int | None = None
    not_deleted: int | None = None


def measure(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, peak RSS MB, exit code, output tail) of one process (and the children it waited for).

    Peak RSS is the process's own high-water mark (``VmHWM``), polled until it exits: ``ru_maxrss`` of a
    child starts from its parent's at fork, and this script's own memory grows with the checks.
    """
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=output,
                                   stderr=subprocess.STDOUT, text=True)
        peak_kb = 0
        stop = threading.Event()

        def poll() -> None:
            nonlocal peak_kb
            while not stop.wait(0.02):
                with contextlib.suppress(OSError, ValueError):
                    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak_kb = max(peak_kb, int(line.split()[1]))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stop.set()
        poller.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        tail = output.read()[-3000:]
    return wall, usage.ru_utime + usage.ru_stime, peak_kb / 1024, process.returncode, tail


def start_hubspot(*extra: str) -> Any:
    schema = Path(tempfile.mkstemp(suffix=".json")[1])
    schema.write_text(json.dumps(HUBSPOT_SCHEMA))
    return emulator("hubspot", "--schema", str(schema), *extra)


def check(emu: Emulator, wh: Warehouse) -> dict[str, int]:
    """Missing, stale and not-deleted records: the emulator's contacts against the model."""
    model = wh.model_rows()
    seen: dict[str, tuple[str, str]] = {}
    for record in emu.control("records/contacts", timeout=600):  # 1M records take a while to list
        props = record["properties"]
        seen[props.get("email", "")] = (str(props.get("lead_score", "")), str(props.get("plan", "")))
    return {"missing": sum(1 for e in model if e not in seen),
            "stale": sum(1 for e, v in model.items() if e in seen and seen[e] != v),
            "not_deleted": sum(1 for e in seen if e not in model)}


class Runner:
    """One warehouse and row count: the dbt project, the tools, their emulators."""

    def __init__(self, kind: str, rows: int, work: Path, peers_dir: Path, tools: list[str], repeat: int = 1) -> None:
        self.kind, self.rows, self.work, self.peers_dir, self.tools = kind, rows, work, peers_dir, tools
        self.repeat = repeat
        self.pg_database = f"bench_{uuid.uuid4().hex[:8]}" if kind == "postgres" else ""
        self.wh = Warehouse(kind, work, self.pg_database)

    def setup(self) -> None:
        if self.kind == "postgres":
            _admin(f"create database {self.pg_database}")
        self.wh.generate(self.rows)
        self.wh.write_dbt_project([{"destination": "crm", "object": "contacts", "mode": "mirror",
                                    "primary_key": "email", "match": {"email": "email"}, "name": "contacts_hubspot"}])
        self.dbt_build()

    def teardown(self) -> None:
        if self.kind == "postgres":
            _admin(f"drop database if exists {self.pg_database} with (force)")

    def forget(self, tool: str) -> None:
        """Empty the tool's state, so that its next run is a first full sync again."""
        if tool == "dbt-activate":
            self.wh.execute(f"drop schema if exists {self.wh.schema}_activate cascade")
            shutil.rmtree(self.work / "target" / "activate", ignore_errors=True)
        else:
            shutil.rmtree(self.work / f"state_{tool}", ignore_errors=True)

    def dbt_build(self) -> None:
        proc = subprocess.run([str(BIN / "dbt"), "build", "--project-dir", str(self.work), "--profiles-dir",
                               str(self.work), "--quiet"], capture_output=True, text=True,
                              env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
        if proc.returncode != 0:
            raise RuntimeError(f"dbt build failed: {proc.stdout[-2000:]}")

    def launch(self, tool: str, emu: Emulator, requests_per_second: float | None) -> Launch:
        if tool == "dbt-activate":
            crm: dict[str, Any] = {"type": "hubspot", "access_token": TOKEN, "base_url": emu.base_url}
            if requests_per_second is None:
                # The emulator enforces no limit here and the peers keep none: lift HubSpot's default
                # 100 requests / 10 s, as a user of an account with a higher limit would.
                crm["rate_limit"] = {"requests": 100_000, "per_seconds": 1}
            (self.work / "destinations.yml").write_text(yaml.safe_dump({"crm": crm}))
            return Launch([str(BIN / "dbt-activate"), "run", "-q", "--project-dir", str(self.work),
                           "--profiles-dir", str(self.work)])
        peer: Peer = PEERS[tool]
        database = str(self.wh.duckdb_path) if self.kind == "duckdb" else self.pg_database
        return peer.launch(peer_python(self.peers_dir, peer), self.kind, database, f"{self.wh.schema}.contacts",
                           emu.base_url, self.work / f"state_{tool}", requests_per_second)

    def run_tool(self, tool: str, scenario: str, emu: Emulator, requests_per_second: float | None = None) -> Figures:
        emu.control("counters/reset", {})
        launch = self.launch(tool, emu, requests_per_second)
        emulator_cpu = emu.cpu_seconds()
        wall, cpu, rss, code, tail = measure(launch.argv, cwd=launch.cwd or self.work, env=launch.env)
        emulator_cpu = emu.cpu_seconds() - emulator_cpu
        if code != 0:
            print(f"  ! {tool} {scenario} exited {code}: {tail[-800:]}", file=sys.stderr)
        counts = emu.control("counters")
        return Figures(tool, scenario, self.kind, self.rows, round(wall, 2), round(cpu, 2), round(rss, 1),
                       counts["requests"], counts["records"], counts["throttled"],
                       round(counts["records"] / wall, 1) if wall else 0.0, code, round(emulator_cpu, 2))


def _admin(sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    con.autocommit = True
    con.cursor().execute(sql)
    con.close()


def full_and_incremental(runner: Runner, emit: Callable[[Figures], None]) -> None:
    """Scenarios (a) and (b) for every tool: one emulator per tool kept across both syncs."""

    for run in range(1, runner.repeat):  # the extra first syncs of --repeat, tools taking turns
        for tool in runner.tools:
            with start_hubspot() as emu:
                runner.forget(tool)
                emit(replace(runner.run_tool(tool, "a_full", emu), run=run))
    with contextlib.ExitStack() as stack:
        emus = {tool: stack.enter_context(start_hubspot()) for tool in runner.tools}
        for tool in runner.tools:
            runner.forget(tool)
            emit(replace(runner.run_tool(tool, "a_full", emus[tool]), run=runner.repeat))
        mutation = runner.wh.mutate(runner.rows, seed=42)
        runner.dbt_build()
        print(f"  mutation: {asdict(mutation)}", file=sys.stderr)
        for tool in runner.tools:
            figures = runner.run_tool(tool, "b_incremental", emus[tool])
            for key, value in check(emus[tool], runner.wh).items():
                setattr(figures, key, value)
            emit(figures)


def rate_limited(runner: Runner, emit: Callable[[Figures], None]) -> None:
    """Scenario (c): HubSpot's 100 requests / 10 s and 50 ms latency, a first full sync per tool."""
    for tool in runner.tools:
        with start_hubspot("--rate-limit", "vendor", "--latency", "0.05") as emu:
            # Peers are configured as their users would for HubSpot: 10 requests/s where the tool has the knob.
            emit(runner.run_tool(tool, "c_rate_limited", emu, requests_per_second=10))


def medians(results: list[Figures]) -> list[dict[str, Any]]:
    """Median wall, CPU and records/s per warehouse, rows, scenario and tool, over its runs."""
    groups: dict[tuple[str, int, str, str], list[Figures]] = {}
    for figures in results:
        groups.setdefault((figures.warehouse, figures.rows, figures.scenario, figures.tool), []).append(figures)
    return [{"warehouse": warehouse, "rows": rows, "scenario": scenario, "tool": tool, "runs": len(runs),
             "wall_s": round(statistics.median(f.wall_s for f in runs), 2),
             "cpu_s": round(statistics.median(f.cpu_s for f in runs), 2),
             "records_per_s": round(statistics.median(f.records_per_s for f in runs), 1),
             "emulator_cpu_s": round(statistics.median(f.emulator_cpu_s for f in runs), 2)}
            for (warehouse, rows, scenario, tool), runs in groups.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--rate-limited-rows", type=int, default=20_000)
    parser.add_argument("--warehouses", nargs="+", default=["duckdb", "postgres"], choices=["duckdb", "postgres"])
    parser.add_argument("--tools", nargs="+", default=["dbt-activate", *PEERS],
                        choices=["dbt-activate", *PEERS])
    parser.add_argument("--skip-rate-limited", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the first full sync per tool (median reported)")
    parser.add_argument("--peers-dir", type=Path, default=HERE / ".peers")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    results: list[Figures] = []

    def emit(figures: Figures) -> None:
        results.append(figures)
        print("  " + json.dumps(asdict(figures)), file=sys.stderr)

    for peer in (PEERS[t] for t in args.tools if t in PEERS):
        peer_python(args.peers_dir, peer, install=True)
    for kind in args.warehouses:
        for rows in args.rows:
            with tempfile.TemporaryDirectory(prefix=f"compare_{kind}_") as work:
                runner = Runner(kind, rows, Path(work), args.peers_dir, args.tools, max(1, args.repeat))
                print(f"# {kind}, {rows:,} rows", file=sys.stderr)
                try:
                    runner.setup()
                    full_and_incremental(runner, emit)
                finally:
                    runner.teardown()
        if not args.skip_rate_limited:
            with tempfile.TemporaryDirectory(prefix=f"compare_rl_{kind}_") as work:
                runner = Runner(kind, args.rate_limited_rows, Path(work), args.peers_dir, args.tools)
                try:
                    runner.setup()
                    rate_limited(runner, emit)
                finally:
                    runner.teardown()
    document = {"figures": [asdict(f) for f in results], "medians": medians(results),
                "peer_versions": peer_versions(args.peers_dir)}
    if args.json:
        args.json.write_text(json.dumps(document, indent=2))
    report("compare: dbt-activate and its peers", document, as_json=False)


if __name__ == "__main__":
    main()
