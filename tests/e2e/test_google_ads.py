"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> GoogleAdsEmulator over HTTP.

Conversions are appended and the clicks Google does not know are rejected per row from the partial
failure; a GB segment is mirrored into a Customer Match list across two runs, each batch through a
job's whole life cycle (create, addOperations, run, polls). Neither leaks a raw email, phone number
or name anywhere (``tests/e2e/pii.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.google_ads import GoogleAdsEmulator
from tests.e2e.pii import assert_no_raw, files_under, outputs, person, raw_values, recording, state_dump
from tests.e2e.project import Project

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

LIST_ID = "5550001"
RecordingAds = recording(GoogleAdsEmulator)
CLICKED = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
UNKNOWN_CLICKS = (3, 7)
PEOPLE = """
select customer_id, email, country, country as country_code,
       split_part(full_name, ' ', 1) as first_name, split_part(full_name, ' ', 2) as last_name,
       'SW1A ' || customer_id as postal_code,
       '+44 7700 900' || lpad(cast(customer_id as varchar), 3, '0') as phone_number,
       'G-' || customer_id as gclid, 'O-' || customer_id as order_id,
       updated_at as conversion_date_time, score as conversion_value
from {{ ref('seed_customers') }}
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def emu() -> Iterator[Any]:
    clicks = {f"G-{i}": CLICKED for i in range(1, 200) if i not in UNKNOWN_CLICKS}
    with RecordingAds(user_lists=(LIST_ID,), conversion_actions=("987",), clicks=clicks,
                      manager_id="1112223333") as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def destinations(emu: GoogleAdsEmulator) -> dict[str, Any]:
    return {"ads": {"type": "google_ads", "developer_token": emu.developer_token, "client_id": emu.client_id,
                    "client_secret": emu.client_secret, "refresh_token": emu.refresh_token,
                    "customer_id": "123-456-7890", "login_customer_id": "111-222-3333", "conversion_action": "987",
                    "currency_code": "EUR", "base_url": emu.base_url, "token_url": emu.base_url + "/token",
                    "job_poll_interval": 0.05}}


CUSTOMER_MATCH = {"destination": "ads", "object": LIST_ID, "mode": "mirror", "primary_key": "customer_id",
                  "where": "country = 'GB'", "name": "gb_customer_match",
                  "fields": ["email", "phone_number", "first_name", "last_name", "country_code", "postal_code"]}
CONVERSIONS = {"destination": "ads", "object": "conversions", "mode": "append", "primary_key": "customer_id",
               "name": "offline_conversions",
               "fields": ["gclid", "order_id", "conversion_date_time", "conversion_value", "email"]}


def gb_emails(rows: list[dict[str, Any]]) -> set[str]:
    return {sha(r["email"]) for r in rows if r["country"] == "GB"}


def test_conversions_and_a_gb_customer_match_list_across_two_runs(project: Project, emu: Any) -> None:
    rows = [person(i) for i in range(1, 31)]
    project.write(rows, [CUSTOMER_MATCH, CONVERSIONS], destinations(emu), model_sql=PEOPLE)
    project.dbt("build")
    plan = project.activate("plan", "--samples", "3")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert sha("user1@example.com") in plan.stdout + plan.stderr  # the request as it will be sent: hashes
    first = project.activate("run", "-v")
    assert first.returncode == 1, first.stderr[-3000:]  # two conversions were refused

    # Conversions: appended, the clicks Google does not know rejected per row from the partial failure.
    conversions = project.result_of("offline_conversions")
    assert conversions["status"] == "partial"
    assert conversions["counts"]["rejected"] == 2 and conversions["counts"]["sent"] == 28
    reasons = {r["key"]: r["reason"] for r in conversions["rejected_samples"]}
    assert set(reasons) == {"3", "7"} and all(r.startswith("EVENT_NOT_FOUND: ") for r in reasons.values())
    uploaded = {c["orderId"]: c for c in emu.uploaded()}
    assert set(uploaded) == {f"O-{i}" for i in range(1, 31) if i not in UNKNOWN_CLICKS}
    assert uploaded["O-2"]["conversionDateTime"] == "2025-06-03 10:02:00+00:00"  # no zone in the model: UTC
    assert uploaded["O-2"]["userIdentifiers"] == [{"hashedEmail": sha("user2@example.com")}]

    # Customer Match: the GB rows, through one job (create, addOperations, run, polls until done).
    assert project.result_of("gb_customer_match")["counts"]["sent"] == 10
    assert emu.member_emails(LIST_ID) == gb_emails(rows)
    assert emu.job_statuses() == ["SUCCESS"]
    assert sum("/operations/" in s for s in emu.seen) >= 2

    by_id = {r["customer_id"]: r for r in rows}
    for i in (1, 4, 7):
        del by_id[i]  # GB rows that leave the model
    by_id[10] = person(10, email="changed10@example.com")
    by_id[13] = person(13, country="FR")  # leaves the segment
    by_id[100] = person(100)  # a new GB row
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    second = project.activate("run", "-v")
    assert second.returncode == 1, second.stderr[-3000:]  # 3 and 7 are refused again
    result = project.result_of("gb_customer_match")
    assert result["counts"]["removed"] == 4 and result["counts"]["changed"] == 1 and result["counts"]["added"] == 1
    assert emu.member_emails(LIST_ID) == gb_emails(list(by_id.values()))
    assert emu.job_statuses() == ["SUCCESS"] * 3  # a job for the additions and changes, one for the removals
    assert "O-100" in {c["orderId"] for c in emu.uploaded()}

    assert_no_raw([*raw_values(rows), "changed10@example.com"], requests="\n".join(emu.seen),
                  output=outputs(plan, first, second),
                  artifacts=files_under(project.root / "target" / "activate")
                  + (project.root / "target" / "activate_results.json").read_text(),
                  state=state_dump(project))


@pytest.mark.slow
def test_a_daily_quota_stops_the_sync_and_the_next_run_sends_the_rest(project: Project, emu: Any) -> None:
    rows = [person(i) for i in range(1, 13) if i not in UNKNOWN_CLICKS]
    project.write(rows, [CONVERSIONS], {"ads": {**destinations(emu)["ads"], "batch_size": 2}}, model_sql=PEOPLE)
    project.dbt("build")
    emu.daily_limit = 4  # the token request and three uploads of two conversions
    first = project.activate("run")
    assert first.returncode == 1
    result = project.result_of("offline_conversions")
    assert result["status"] == "error" and "quota" in result["error"] and "next run" in result["error"]
    assert result["counts"]["sent"] == 6 and len(emu.uploaded()) == 6
    emu.reset_daily()
    emu.daily_limit = None
    second = project.activate("run")
    assert second.returncode == 0, second.stderr[-3000:]
    assert project.result_of("offline_conversions")["counts"]["sent"] == len(rows) - 6
    assert sorted(c["orderId"] for c in emu.uploaded()) == sorted(f"O-{r['customer_id']}" for r in rows)
