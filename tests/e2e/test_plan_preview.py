"""`plan` on a pull request: counts, the API calls a run would make and sample payloads rendered by the
destination exactly as `run` then sends them, with nothing sent and secrets redacted (DuckDB)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dbt_activate import runner, schemas
from dbt_activate.core.outcomes import SilentReporter
from dbt_activate.invocation import RunOptions
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import Project, customer
from tests.support.schemas import errors

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "plan-preview-token-5d0c93"
ROWS = [customer(i) for i in range(1, 11)]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


def _write(project: Project, receiver: WebhookReceiver, rows: list[dict[str, Any]]) -> None:
    project.write(rows, [
        {"destination": "hook", "object": "customers", "primary_key": "customer_id", "mode": "mirror",
         "fields": ["email", "full_name", "score"]},
    ], destinations={
        # The token rides in the URL, as some webhook services want it: plan must not show it.
        "hook": {"type": "webhook", "url": f"{receiver.url}?token={TOKEN}", "batch_size": 3},
    })
    project.dbt("build")


def _plan(project: Project, *args: str) -> dict[str, Any]:
    proc = project.activate("plan", "--output", "json", *args)
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    assert errors(document, schemas.RESULTS) == []
    assert project.results()["results"] == document["results"]
    return document


def test_plan_counts_calls_and_renders_samples_as_the_run_sends_them(duckdb_project: Project,
                                                                     receiver: WebhookReceiver) -> None:
    p = duckdb_project
    _write(p, receiver, ROWS)

    first = _plan(p, "--samples", "2")["results"][0]
    assert first["counts"]["added"] == 10 and first["status"] == "planned"
    assert first["api_calls"] == 4  # 10 records in batches of 3
    [sample] = first["samples"]
    assert sample["operation"] == "upsert" and sample["records"] == 2
    body = sample["request"]["body"]
    assert [r["record"]["email"] for r in body["records"]] == ["user1@example.com", "user10@example.com"]
    assert "***" in sample["request"]["url"]
    assert receiver.requests == []  # plan sends nothing

    assert p.activate("run").returncode == 0
    sent = {r["key"]: r for payload in receiver.payloads() for r in payload["records"]}
    assert sent["1"] == body["records"][0]  # the sample is exactly what run sent for that row
    requests_after_run = len(receiver.requests)

    changed = [customer(i, score=99.5) if i == 4 else customer(i) for i in range(1, 10)]  # 4 changes, 10 leaves
    _write(p, receiver, changed)
    second = _plan(p)["results"][0]
    assert (second["counts"]["changed"], second["counts"]["removed"], second["api_calls"]) == (1, 1, 2)
    by_operation = {s["operation"]: s["request"]["body"] for s in second["samples"]}
    assert by_operation["upsert"]["records"][0]["record"]["score"] == 99.5
    assert by_operation["delete"]["records"][0]["key"] == "10"
    assert len(receiver.requests) == requests_after_run

    text = p.activate("plan", "--samples", "0")
    assert text.returncode == 0
    assert "API calls" in text.stderr and "sample" not in text.stderr


class _Recorder(SilentReporter):
    def __init__(self) -> None:
        self.totals: list[tuple[str, int]] = []

    def sync_total(self, name: str, total: int) -> None:
        self.totals.append((name, total))


def test_a_first_sync_tells_the_progress_bar_how_many_rows_it_sends(duckdb_project: Project,
                                                                   receiver: WebhookReceiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    p = duckdb_project
    monkeypatch.chdir(p.root)  # the profile's DuckDB path is relative to where dbt runs, as for a user
    _write(p, receiver, ROWS)
    recorder = _Recorder()
    options = RunOptions(project_dir=str(p.root), profiles_dir=str(p.root))
    assert runner.run(options, recorder).exit_code == 0
    assert recorder.totals == [("customers__hook__customers", 10)]
    # An incremental sync does not run its diff twice to count it: no total, no ETA (the same
    # process cannot run dbt again while dbt-duckdb holds the file, so this run sends nothing new).
    again = _Recorder()
    assert runner.run(RunOptions(project_dir=str(p.root), profiles_dir=str(p.root), run_all=True), again
                      ).exit_code == 0
    assert again.totals == []
