"""End to end: dbt build -> dbt-activate run (CLI) -> DuckDB warehouse -> IntercomEmulator over HTTP.

Each test writes a throwaway dbt project whose ``customers`` model feeds Intercom contacts (users
matched by external_id = customer_id, custom data attributes for the other columns), runs the CLI
as a user does, and reads the emulator's contacts back.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.intercom.emulator import IntercomEmulator
from tests.e2e.project import Project, customer
from tests.e2e.vendor_runs import rebuild, run_sync

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "ic-e2e-token-8d7c6b5a4f3e"
ATTRIBUTES = {"country": "string", "score": "float", "signed_up": "date", "vip": "boolean"}
FIELDS = {"customer_id": "external_id", "email": "email", "full_name": "name", "country": "country",
          "score": "score", "signup_date": "signed_up", "is_vip": "vip"}
SEGMENT = "country in ('FR', 'GB')"


@pytest.fixture
def emu() -> Iterator[IntercomEmulator]:
    with IntercomEmulator(token=TOKEN, attributes=ATTRIBUTES) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb", env={"INTERCOM_TOKEN": TOKEN})


def _write(project: Project, emu: IntercomEmulator, rows: list[dict[str, Any]], **sync: Any) -> None:
    block = {"destination": "support", "object": "contacts", "mode": "upsert", "primary_key": "customer_id",
             "match": {"customer_id": "external_id"}, "fields": FIELDS, "name": "people", **sync}
    destinations = {"support": {"type": "intercom", "access_token": "{{ env_var('INTERCOM_TOKEN') }}",
                                "base_url": emu.base_url, "timeout": 10}}
    project.write(rows, [block], destinations)


def _sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    return run_sync(project, "people", secret=TOKEN, expect_exit=expect_exit)


def _contacts(emu: IntercomEmulator) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for contact in emu.records():
        assert contact["external_id"] not in found, f"duplicate contact {contact['external_id']}"
        found[contact["external_id"]] = {"email": contact["email"], "name": contact["name"],
                                         **contact["custom_attributes"]}
    return found


def _expected(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    def day(text: str) -> int:
        return calendar.timegm(dt.date.fromisoformat(text).timetuple())

    return {str(r["customer_id"]): {"email": r["email"], "name": r["full_name"], "country": r["country"],
                                    "score": r["score"], "signed_up": day(r["signup_date"]),
                                    "vip": r["is_vip"] == "true"} for r in rows}


def _searches(emu: IntercomEmulator) -> int:
    return emu.counters.by_path.get("/contacts/search", 0)


def test_upsert_updates_existing_contacts_and_searches_each_record_once_ever(
        project: Project, emu: IntercomEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    [existing] = emu.add_records([{"role": "user", "external_id": "3", "name": "Someone Else"}])
    _write(project, emu, rows)
    project.dbt("build")
    first = _sync(project)
    assert (first["status"], first["counts"]["sent"]) == ("success", 12)
    assert _contacts(emu) == _expected(rows)  # contact 3 was updated, not duplicated
    assert any(c["id"] == existing and c["name"] == "Customer 3" for c in emu.records())
    assert _searches(emu) == 12
    assert set(emu.versions) == {"2.14"}  # every request carried the Intercom-Version header

    rows[0]["full_name"], rows[1]["score"] = "Renamed 1", 99.5
    rebuild(project, rows)
    emu.reset_counters()
    second = _sync(project)
    assert (second["counts"]["changed"], second["counts"]["sent"]) == (2, 2)
    assert _contacts(emu) == _expected(rows)
    assert _searches(emu) == 0  # the ids found or created by the first run were kept
    assert emu.counters.requests == 2  # one PUT per changed row, nothing else


@pytest.mark.slow
def test_mirror_deletes_the_contacts_of_rows_that_left_the_segment(project: Project, emu: IntercomEmulator) -> None:
    rows = [customer(i) for i in range(1, 10)]
    _write(project, emu, rows, mode="mirror", where=SEGMENT)
    project.dbt("build")
    _sync(project)
    assert _contacts(emu) == _expected([r for r in rows if r["country"] in ("FR", "GB")])

    moved = next(r for r in rows if r["country"] == "FR")
    moved["country"] = "RU"
    rows = [r for r in rows if r["customer_id"] != 1]
    rebuild(project, rows)
    second = _sync(project)
    assert second["counts"]["removed"] == 2
    assert _contacts(emu) == _expected([r for r in rows if r["country"] in ("FR", "GB")])


@pytest.mark.slow
def test_a_refused_row_is_rejected_with_intercoms_reason_and_retried_next_run(
        project: Project, emu: IntercomEmulator) -> None:
    rows = [customer(i) for i in range(1, 7)]
    rows[3]["email"] = "not-an-email"
    _write(project, emu, rows)
    project.dbt("build")
    result = _sync(project, expect_exit=1)
    assert result["status"] == "partial"
    assert result["counts"]["rejected"] == 1
    [sample] = result["rejected_samples"]
    assert sample["key"] == "4"
    assert sample["reason"] == ("Intercom answered HTTP 400: parameter_invalid: not-an-email is not a valid "
                                "email address")
    assert set(_contacts(emu)) == {"1", "2", "3", "5", "6"}

    rows[3]["email"] = "user4@example.com"
    rebuild(project, rows)
    again = _sync(project)
    assert again["counts"]["sent"] == 1
    assert _contacts(emu) == _expected(rows)
