"""End to end: dbt build -> dbt-activate run (CLI) -> DuckDB warehouse -> PipedriveEmulator over HTTP.

Each test writes a throwaway dbt project whose model feeds Pipedrive persons (or deals), with custom
fields mapped by their names, runs the CLI as a user does, and reads the emulator's records back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing import PipedriveEmulator, PipedriveField
from tests.e2e.project import Project, customer
from tests.e2e.vendor_runs import rebuild, run_sync

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "pd-e2e-token-5be1c0ffee"
CUSTOM = {
    "persons": [PipedriveField("Country", "varchar"), PipedriveField("Score", "double"),
                PipedriveField("Signed up", "date"), PipedriveField("Segment", "enum", ("FR", "GB"))],
    "deals": [PipedriveField("Customer", "varchar")],
}
PERSON_FIELDS = {"email": "email", "full_name": "name", "country": "Country", "score": "Score",
                 "signup_date": "Signed up"}
SEGMENT = "country in ('FR', 'GB')"

@pytest.fixture
def emu() -> Iterator[PipedriveEmulator]:
    with PipedriveEmulator(token=TOKEN, custom_fields=CUSTOM) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb", env={"PIPEDRIVE_TOKEN": TOKEN})


def _rows(n: int = 12) -> list[dict[str, Any]]:
    return [customer(i) for i in range(1, n + 1)]


def _write(project: Project, emu: PipedriveEmulator, rows: list[dict[str, Any]], **sync: Any) -> None:
    block = {"destination": "crm", "object": "persons", "mode": "upsert", "primary_key": "customer_id",
             "match": {"email": "email"}, "fields": PERSON_FIELDS, "name": "people", **sync}
    destinations = {"crm": {"type": "pipedrive", "api_token": "{{ env_var('PIPEDRIVE_TOKEN') }}",
                            "base_url": emu.base_url}}
    project.write(rows, [block], destinations)


def _sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    return run_sync(project, "people", secret=TOKEN, expect_exit=expect_exit)


def _persons(emu: PipedriveEmulator) -> dict[str, dict[str, Any]]:
    """Live persons by email, with custom fields by name."""
    names = {emu.field_key("persons", f.name): f.name for f in CUSTOM["persons"]}
    found: dict[str, dict[str, Any]] = {}
    for record in emu.records("persons"):
        [email] = [e["value"] for e in record["emails"]]
        assert email not in found, f"duplicate person for {email}"
        found[email] = {"name": record["name"], **{names[k]: v for k, v in record["custom_fields"].items()}}
    return found


def _expected(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["email"]: {"name": r["full_name"], "Country": r["country"], "Score": r["score"],
                         "Signed up": r["signup_date"]} for r in rows}


def _search_requests(emu: PipedriveEmulator) -> int:
    return sum(n for path, n in emu.counters.by_path.items() if path.endswith("/search"))


def test_upsert_finds_existing_records_by_match_and_sends_custom_fields_by_name(
        project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows()
    [existing] = emu.add_records("persons", [{"name": "Someone Else", "emails": [{"value": "user3@example.com"}]}])
    _write(project, emu, rows)
    project.dbt("build")
    first = _sync(project)
    assert first["status"] == "success"
    assert first["counts"]["sent"] == 12
    assert _persons(emu) == _expected(rows)  # the person created by hand was updated, not duplicated
    assert any(r["id"] == existing and r["name"] == "Customer 3" for r in emu.records("persons"))
    assert emu.counters.by_path["/v1/personFields"] == 1  # field names resolved once per sync

    rows[0]["full_name"], rows[1]["score"] = "Renamed 1", 99.5
    rebuild(project, rows)
    emu.reset_counters()
    second = _sync(project)
    assert (second["counts"]["changed"], second["counts"]["sent"]) == (2, 2)
    assert _persons(emu) == _expected(rows)
    writes = {p: n for p, n in emu.counters.by_path.items() if p.startswith("/api/v2/persons/") and "search" not in p}
    assert sum(writes.values()) == 2  # one PATCH per changed row, nothing else written


@pytest.mark.slow  # a second behaviour; the conformance suite covers it over HTTP
def test_a_second_run_does_not_search_for_known_records(project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows()
    _write(project, emu, rows)
    project.dbt("build")
    _sync(project)
    assert _search_requests(emu) == 12
    for row in rows[:4]:
        row["score"] = 77.25
    rebuild(project, rows)
    emu.reset_counters()
    second = _sync(project)
    assert second["counts"]["sent"] == 4
    assert _search_requests(emu) == 0
    assert _persons(emu) == _expected(rows)


def test_mirror_deletes_the_persons_of_rows_that_left_the_segment(project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows()
    _write(project, emu, rows, mode="mirror", where=SEGMENT)
    project.dbt("build")
    _sync(project)
    in_segment = [r for r in rows if r["country"] in ("FR", "GB")]
    assert _persons(emu) == _expected(in_segment)

    moved = next(r for r in in_segment if r["country"] == "FR")
    moved["country"] = "RU"
    rows = [r for r in rows if r["customer_id"] != 1]  # GB, deleted from the model
    rebuild(project, rows)
    second = _sync(project)
    assert second["counts"]["removed"] == 2
    assert _persons(emu) == _expected([r for r in rows if r["country"] in ("FR", "GB")])


@pytest.mark.slow  # a second behaviour; the conformance suite covers it over HTTP
def test_on_delete_clear_empties_the_mapped_fields_and_keeps_the_person(
        project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(6)
    _write(project, emu, rows, on_delete="clear")
    project.dbt("build")
    _sync(project)
    rebuild(project, rows[1:])
    second = _sync(project)
    assert second["counts"]["removed"] == 1
    assert _persons(emu)["user1@example.com"] == {"name": "Customer 1"}  # custom fields cleared, name kept
    assert len(emu.records("persons")) == 6


@pytest.mark.slow
def test_update_touches_existing_persons_only(project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(6)
    emu.add_records("persons", [{"name": "Old", "emails": [{"value": f"user{i}@example.com"}]} for i in (2, 4)])
    _write(project, emu, rows, mode="update")
    project.dbt("build")
    result = _sync(project)
    assert (result["counts"]["sent"], result["counts"]["skipped"]) == (2, 4)
    assert _persons(emu) == _expected([rows[1], rows[3]])


@pytest.mark.slow
def test_create_skips_persons_that_exist(project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(6)
    emu.add_records("persons", [{"name": "Kept", "emails": [{"value": "user2@example.com"}]}])
    _write(project, emu, rows, mode="create")
    project.dbt("build")
    result = _sync(project)
    assert (result["counts"]["sent"], result["counts"]["skipped"]) == (5, 1)
    persons = _persons(emu)
    assert persons["user2@example.com"] == {"name": "Kept"}
    assert len(persons) == 6


@pytest.mark.slow
def test_append_creates_a_deal_per_added_or_changed_row(project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(5)
    block = {"destination": "crm", "object": "deals", "mode": "append", "primary_key": "customer_id",
             "fields": {"full_name": "title", "score": "value", "signup_date": "expected_close_date",
                        "email": "Customer"}, "name": "people"}
    project.write(rows, [block], {"crm": {"type": "pipedrive", "api_token": TOKEN, "base_url": emu.base_url}})
    project.dbt("build")
    _sync(project)
    rows[0]["score"] = 10.0
    rebuild(project, rows)
    second = _sync(project)
    assert second["counts"]["sent"] == 1
    deals = emu.records("deals")
    assert len(deals) == 6
    customer_key = emu.field_key("deals", "Customer")
    assert [(d["title"], d["value"], d["expected_close_date"], d["custom_fields"][customer_key])
            for d in deals if d["title"] == "Customer 1"] == [
        ("Customer 1", 1.5, "2024-01-02", "user1@example.com"), ("Customer 1", 10.0, "2024-01-02", "user1@example.com")]
    assert _search_requests(emu) == 0


@pytest.mark.slow
def test_refused_records_are_rejected_with_reasons_and_retried_next_run(
        project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(6)  # countries: GB, RU, FR, GB, RU, FR
    _write(project, emu, rows, fields={**PERSON_FIELDS, "country": "Segment"})
    project.dbt("build")
    emu.inject("partial", path=r"^/api/v2/persons$")  # Pipedrive refuses the first create
    first = _sync(project, expect_exit=1)
    assert first["status"] == "partial"
    reasons = sorted(r["reason"] for r in first["rejected_samples"])
    assert reasons == ["Pipedrive answered HTTP 400: Injected partial failure (emulator fault)",
                       "field 'Segment' (enum): 'RU' is not an option (options: FR, GB)",
                       "field 'Segment' (enum): 'RU' is not an option (options: FR, GB)"]
    assert len(emu.records("persons")) == 3

    second = _sync(project, expect_exit=1)  # only the rejected rows are tried again
    assert (second["counts"]["sent"], second["counts"]["rejected"]) == (1, 2)
    assert len(emu.records("persons")) == 4


@pytest.mark.slow
def test_throttling_is_retried_without_duplicates(project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(8)
    _write(project, emu, rows)
    project.dbt("build")
    emu.inject("throttle", count=2, path=r"^/api/v2/persons$")
    result = _sync(project)
    assert result["counts"]["sent"] == 8
    assert emu.counters.throttled == 2
    assert _persons(emu) == _expected(rows)


@pytest.mark.slow
def test_a_spent_daily_budget_stops_the_sync_and_the_next_run_finishes_it(
        project: Project, emu: PipedriveEmulator) -> None:
    rows = _rows(10)
    _write(project, emu, rows)
    project.dbt("build")
    # In tokens: the fields list 20, a search 20, a create 5. The ten searches of the batch are in
    # flight together and arrive in any order with the creates (under load, often all before the first
    # create), so the budget must not assume an order: the fields list and every search take 220 of
    # it, so at least one create is answered, and a full sync needs 270, so not every person is created.
    emu.daily_limit = 20 + 10 * 20 + 5 * 5
    first = _sync(project, expect_exit=1)
    assert first["status"] == "error"
    assert "daily API token budget" in first["error"]
    assert 0 < len(emu.records("persons")) < 10

    emu.reset_daily()
    emu.daily_limit = None
    second = _sync(project)
    assert second["status"] == "success"
    assert _persons(emu) == _expected(rows)  # records created before the stop were found, not duplicated
