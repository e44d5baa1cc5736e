"""BigQuery for tests: crucible-emulator's server (https://pypi.org/project/crucible-emulator/,
0.1.0a2), BigQuery's REST API (jobs, datasets, tables, load jobs) over DuckDB, which the real
``google-cloud-bigquery`` Client and dbt-bigquery talk to, started on a free port of 127.0.0.1.

It lives in its own virtualenv (``.venv-crucible``, made once by scripts/crucible.sh) because it pins
a DuckDB of its own. An emulator, not the service. What it does not do like BigQuery (measured with
0.1.0a2): it refuses ``DELETE``, ``UPDATE``, ``TRUNCATE``, ``INFORMATION_SCHEMA``, query parameters,
scripts' ``BEGIN TRANSACTION``, temporary tables and sessions with HTTP 400 ("Not supported by
Crucible"), so dbt-activate writes every state change as a ``MERGE`` (warehouse/bigquery.py); it
accepts ``VARCHAR(n)``, which BigQuery refuses (the statements' BigQuery form is checked with
sqlglot's BigQuery parser in tests/warehouse/test_bigquery.py); ``CAST(NUMERIC AS STRING)`` keeps
nine decimals ('1.500000000' where BigQuery gives '1.5'); it runs every job inside its request, so two
DML statements never conflict as they can on BigQuery; ``BIGNUMERIC`` and ``GEOGRAPHY`` are refused.

``profile_output()`` is the dbt-bigquery target from issue 20 (``method: oauth-secrets`` with a fake
token, ``api_endpoint`` the emulator); ``client()`` opens a Client the way dbt-bigquery does.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import servers

REPO = Path(__file__).resolve().parents[2]
PROJECT = "local-project"


def crucible_command() -> Path:
    """The emulator's `crucible` command, its virtualenv created first if missing (scripts/crucible.sh)."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "crucible.sh")], capture_output=True, text=True,
                         check=True, timeout=900)
    return Path(out.stdout.strip().splitlines()[-1])


@contextmanager
def crucible_server() -> Iterator[int]:
    """Start ``crucible serve --dialect bigquery`` on a free port; yield the port; stop it."""
    port = servers.free_port()
    command = [str(crucible_command()), "serve", "--dialect", "bigquery", "--host", "127.0.0.1", "--port", str(port)]
    with servers.serving("crucible", command, port, env={**os.environ, "PYTHONUNBUFFERED": "1"}):
        yield port


def profile_output(port: int, dataset: str) -> dict[str, Any]:
    return {"type": "bigquery", "method": "oauth-secrets", "token": "fake-token", "project": PROJECT,
            "dataset": dataset, "location": "US", "api_endpoint": f"http://127.0.0.1:{port}", "threads": 1,
            "job_retries": 0}


def client(port: int) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), location="US",
                           client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{port}"))


def query(port: int, sql: str) -> list[tuple[Any, ...]]:
    bq = client(port)
    try:
        return [tuple(row) for row in bq.query(sql).result()]
    finally:
        bq.close()
