"""What a run costs when there is little or nothing to send: start-up, plan, state, lock, an empty diff.

    python benchmarks/startup.py                              # DuckDB, 100,000 rows, 5 runs of each scenario
    python benchmarks/startup.py --warehouse postgres --repeat 9
    python benchmarks/startup.py --scenarios noop             # only the run with nothing to send
    python benchmarks/startup.py --baseline /path/to/other/checkout   # that version and this one, taking turns

The project is built once: compare.py's contacts model (18 columns) of ``--rows`` rows, a HubSpot
``mirror`` sync to the HubSpot emulator (its own process, no rate limit), ``dbt build``, then a first
full sync that is not measured. Then ``dbt-activate run -q`` is timed as a user runs it, as a process
(wall and CPU seconds of the process, from ``wait4``), in three scenarios:

  noop          after ``dbt build`` rebuilt the model with the same rows: the sync runs (its model was
                rebuilt), its diff finds nothing, nothing is sent. The issue's "run with nothing to send".
  not_planned   after ``dbt test`` (or ``dbt ls``): the last dbt command rebuilt nothing, no sync runs.
  incremental   after a seeded mutation (1% changed, 0.1% deleted, 0.1% inserted) and ``dbt build``
                (neither timed): the incremental sync of ~1.2% of the rows.

With ``--baseline DIR`` every timed run is made twice in a row, once by the dbt-activate in DIR (through
``PYTHONPATH``) and once by this one, on the same project and state, so that both meet the same load.
Each scenario runs ``--repeat`` times; the minimum is the figure to compare on a shared machine (load
only ever adds), the median is given too. CPU seconds move less with the load than wall seconds.
``dbt build`` and ``dbt test`` between runs are not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import TOKEN, _admin, measure, start_hubspot
from compare_data import Warehouse
from delivery_common import Emulator, report

import dbt_activate

BIN = Path(sys.executable).parent
SCENARIOS = ("noop", "not_planned", "incremental")


class Project:
    def __init__(self, kind: str, rows: int, work: Path) -> None:
        self.kind, self.rows, self.work = kind, rows, work
        self.pg_database = f"bench_{uuid.uuid4().hex[:8]}" if kind == "postgres" else ""
        self.wh = Warehouse(kind, work, self.pg_database)

    def setup(self, emu: Emulator) -> None:
        if self.kind == "postgres":
            _admin(f"create database {self.pg_database}")
        self.wh.generate(self.rows)
        self.wh.write_dbt_project([{"destination": "crm", "object": "contacts", "mode": "mirror",
                                    "primary_key": "email", "match": {"email": "email"}, "name": "contacts_hubspot"}])
        crm = {"type": "hubspot", "access_token": TOKEN, "base_url": emu.base_url,
               "rate_limit": {"requests": 100_000, "per_seconds": 1}}
        (self.work / "destinations.yml").write_text(yaml.safe_dump({"crm": crm}))
        self.dbt("build")
        wall, cpu, _, code, tail = self.run()
        if code != 0:
            raise SystemExit(f"the first sync failed ({code}): {tail}")
        print(f"  first sync of {self.rows:,} rows: {wall:.2f} s wall, {cpu:.2f} CPU-s (not measured)", file=sys.stderr)

    def teardown(self) -> None:
        if self.kind == "postgres":
            _admin(f"drop database if exists {self.pg_database} with (force)")

    def dbt(self, command: str) -> None:
        proc = subprocess.run([str(BIN / "dbt"), command, "--project-dir", str(self.work), "--profiles-dir",
                               str(self.work), "--quiet"], capture_output=True, text=True,
                              env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
        if proc.returncode != 0:
            raise RuntimeError(f"dbt {command} failed: {proc.stdout[-2000:]}")

    def run(self, pythonpath: str | None = None) -> tuple[float, float, float, int, str]:
        return measure([str(BIN / "dbt-activate"), "run", "-q", "--project-dir", str(self.work),
                        "--profiles-dir", str(self.work)], cwd=self.work,
                       env={"PYTHONPATH": pythonpath} if pythonpath else None)


def summary(walls: list[float], cpus: list[float], records: list[int]) -> dict[str, Any]:
    return {"wall_s": [round(w, 3) for w in walls], "cpu_s": [round(c, 3) for c in cpus], "records_sent": records,
            "min_wall_s": round(min(walls), 3), "median_wall_s": round(statistics.median(walls), 3),
            "min_cpu_s": round(min(cpus), 3), "median_cpu_s": round(statistics.median(cpus), 3)}


def scenario(project: Project, emu: Emulator, name: str, repeat: int, baseline: str | None) -> dict[str, Any]:
    versions = {"baseline": baseline, "this": None} if baseline else {"this": None}
    measured: dict[str, tuple[list[float], list[float], list[int]]] = {v: ([], [], []) for v in versions}
    for i in range(repeat):
        for version, pythonpath in versions.items():
            if name == "noop":
                project.dbt("build")
            elif name == "not_planned":
                project.dbt("test")
            else:
                project.wh.mutate(project.rows, seed=100 + 2 * i + (version == "this"))
                project.dbt("build")
            emu.control("counters/reset", {})
            wall, cpu, _, code, tail = project.run(pythonpath)
            if code != 0:
                raise SystemExit(f"{name} ({version}): dbt-activate exited {code}: {tail}")
            sent = emu.control("counters")["records"]
            walls, cpus, records = measured[version]
            walls.append(wall)
            cpus.append(cpu)
            records.append(sent)
            print(f"  {name} {version} {i + 1}/{repeat}: {wall:.2f} s wall, {cpu:.2f} CPU-s, {sent} records sent "
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    if not baseline:
        return summary(*measured["this"])
    return {version: summary(*figures) for version, figures in measured.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--baseline", default=None, help="another checkout's root, measured in turns with this one")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="startup_") as work, start_hubspot() as emu:
        project = Project(args.warehouse, args.rows, Path(work))
        try:
            project.setup(emu)
            for name in args.scenarios:
                results[name] = scenario(project, emu, name, args.repeat, args.baseline)
        finally:
            project.teardown()
    report("startup: dbt-activate run with little or nothing to send", {
        "command": " ".join(["python", "benchmarks/startup.py", *sys.argv[1:]]),
        "dbt_activate_from": str(Path(dbt_activate.__file__).resolve().parent),
        "warehouse": args.warehouse, "rows": args.rows, "repeat": args.repeat, "baseline": args.baseline, **results,
    }, as_json=args.json)


if __name__ == "__main__":
    main()
