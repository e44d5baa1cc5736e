#!/usr/bin/env bash
# Creates .venv-crucible (once) with crucible-emulator, the BigQuery emulator the dbt-bigquery tests run
# (tests/support/bigquery.py). Its own virtualenv: crucible pins a DuckDB of its own, which must not
# replace the one dbt-duckdb uses in .venv. Prints the path of its `crucible` command.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${DBT_ACTIVATE_CRUCIBLE_VENV:-$root/.venv-crucible}
if [ ! -x "$venv/bin/crucible" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --pre "crucible-emulator[server]==0.1.0a2"
fi
echo "$venv/bin/crucible"
