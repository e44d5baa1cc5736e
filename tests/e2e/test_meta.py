"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> MetaEmulator over HTTP.

Conversions API events are appended (an event older than 7 days and one Meta refuses are rejected
per row, the others accepted); a GB segment is mirrored into a Custom Audience across two runs in
batches of ``batch_size`` users, removals with DELETE. No raw email, phone number or name leaves the
process or is written anywhere (``tests/e2e/pii.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.meta import MetaEmulator
from tests.e2e.pii import assert_no_raw, files_under, outputs, person, raw_values, recording, state_dump
from tests.e2e.project import Project

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

PIXEL, AUDIENCE = "1234567890", "2345678901"
RecordingMeta = recording(MetaEmulator)
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
PEOPLE = f"""
select customer_id, email, country, country as country_code,
       split_part(full_name, ' ', 1) as first_name, split_part(full_name, ' ', 2) as last_name,
       '+44 7700 900' || lpad(cast(customer_id as varchar), 3, '0') as phone_number,
       case when customer_id = 5 then timestamp '{NOW}' - interval 8 day
            else timestamp '{NOW}' - interval 1 hour end as event_time,
       score as value, case when customer_id = 6 then 'EURO' else 'EUR' end as currency
from {{{{ ref('seed_customers') }}}}
"""
EVENTS = {"destination": "meta", "object": f"events:{PIXEL}", "mode": "append", "primary_key": "customer_id",
          "name": "meta_purchases", "fields": ["event_time", "email", "phone_number", "value", "currency"]}
AUDIENCE_SYNC = {"destination": "meta", "object": f"audience:{AUDIENCE}", "mode": "mirror",
                 "primary_key": "customer_id", "where": "country = 'GB'", "name": "gb_audience",
                 "fields": ["email", "phone_number", "first_name", "last_name", "country_code"]}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def emu() -> Iterator[Any]:
    with RecordingMeta(pixels=(PIXEL,), audiences=(AUDIENCE,)) as emulator:
        yield emulator
    assert emulator.errors == []
    assert emulator.tokens_in_url == 0


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def test_events_and_a_gb_audience_across_two_runs(project: Project, emu: Any) -> None:
    rows = [person(i) for i in range(1, 31)]
    project.write(rows, [EVENTS, AUDIENCE_SYNC],
                  {"meta": {"type": "meta", "access_token": emu.token, "base_url": emu.base_url,
                            "event_name": "Purchase", "batch_size": 4}}, model_sql=PEOPLE)
    project.dbt("build")
    first = project.activate("run", "-v")
    assert first.returncode == 1, first.stderr[-3000:]  # two events were refused

    events = project.result_of("meta_purchases")
    reasons = {r["key"]: r["reason"] for r in events["rejected_samples"]}
    assert set(reasons) == {"5", "6"}
    assert "older than 7 days" in reasons["5"] and "Invalid Currency Code" in reasons["6"]
    received = {e["event_id"]: e for e in emu.received(PIXEL)}
    assert set(received) == {str(i) for i in range(1, 31) if i not in (5, 6)}  # event_id: the primary key
    assert received["2"]["user_data"]["em"] == [sha("user2@example.com")]
    assert received["2"]["user_data"]["ph"] == [sha("447700900002")]

    assert emu.member_emails(AUDIENCE) == {sha(r["email"]) for r in rows if r["country"] == "GB"}
    adds = [n for method, _, n in emu.requests_log if method == "POST"]
    assert adds == [4, 4, 2]  # 10 GB rows in batches of batch_size

    by_id = {r["customer_id"]: r for r in rows}
    for i in (1, 4, 7):
        del by_id[i]
    by_id[10] = person(10, email="changed10@example.com")
    by_id[100] = person(100)
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    second = project.activate("run", "-v")
    assert project.result_of("gb_audience")["counts"]["removed"] == 3, second.stderr[-3000:]
    assert emu.member_emails(AUDIENCE) == {sha(r["email"]) for r in by_id.values() if r["country"] == "GB"}
    assert sorted(m for m, _, _ in emu.requests_log[3:]) == ["DELETE", "DELETE", "POST"]

    assert_no_raw([*raw_values(rows), "changed10@example.com"], requests="\n".join(emu.seen),
                  output=outputs(first, second),
                  artifacts=files_under(project.root / "target" / "activate")
                  + (project.root / "target" / "activate_results.json").read_text(),
                  state=state_dump(project))
