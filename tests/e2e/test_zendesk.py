"""End to end: dbt build -> dbt-activate run (CLI) -> DuckDB warehouse -> ZendeskEmulator over HTTP.

Each test writes a throwaway dbt project whose ``customers`` model feeds Zendesk users (matched by
external_id = customer_id, custom user fields for the other columns), runs the CLI as a user does,
and reads the emulator's users back. Every bulk request is a job the destination must poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.zendesk.emulator import ZendeskEmulator
from tests.e2e.project import Project, customer
from tests.e2e.vendor_runs import rebuild, run_sync

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "zd-e2e-token-3a2b1c0d9e8f"
AGENT = "ops@example.com"
USER_FIELDS = {"country": "text", "score": "decimal", "signed_up": "date", "vip": "checkbox"}
FIELDS = {"customer_id": "external_id", "email": "email", "full_name": "name", "country": "country",
          "score": "score", "signup_date": "signed_up", "is_vip": "vip"}
SEGMENT = "country in ('FR', 'GB')"


@pytest.fixture
def emu() -> Iterator[ZendeskEmulator]:
    with ZendeskEmulator(token=TOKEN, email=AGENT, user_fields=USER_FIELDS, job_polls=2) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb", env={"ZENDESK_TOKEN": TOKEN})


def _write(project: Project, emu: ZendeskEmulator, rows: list[dict[str, Any]], **sync: Any) -> None:
    block = {"destination": "support", "object": "users", "mode": "upsert", "primary_key": "customer_id",
             "match": {"customer_id": "external_id"}, "fields": FIELDS, "name": "people", **sync}
    destinations = {"support": {"type": "zendesk", "email": AGENT, "api_token": "{{ env_var('ZENDESK_TOKEN') }}",
                                "base_url": emu.base_url, "job_poll_interval": 0.01, "timeout": 10}}
    project.write(rows, [block], destinations)


def _sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    return run_sync(project, "people", secret=TOKEN, expect_exit=expect_exit)


def _users(emu: ZendeskEmulator) -> dict[str, dict[str, Any]]:
    return {u["external_id"]: {"email": u["email"], "name": u["name"], **u["user_fields"]}
            for u in emu.records("users")}


def _expected(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["customer_id"]): {"email": r["email"], "name": r["full_name"], "country": r["country"],
                                    "score": r["score"], "signed_up": r["signup_date"],
                                    "vip": r["is_vip"] == "true"} for r in rows}


def test_mirror_upserts_users_through_polled_jobs_and_deletes_those_that_left(
        project: Project, emu: ZendeskEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    [existing] = emu.add_records("users", [{"name": "Someone Else", "external_id": "3"}])
    _write(project, emu, rows, mode="mirror", where=SEGMENT)
    project.dbt("build")
    first = _sync(project)
    in_segment = [r for r in rows if r["country"] in ("FR", "GB")]
    assert (first["status"], first["counts"]["sent"]) == ("success", len(in_segment))
    assert _users(emu) == _expected(in_segment)  # user 3 was updated in place, not duplicated
    assert any(u["id"] == existing and u["name"] == "Customer 3" for u in emu.records("users"))
    polls = sum(n for path, n in emu.counters.by_path.items() if path.startswith("/api/v2/job_statuses/"))
    assert polls == 3  # one job, read until it completed (job_polls=2 reads say "queued")

    moved = next(r for r in in_segment if r["country"] == "FR")
    moved["country"], moved["score"] = "RU", 1.0
    changed = next(r for r in in_segment if r["country"] == "GB" and r["customer_id"] != 1)
    changed["full_name"] = "Renamed"
    rows = [r for r in rows if r["customer_id"] != 1]
    rebuild(project, rows)
    second = _sync(project)
    assert (second["counts"]["removed"], second["counts"]["sent"]) == (2, 3)
    assert _users(emu) == _expected([r for r in rows if r["country"] in ("FR", "GB")])


@pytest.mark.slow
def test_a_failed_job_item_is_rejected_with_zendesks_details_and_retried_next_run(
        project: Project, emu: ZendeskEmulator) -> None:
    rows = [customer(i) for i in range(1, 7)]
    rows[3]["email"] = "not-an-email"
    _write(project, emu, rows)
    project.dbt("build")
    result = _sync(project, expect_exit=1)
    assert result["status"] == "partial"
    assert result["counts"]["rejected"] == 1
    [sample] = result["rejected_samples"]
    assert sample == {"key": "4", "reason": "UserCreateError: Email: not-an-email is not properly formatted"}
    assert set(_users(emu)) == {"1", "2", "3", "5", "6"}

    rows[3]["email"] = "user4@example.com"
    rebuild(project, rows)
    again = _sync(project)
    assert again["counts"]["sent"] == 1
    assert _users(emu) == _expected(rows)


@pytest.mark.slow
def test_email_identity_with_on_delete_fails_before_anything_is_sent(project: Project, emu: ZendeskEmulator) -> None:
    # The runner passes on_delete to check_target: without it the upserts would go out and every
    # remove batch fail later (destroy_many does not take emails).
    _write(project, emu, [customer(i) for i in range(1, 4)], match={"email": "email"}, on_delete="delete",
           fields={"email": "email", "full_name": "name"})
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "people: on_delete: on_delete delete needs Zendesk users found by external_id" in proc.stderr
    assert emu.records("users") == []
