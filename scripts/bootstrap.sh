#!/usr/bin/env bash
# Creates .venv (once) and installs dbt-activate into it with the given extras.
# dbt-core is pinned below 1.12 here: every 1.12.x depends on dbt-core-experimental-parser, which
# downloads a binary at install time and fails on machines without internet access.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
extras=${1:-duckdb}
venv=${DBT_ACTIVATE_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[$extras]" "dbt-core>=1.8,<1.12"
echo "$venv"
