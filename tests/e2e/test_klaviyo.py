"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> KlaviyoEmulator over HTTP.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds Klaviyo profiles found by e-mail through bulk import jobs (submitted, polled, their import
errors read), and compares what the emulator holds with the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.klaviyo.emulator import KlaviyoEmulator
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

KEY = "pk_e2e_5f4dcc3b5aa765d61d8327deb882cf99"
SEGMENT = "country in ('FR', 'GB')"
FIELDS = {"full_name": "first_name", "country": "country", "score": "score", "is_vip": "is_vip",
          "signup_date": "signup_date"}
JOBS = "/api/profile-bulk-import-jobs"


@pytest.fixture
def emu() -> Iterator[KlaviyoEmulator]:
    with KlaviyoEmulator(token=KEY, polls_to_complete=3) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def activate(**extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "kl", "object": "profiles", "mode": "upsert", "primary_key": "customer_id",
             "match": {"email": "email"}, "fields": FIELDS, "where": SEGMENT, "name": "customers_klaviyo", **extra}]


def destinations(emu: KlaviyoEmulator, **config: Any) -> dict[str, Any]:
    return {"kl": {"type": "klaviyo", "api_key": KEY, "base_url": emu.base_url, "list_id": "NEWS01",
                   "job_poll_interval": 0.05, "timeout": 10, **config}}


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of("customers_klaviyo")


def model_as_klaviyo(project: Project) -> dict[str, dict[str, Any]]:
    rows = project.model_rows(where=SEGMENT, columns=["email", "full_name", "country", "score", "is_vip",
                                                      "signup_date"])
    return {email: {"first_name": name, "location": {"country": country},
                    "properties": {"score": score, "is_vip": vip, "signup_date": since.isoformat()},
                    "lists": ["NEWS01"]}
            for email, name, country, score, vip, since in rows}


def profiles(emu: KlaviyoEmulator) -> dict[str, dict[str, Any]]:
    return {p["email"]: {k: v for k, v in p.items() if k not in ("id", "email")} for p in emu.profiles()}


def test_profiles_equal_the_model_and_removed_rows_are_cleared(project: Project, emu: KlaviyoEmulator) -> None:
    rows = [customer(i) for i in range(1, 31)]
    project.write(rows, activate(on_delete="clear"), destinations(emu))
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["sent"] == len(model_as_klaviyo(project)) > 0
    assert profiles(emu) == model_as_klaviyo(project)
    polls = sum(n for path, n in emu.counters.by_path.items() if path.startswith(JOBS + "/"))
    assert polls == 3 * emu.counters.by_path[JOBS]  # every job polled until complete

    by_id = {r["customer_id"]: r for r in rows}
    by_id[6]["full_name"] = "Renamed 6"
    del by_id[4]  # GB: in the segment, so its profile is cleared
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    sync(project)
    stored = profiles(emu)
    assert stored["user6@example.com"]["first_name"] == "Renamed 6"
    assert stored["user4@example.com"] == {"properties": {}, "lists": ["NEWS01"]}  # identity kept, fields cleared
    assert sync(project)["counts"]["sent"] == 0


@pytest.mark.slow
def test_an_import_error_rejects_its_row_and_throttling_is_retried(project: Project, emu: KlaviyoEmulator) -> None:
    emu.rate_limit = (4, 1.0)  # the account allows less than destinations.yml claims
    rows = [customer(i) for i in range(1, 31)]
    rows[3]["email"] = "not-an-email"  # customer 4, GB
    project.write(rows, activate(), destinations(emu, batch_size=4, rate_limit={"requests": 10, "per_seconds": 1}))
    project.dbt("build")
    result = sync(project, expect_exit=1)
    assert emu.counters.throttled > 0
    assert result["status"] == "partial"
    assert result["rejected_samples"] == [{"key": "4", "reason": "invalid: Invalid email address: 'not-an-email'. "
                                                                  "(email)"}]
    assert set(profiles(emu)) == set(model_as_klaviyo(project)) - {"not-an-email"}
    rows[3]["email"] = "user4@example.com"
    project.write_rows(rows)
    project.dbt("build")
    assert sync(project)["counts"]["sent"] == 1
    assert profiles(emu) == model_as_klaviyo(project)
    assert KEY not in (project.root / "target" / "activate_results.json").read_text()


@pytest.mark.slow
def test_append_sends_an_event_per_added_or_changed_row(project: Project, emu: KlaviyoEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    block = {"destination": "kl", "object": "Customer Updated", "mode": "append", "primary_key": "customer_id",
             "fields": {"email": "email", "full_name": "full_name", "score": "value"}, "where": SEGMENT,
             "name": "customers_klaviyo"}
    project.write(rows, [block], destinations(emu, poll_timeout=60))  # the older name of job_timeout
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Still read, and said on the console when destinations.yml is loaded, with the key to use instead.
    warning = f"{project.root / 'destinations.yml'}: kl.poll_timeout is deprecated: rename it to job_timeout"
    assert warning in proc.stderr
    first = project.result_of("customers_klaviyo")
    rows[5]["full_name"] = "Renamed 6"  # customer 6, FR
    project.write_rows(rows)
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["sent"] == 1
    events = emu.events("Customer Updated")
    assert len(events) == first["counts"]["sent"] + 1
    renamed = [e for e in events if e["properties"]["full_name"] == "Renamed 6"]
    assert len(renamed) == 1 and renamed[0]["value"] == customer(6)["score"]
    assert renamed[0]["properties"]["customer_id"] == 6
