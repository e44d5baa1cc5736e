"""`dbt-activate run --dbt-cloud-run-id / --dbt-cloud-job-id`: the artifacts of a real `dbt build`
served by the Admin API emulator, the sync run against DuckDB into PostgreSQL, as a user runs it."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dbt_activate.commands.listen import signature
from dbt_activate.testing.dbt_cloud.emulator import DbtCloudEmulator, Step
from tests.e2e.project import BIN, Project, customer, fresh_database

# dbt build and the follow-up runs in this process (tests/e2e/inprocess.py); the runs under test are
# subprocesses started here.
pytestmark = pytest.mark.in_process

TOKEN = "dbtc_e2e_token_value"
SECRET = "whsec_e2e_secret"


@pytest.fixture
def duckdb_project(tmp_path: Path) -> Iterator[Project]:
    with fresh_database("act_dst") as destination_db:
        yield Project(tmp_path, "duckdb", destination_db=destination_db)


def _artifacts(project: Project) -> dict[str, Any]:
    target = project.root / "target"
    return {name: json.loads((target / name).read_text()) for name in ("manifest.json", "run_results.json")}


def test_run_reads_artifacts_from_the_build_step_of_a_dbt_cloud_run(duckdb_project: Project) -> None:
    project = duckdb_project
    project.write([customer(i) for i in range(1, 11)],
                  [{"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id",
                    "name": "customers_crm"}])
    project.dbt("build")
    built = _artifacts(project)
    project.dbt("docs", "generate")
    docs = _artifacts(project)
    assert docs["run_results.json"]["args"]["which"] == "generate"
    # Locally, only the docs step's artifacts remain: a plain `run` would sync nothing.
    shutil.rmtree(project.root / "target")

    with DbtCloudEmulator(account_id=9, token=TOKEN) as cloud:
        cloud.add_run(501, job_id=3, steps=[Step("Clone git repository"),
                                            Step("Invoke dbt with `dbt build`", built),
                                            Step("Invoke dbt with `dbt docs generate`", docs)])
        project.env.update({"DBT_CLOUD_ACCOUNT_ID": "9", "DBT_CLOUD_API_TOKEN": TOKEN,
                            "DBT_CLOUD_HOST": cloud.base_url})
        proc = project.activate("run", "--project-dir", str(project.root), "--profiles-dir", str(project.root),
                                "--dbt-cloud-job-id", "3")
        assert proc.returncode == 0, proc.stderr
        assert project.result_of("customers_crm")["status"] == "success"
        assert "was rebuilt by `dbt build`" in project.result_of("customers_crm")["reason"]
        assert len(project.destination_rows("crm.customers")) == 10
        assert (project.root / "target" / "dbt_cloud" / "run_501" / "manifest.json").exists()

        # A wrong token: exit 2, one clear line, the token nowhere in the output.
        project.env["DBT_CLOUD_API_TOKEN"] = "dbtc_wrong_token"
        proc = project.activate("run", "--project-dir", str(project.root), "--profiles-dir", str(project.root),
                                "--dbt-cloud-run-id", "501")
        assert proc.returncode == 2
        assert "refused the API token" in proc.stderr
        assert "dbtc_wrong_token" not in proc.stderr + proc.stdout

        # `listen`: a signed job.run.completed webhook for the job starts `run` on that run's artifacts.
        project.env.update({"DBT_CLOUD_API_TOKEN": TOKEN, "DBT_CLOUD_WEBHOOK_SECRET": SECRET})
        cloud.add_run(502, job_id=3, steps=[Step("Invoke dbt with `dbt build`", built)])
        (project.root / "target" / "activate_results.json").unlink()
        with _listening(project) as (url, lines):
            body = json.dumps({"eventId": "wev_e2e", "eventType": "job.run.completed",
                               "data": {"jobId": "3", "runId": "502", "runStatus": "Success",
                                        "runStatusCode": 10}}).encode()
            assert httpx.post(url, content=body, headers={"Authorization": "bad"}).status_code == 401
            response = httpx.post(url, content=body, headers={"Authorization": signature(SECRET, body)})
            assert response.json()["status"] == "queued"
            _wait_for(lines, "finished dbt Cloud run 502")
        assert project.result_of("customers_crm")["status"] == "success"
        assert (project.root / "target" / "dbt_cloud" / "run_502" / "run_results.json").exists()
        assert cloud.errors == []


@contextmanager
def _listening(project: Project) -> Iterator[tuple[str, queue.Queue[str]]]:
    proc = subprocess.Popen([str(BIN / "dbt-activate"), "listen", "--job-id", "3", "--port", "0", "-q",
                             "--project-dir", str(project.root), "--profiles-dir", str(project.root)],
                            cwd=project.root, env=project.run_env(), stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stream = proc.stderr

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        started = _wait_for(lines, "Listening on ")
        yield started.split("Listening on ", 1)[1].split()[0], lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_for(lines: queue.Queue[str], text: str) -> str:
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=180)
        except queue.Empty:
            raise AssertionError(f"no line with {text!r}; got: {''.join(seen)}") from None
        seen.append(line)
        if text in line:
            return line
