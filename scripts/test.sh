#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs them. Needs PostgreSQL on 127.0.0.1:5432
# (user postgres, trust auth); every test creates and drops its own databases and schemas.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(bash "$root/scripts/bootstrap.sh" "duckdb,postgres,redshift,snowflake,bigquery,spark,dev" | tail -n 1)
# crucible-emulator (BigQuery's API) in .venv-crucible, once: tests/support/bigquery.py starts it.
bash "$root/scripts/crucible.sh" > /dev/null
cd "$root"
# With no arguments: the default suite on four workers (most tests wait on dbt, subprocesses and
# emulators): every test not marked slow, without Spark's (a JVM each; .ci/run runs them in one process).
if [ $# -eq 0 ]; then set -- -q -n 4 --dist worksteal -m "not slow and not spark"; fi
"$venv/bin/python" -m pytest "$@"
