"""The peers of compare.py: how each is installed (its own virtual environment) and started.

Each peer syncs the model table ``<schema>.contacts`` to the HubSpot emulator's batch upsert, 100
records per request, the way its documentation shows:

- ``handwritten``: benchmarks/peers/handwritten.py (httpx; reads everything, no state, no deletes).
- ``dlt``: benchmarks/peers/dlt_sync.py (``@dlt.destination(batch_size=100)``, incremental on updated_at).
- ``drt``: drt-core's ``rest_api`` destination in batch mode (its HubSpot destination has a fixed
  ``api.hubapi.com`` URL), ``mode: incremental`` on ``updated_at``, rate limit set to the destination's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PEER_SCRIPTS = HERE / "peers"

# drt renders this Jinja template per request of up to 100 rows (its `batch_template`, `rows` in scope).
DRT_BATCH_TEMPLATE = (
    '{"inputs": [{% for row in rows %}{"id": {{ row.email | string | tojson }}, "idProperty": "email", '
    '"properties": { {%- for k, v in row.items() %}{{ k | tojson }}: {{ ("" if v is none else v) | string | tojson }}'
    '{% if not loop.last %},{% endif %}{% endfor %} }}{% if not loop.last %},{% endif %}{% endfor %}]}')


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Peer:
    name: str
    requirements: tuple[str, ...]
    launch: Callable[[Path, str, str, str, str, Path, float | None], Launch]


def _script(script: str) -> Callable[[Path, str, str, str, str, Path, float | None], Launch]:
    def launch(python: Path, warehouse: str, database: str, table: str, base_url: str, state: Path,
               requests_per_second: float | None) -> Launch:
        argv = [str(python), str(PEER_SCRIPTS / script), "--warehouse", warehouse, "--database", database,
                "--table", table, "--base-url", base_url]
        if script == "dlt_sync.py":
            argv += ["--pipelines-dir", str(state)]
        return Launch(argv, env={"RUNTIME__LOG_LEVEL": "WARNING", "DLT_TELEMETRY_DISABLED": "1"})
    return launch


def _drt(python: Path, warehouse: str, database: str, table: str, base_url: str, state: Path,
         requests_per_second: float | None) -> Launch:
    project, home = state / "project", state / "home"
    (project / "syncs").mkdir(parents=True, exist_ok=True)
    (home / ".drt").mkdir(parents=True, exist_ok=True)
    profile = ({"type": "duckdb", "database": database} if warehouse == "duckdb" else
               {"type": "postgres", "host": "127.0.0.1", "port": 5432, "dbname": database, "user": "postgres",
                "password": ""})
    (home / ".drt" / "profiles.yml").write_text(yaml.safe_dump({"bench": profile}))
    (project / "drt_project.yml").write_text(yaml.safe_dump({"name": "bench", "version": "0.1", "profile": "bench"}))
    sync = {
        "name": "contacts_hubspot",
        "model": f"SELECT * FROM {table}",
        "destination": {
            "type": "rest_api", "url": f"{base_url}/crm/v3/objects/contacts/batch/upsert", "method": "POST",
            "headers": {"Authorization": "Bearer test-token", "Content-Type": "application/json"},
            "body_mode": "batch", "batch_template": DRT_BATCH_TEMPLATE, "max_records_per_request": 100,
        },
        # drt's default pace is 10 requests/s; unlimited runs lift it so the tool, not its setting, is measured.
        "sync": {"mode": "incremental", "cursor_field": "updated_at", "batch_size": 100, "on_error": "fail",
                 "rate_limit": {"requests_per_second": requests_per_second or 100_000}},
    }
    (project / "syncs" / "contacts_hubspot.yml").write_text(yaml.safe_dump(sync, sort_keys=False))
    return Launch([str(python.parent / "drt"), "run", "--quiet"], cwd=project,
                  env={"HOME": str(home), "DRT_TELEMETRY": "off", "DO_NOT_TRACK": "1"})


PEERS: dict[str, Peer] = {
    "handwritten": Peer("handwritten", ("httpx", "duckdb", "psycopg2-binary"), _script("handwritten.py")),
    "dlt": Peer("dlt", ("dlt[duckdb]", "httpx", "psycopg2-binary"), _script("dlt_sync.py")),
    "drt": Peer("drt", ("drt-core[duckdb]", "psycopg2-binary"), _drt),
}


def peer_python(peers_dir: Path, peer: Peer, *, install: bool = False) -> Path:
    """The peer's own interpreter; with ``install``, create the venv and pip-install it once."""
    venv = peers_dir / peer.name
    python = venv / "bin" / "python"
    if install and not (venv / "installed.json").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *peer.requirements], check=True)
        frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
        (venv / "installed.json").write_text(json.dumps(frozen.stdout.splitlines()))
    return python


def peer_versions(peers_dir: Path) -> dict[str, list[str]]:
    """The pinned versions each peer ran with (from its install), for the report."""
    found: dict[str, list[str]] = {}
    for name, peer in PEERS.items():
        record = peers_dir / peer.name / "installed.json"
        if record.exists():
            wanted = {r.split("[")[0].lower() for r in peer.requirements}
            found[name] = [line for line in json.loads(record.read_text())
                           if line.split("==")[0].lower() in wanted]
    return found
