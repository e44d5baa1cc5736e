"""Memory and throughput of a large sync: a DuckDB model of N rows to the `file` destination.

    python benchmarks/memory_file_sync.py [--rows 1000000] [--format jsonl] [--json]

Builds a throwaway dbt-duckdb project whose model generates N contacts-like rows, runs
`dbt build`, then `dbt-activate run` (first full sync), changes 1% of the rows (and removes 0.1%,
adds 0.1%), rebuilds and runs again (incremental sync). For each run it prints wall time, rows/s and
the peak RSS of the `dbt-activate` process (ru_maxrss of the waited child, so the whole process:
Python, dbt, DuckDB inside it). `dbt build` is not measured. The target: peak RSS under 300 MB at 1M
rows. DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT / DBT_ACTIVATE_DUCKDB_THREADS are passed through (see
dbt_activate/warehouse/connection.py).
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

from delivery_common import machine, versions

BIN = Path(sys.executable).parent

MODEL = """
{{{{ config(materialized='table') }}}}
select
    i as contact_id,
    'user' || i || '@example.com' as email,
    'First' || (i % 997) as first_name,
    'Last' || (i % 1009) as last_name,
    case i % 4 when 0 then 'FR' when 1 then 'GB' when 2 then 'RU' else 'DE' end as country,
    (i * 37) % 100 as lead_score,
    case when i % 3 = 0 then 'pro' else 'free' end as plan,
    i % 5 = 0 as is_customer,
    cast('2024-01-01' as date) + cast(i % 700 as integer) as signup_date,
    timestamp '2025-01-01 00:00:00' + to_seconds(i % 86400) as updated_at,
    round((i % 10000) / 7.0, 2) as lifetime_value
from range({rows}) r(i)
where i % 1000 <> {deleted_bucket}
"""


def write_project(root: Path, rows: int, fmt: str, mutation: int) -> None:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text("name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n")
    (root / "profiles.yml").write_text(
        f"bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {root / 'bench.duckdb'}\n"
        "      schema: main\n      threads: 1\n")
    sql = MODEL.format(rows=rows, deleted_bucket=999 if mutation == 0 else 7)
    if mutation:
        sql = sql.replace("(i * 37) % 100 as lead_score", "case when i % 100 = 1 then 101 else (i * 37) % 100 end"
                          " as lead_score")
    (root / "models" / "contacts.sql").write_text(sql)
    (root / "models" / "schema.yml").write_text(json.dumps({"version": 2, "models": [{
        "name": "contacts", "config": {"meta": {"activate": [{
            "destination": "out", "object": "contacts", "mode": "mirror", "primary_key": "contact_id"}]}}}]}))
    (root / "destinations.yml").write_text(json.dumps({"out": {"type": "file", "path": str(root / "out"),
                                                                "format": fmt}}))


def measured(argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, output) of one process, waited with wait4 for its own rusage."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: the child never blocks on a full pipe
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--json", action="store_true", help="print a machine-readable copy of the results")
    args = parser.parse_args()
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    runs = []
    with tempfile.TemporaryDirectory(prefix="activate-bench-") as tmp:
        root = Path(tmp)
        for label, mutation in (("first full sync", 0), ("incremental after 1% change", 1)):
            write_project(root, args.rows, args.format, mutation)
            subprocess.run([str(BIN / "dbt"), "build", "--project-dir", str(root), "--profiles-dir", str(root),
                            "--quiet"], check=True, cwd=root, env=env)
            load = round(os.getloadavg()[0], 2)
            wall, rss, _ = measured([str(BIN / "dbt-activate"), "run", "--project-dir", str(root)], root)
            doc = json.loads((root / "target" / "activate_results.json").read_text())
            result = doc["results"][0]
            counts = result["counts"]
            runs.append({"run": label, "rows_diffed": counts["added"] + counts["changed"] + counts["removed"],
                         "sent": counts["sent"], "status": result["status"], "wall_seconds": round(wall, 1),
                         "sync_seconds": result["duration_seconds"], "rows_per_second": round(counts["sent"] / wall),
                         "peak_rss_mb": round(rss, 1), "load_average_1m_before": load})
    settings = {k: v for k, v in os.environ.items() if k.startswith("DBT_ACTIVATE_DUCKDB_")}
    results = {"rows": args.rows, "format": args.format, "duckdb_settings": settings or "defaults",
               "runs": runs, "machine": machine(),
               "versions": versions(("dbt-activate", "dbt-core", "dbt-duckdb", "duckdb"))}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['system']}; rows: {args.rows:,}, format: {args.format}, "
          f"DuckDB settings: {results['duckdb_settings']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    for r in runs:
        print(f"{r['run']:30s} rows {r['rows_diffed']:>9,}  sent {r['sent']:>9,}  wall {r['wall_seconds']:6.1f} s  "
              f"{r['rows_per_second']:>7,} rows/s  peak RSS {r['peak_rss_mb']:6.1f} MB  "
              f"(load {r['load_average_1m_before']})")


if __name__ == "__main__":
    main()
