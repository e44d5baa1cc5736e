"""Issue 18 §4: what a project run as the README says showed, end to end (dbt + CLI + emulators).

- `plan` counts the API calls `run` makes (a HubSpot delete is `batch/read` then `batch/archive`);
- a manifest written for another target is said, and no warehouse file is created on the way;
- a sync renamed by an edit of its `object` is pointed out by `plan`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbt_activate.testing import HubSpotEmulator, HubSpotProperty
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import Project, customer, fresh_database

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "pat-na1-e2e-7d1c2b3a4f5e69788796a5b4"


def _plan(project: Project, *args: str) -> dict[str, Any]:
    proc = project.activate("plan", "--output", "json", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def test_plan_counts_the_calls_run_makes_for_hubspot_deletes(tmp_path: Path) -> None:
    project = Project(tmp_path, "duckdb")
    with HubSpotEmulator(token=TOKEN, properties={"contacts": [HubSpotProperty("full_name")]}) as emu:
        project.write([customer(i) for i in range(1, 13)], [
            {"destination": "crm", "object": "contacts", "mode": "mirror", "primary_key": "customer_id",
             "match": {"email": "email"}, "fields": ["email", "full_name"], "name": "contacts"}],
            {"crm": {"type": "hubspot", "access_token": TOKEN, "base_url": emu.base_url, "batch_size": 5}})
        project.dbt("build")
        assert project.activate("run").returncode == 0
        # 7 rows deleted (two batches of 5), one renamed: each delete batch is a read and an archive.
        project.write_rows([customer(i, name="Renamed" if i == 1 else None) for i in range(1, 6)])
        project.dbt("build")
        [planned] = _plan(project)["results"]
        assert (planned["counts"]["removed"], planned["counts"]["changed"]) == (7, 1)
        emu.reset_counters()
        assert project.activate("run").returncode == 0
        assert planned["api_calls"] == emu.counters.requests == 5  # 1 upsert + 2 x (batch/read + batch/archive)
        assert len(emu.records("contacts")) == 5
    assert emu.errors == []


@pytest.mark.postgres
def test_a_manifest_for_another_target_is_said_and_no_warehouse_file_is_created(tmp_path: Path) -> None:
    # `dbt build -t pg`, then `dbt-activate plan` without -t: the profile's default target is DuckDB.
    with fresh_database("act_wh") as warehouse_db, WebhookReceiver() as hook:
        project = Project(tmp_path, "postgres", warehouse_db=warehouse_db)
        project.write([customer(i) for i in range(1, 4)], [
            {"destination": "hook", "object": "customers", "primary_key": "customer_id"}],
            {"hook": {"type": "webhook", "url": hook.url}})
        profiles = yaml.safe_load((tmp_path / "profiles.yml").read_text())
        outputs = profiles["e2e"]["outputs"]
        outputs["pg"] = outputs.pop("dev")
        outputs["dev"] = {"type": "duckdb", "path": str(tmp_path / "dev.duckdb"), "schema": "main", "threads": 1}
        (tmp_path / "profiles.yml").write_text(yaml.safe_dump(profiles))
        project.dbt("build", "-t", "pg")

        proc = project.activate("plan")
        assert proc.returncode == 2, proc.stderr[-3000:]
        message = " ".join(proc.stderr.split())
        assert "written for a postgres target" in message and "'dev'" in message and "-t pg" in message, message
        assert not (tmp_path / "dev.duckdb").exists()  # nothing opened a connection to it

        assert _plan(project, "-t", "pg")["results"][0]["counts"]["added"] == 3
        assert hook.requests == []


@pytest.mark.slow  # the rule itself is tested in tests/core/test_planner.py
def test_plan_points_out_a_sync_renamed_by_an_edit_of_its_object(duckdb_project: Project) -> None:
    block = {"destination": "hook", "object": "customers", "primary_key": "customer_id"}
    with WebhookReceiver() as hook:
        duckdb_project.write([customer(i) for i in range(1, 4)], [block], {"hook": {"type": "webhook",
                                                                                     "url": hook.url}})
        duckdb_project.dbt("build")
        assert duckdb_project.activate("run").returncode == 0
        duckdb_project.set_activate([{**block, "object": "people"}])
        duckdb_project.dbt("parse")
        [planned] = _plan(duckdb_project, "--all")["results"]
    assert planned["sync"] == "customers__hook__people"
    assert "renamed? set `name: customers__hook__customers` to keep its state" in planned["reason"], planned
