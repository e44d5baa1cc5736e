"""The plugin seam, end to end: the example package in examples/dbt-activate-sqlite is pip-installed
into a directory of its own, found through the `dbt_activate.destinations` entry point by
`dbt-activate destinations`, and used by a real sync from DuckDB."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.project import BIN, Project, customer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dbt-activate-sqlite"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugin")
    # Built from a copy: pip leaves build/ and *.egg-info beside the sources it builds.
    source = tmp_path_factory.mktemp("plugin_source") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    return target


def test_destinations_lists_builtin_types_and_the_installed_plugin(plugin_path: Path) -> None:
    proc = subprocess.run([str(BIN / "dbt-activate"), "destinations", "--output", "json"], capture_output=True,
                          text=True, env={"PYTHONPATH": str(plugin_path), "PATH": str(BIN)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = {d["type"]: d for d in json.loads(proc.stdout)["destinations"]}
    assert listed["sqlite"]["source"] == "dbt_activate_sqlite:SQLiteDestination"
    assert listed["sqlite"]["modes"] == ["upsert", "update", "create", "mirror"]
    assert (listed["sqlite"]["batch_size"], listed["sqlite"]["required_config_keys"]) == (500, ["path"])
    assert listed["hubspot"]["rate_limit"] == "100 requests / 10 s"
    assert listed["hubspot"]["objects"] == ["contacts", "companies", "deals"]
    text = subprocess.run([str(BIN / "dbt-activate"), "destinations"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(plugin_path), "PATH": str(BIN), "COLUMNS": "200"}, timeout=120)
    assert any(line.split()[:1] == ["sqlite"] for line in text.stdout.splitlines())


@pytest.mark.slow  # the listing test above proves the entry point; this one the whole sync
def test_a_sync_to_the_plugin_destination(duckdb_project: Project, plugin_path: Path) -> None:
    p = duckdb_project
    p.env["PYTHONPATH"] = str(plugin_path)
    database = p.root / "copy.sqlite"
    rows = [customer(i) for i in range(1, 6)]
    activate = [{"destination": "local", "object": "customers", "primary_key": "customer_id", "mode": "mirror",
                 "fields": ["email", "score"]}]
    p.write(rows, activate, destinations={"local": {"type": "sqlite", "path": str(database)}})
    p.dbt("build")
    assert p.activate("run").returncode == 0

    def copied() -> list[tuple[object, ...]]:
        with sqlite3.connect(database) as db:
            return db.execute("select customer_id, email, score from customers order by 1").fetchall()

    assert copied() == [(r["customer_id"], r["email"], r["score"]) for r in rows]
    p.write([customer(i, score=7.0) if i == 2 else customer(i) for i in range(1, 5)], activate,
            destinations={"local": {"type": "sqlite", "path": str(database)}})
    p.dbt("build")
    assert p.activate("run").returncode == 0
    assert copied() == [(1, "user1@example.com", 1.5), (2, "user2@example.com", 7.0), (3, "user3@example.com", 4.5),
                        (4, "user4@example.com", 6.0)]
