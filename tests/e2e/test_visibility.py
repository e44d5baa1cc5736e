"""What a user sees, end to end on DuckDB: `ls` before and after a run, `run --output json` checked
against the shipped JSON Schema, the plain summary on stderr in a CI log, and `-v` request lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from dbt_activate import schemas
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import PG_DSN, Project, customer
from tests.support.schemas import errors

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

SECRET = "hook-secret-visibility-8c1e0f2a"
ROWS = [customer(i) for i in range(1, 11)]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(reject_keys={"3": "email is not valid"}, required_headers={"X-Hook-Secret": SECRET}) as hook:
        yield hook


def _write(project: Project, receiver: WebhookReceiver) -> None:
    project.write(ROWS, [
        {"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id", "name": "to_db"},
        {"destination": "hook", "object": "customers", "primary_key": "customer_id", "name": "to_hook",
         "fields": ["email", "full_name"]},
    ], destinations={
        "ops_db": {"type": "postgres", "dsn": f"{PG_DSN} dbname={project.destination_db}", "create_table": True},
        "hook": {"type": "webhook", "url": receiver.url, "headers": {"X-Hook-Secret": SECRET}},
    })
    project.dbt("build")


def _ls(project: Project) -> dict[str, Any]:
    proc = project.activate("ls", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    assert errors(document, schemas.LS) == []
    return document


def test_ls_then_run_json_then_ls(duckdb_project: Project, receiver: WebhookReceiver) -> None:
    p = duckdb_project
    _write(p, receiver)

    before = _ls(p)
    assert [(s["sync"], s["model"], s["destination"], s["object"], s["mode"], s["last_status"])
            for s in before["syncs"]] == [("to_db", "customers", "ops_db", "crm.customers", "upsert", None),
                                          ("to_hook", "customers", "hook", "customers", "upsert", None)]
    assert receiver.requests == []  # ls sends nothing
    text = p.activate("ls")
    assert text.returncode == 0 and "never run" in text.stdout

    run = p.activate("run", "--output", "json", "-v")
    assert run.returncode == 1, run.stderr  # a rejected row: exit 1
    stdout = json.loads(run.stdout)
    assert errors(stdout, schemas.RESULTS) == []
    on_disk = p.results()
    assert errors(on_disk, schemas.RESULTS) == []
    assert stdout["results"] == on_disk["results"] and stdout["metadata"]["run_id"] == on_disk["metadata"]["run_id"]
    hook = next(r for r in stdout["results"] if r["sync"] == "to_hook")
    assert (hook["status"], hook["counts"]["sent"], hook["counts"]["rejected"]) == ("partial", 9, 1)
    assert hook["rejected_samples"] == [{"key": "3", "reason": "email is not valid"}]

    # stderr is not a terminal here: plain lines (no escape codes), the table, the rejection, -v lines.
    err = run.stderr
    assert "\x1b[" not in err
    assert "to_hook: rejected 3: email is not valid" in err
    assert "http POST /hook 200" in err
    assert SECRET not in err + run.stdout
    header = next(line for line in err.splitlines() if line.startswith("sync "))
    assert header.split() == ["sync", "model", "destination", "mode", "added", "changed", "removed", "rejected",
                              "skipped", "duration", "status"]

    after = {s["sync"]: s for s in _ls(p)["syncs"]}
    assert after["to_db"]["last_status"] == "success" and after["to_hook"]["last_status"] == "partial"
    assert after["to_hook"]["pending_retries"] == 1 and after["to_db"]["pending_retries"] == 0
    assert after["to_db"]["last_run_id"] == stdout["metadata"]["run_id"]
    assert datetime.fromisoformat(after["to_db"]["last_run_at"]).tzinfo is not None

    selected = p.activate("ls", "-s", "to_hook")
    assert selected.returncode == 0
    assert "to_hook" in selected.stdout and "to_db" not in selected.stdout and "partial" in selected.stdout


def test_quiet_keeps_only_the_summary(duckdb_project: Project, receiver: WebhookReceiver) -> None:
    p = duckdb_project
    _write(p, receiver)
    proc = p.activate("run", "--quiet", "-s", "to_db")
    assert proc.returncode == 0, proc.stderr
    assert "syncing" not in proc.stderr and "http " not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("run: 1 sync run, 0 skipped;")
