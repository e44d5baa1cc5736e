"""Memory and throughput of a large sync: a DuckDB model of N rows to the `file` destination.

    python benchmarks/memory_file_sync.py [--rows 1000000] [--format jsonl]

Builds a throwaway dbt-duckdb project whose model generates N contacts-like rows, runs
`dbt build`, then `dbt-activate run` (first full sync), changes 1% of the rows, rebuilds and runs
again (incremental sync). For each run it prints wall time, rows/s and the peak RSS of the
`dbt-activate` process (getrusage of the waited child). The target: peak RSS under 300 MB at 1M rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024, stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="activate-bench-") as tmp:
        root = Path(tmp)
        results = []
        for label, mutation in (("first full sync", 0), ("incremental after 1% change", 1)):
            write_project(root, args.rows, args.format, mutation)
            subprocess.run([str(BIN / "dbt"), "build", "--project-dir", str(root), "--profiles-dir", str(root),
                            "--quiet"], check=True, cwd=root, env={**os.environ,
                                                                   "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
            wall, rss, _ = measured([str(BIN / "dbt-activate"), "run", "--project-dir", str(root)], root)
            doc = json.loads((root / "target" / "activate_results.json").read_text())
            counts = doc["results"][0]["counts"]
            moved = counts["added"] + counts["changed"] + counts["removed"]
            results.append((label, moved, counts["sent"], wall, rss))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"rows: {args.rows:,}, format: {args.format}")
        for label, moved, sent, wall, rss in results:
            print(f"{label:32s} rows {moved:>9,}  sent {sent:>9,}  wall {wall:6.1f} s  "
                  f"{sent / wall:>9,.0f} rows/s  peak RSS {rss:6.1f} MB")
        print(f"(getrusage children max RSS overall: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
