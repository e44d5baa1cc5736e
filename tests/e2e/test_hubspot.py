"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> HubSpotEmulator over HTTP.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds HubSpot contacts matched by email, runs the real CLI, and compares what the emulator holds
with the model, formatted as HubSpot stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.destinations.hubspot.payload import format_value
from dbt_activate.testing import HubSpotEmulator, HubSpotObject, HubSpotProperty
from tests.e2e.project import COLUMNS, Project, customer
from tests.e2e.vendor_runs import changed

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "pat-na1-e2e-0f1e2d3c4b5a69788796a5b4"
SEGMENT = "country in ('FR', 'GB')"
PROPERTIES = [HubSpotProperty("customer_id", "number"), HubSpotProperty("full_name"), HubSpotProperty("country"),
              HubSpotProperty("score", "number"), HubSpotProperty("is_vip", "bool"),
              HubSpotProperty("signup_date", "date"), HubSpotProperty("updated_at", "datetime")]
# A custom object without unique properties: what `append` is for (a new record per change).
SIGNUPS = HubSpotObject("signups", "2-7654321", (HubSpotProperty("email"), *PROPERTIES))


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token=TOKEN, properties={"contacts": PROPERTIES}, custom_objects=[SIGNUPS]) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def activate(mode: str, obj: str = "contacts", **extra: Any) -> list[dict[str, Any]]:
    block = {"destination": "crm", "object": obj, "mode": mode, "primary_key": "customer_id", "where": SEGMENT,
             "name": "customers_hubspot", **extra}
    if obj == "contacts":
        block.setdefault("match", {"email": "email"})
    return [block]


def destinations(emu: HubSpotEmulator, **config: Any) -> dict[str, Any]:
    return {"crm": {"type": "hubspot", "access_token": TOKEN, "base_url": emu.base_url, "timeout": 10, **config}}


def seed_rows(n: int = 40) -> list[dict[str, Any]]:
    return [customer(i) for i in range(1, n + 1)]


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of("customers_hubspot")


def model_as_hubspot(project: Project, where: str = SEGMENT) -> dict[str, dict[str, str]]:
    """The model's rows as HubSpot stores them: strings, NULLs absent, by email."""
    out: dict[str, dict[str, str]] = {}
    for row in project.model_rows(where=where):
        props = {c: format_value(v) for c, v in zip(COLUMNS, row, strict=True)}
        out[str(props["email"])] = {c: v for c, v in props.items() if v is not None}
    return out


def contacts(emu: HubSpotEmulator) -> dict[str, dict[str, str]]:
    return {r["properties"]["email"]: r["properties"] for r in emu.records("contacts")}


def mutate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rename rows 6, 9, 10; delete 1, 4, 7; add 100-102 (101 is RU); move 3 (FR) out of the segment.

    ``customer(i)`` lives in FR when i % 3 == 0, GB when i % 3 == 1, RU otherwise.
    """
    return changed(rows, renamed=(6, 9, 10), deleted=(1, 4, 7), added=(100, 101, 102), moved_out=(3,))


def in_segment(rows: list[dict[str, Any]]) -> int:
    return sum(r["country"] in ("FR", "GB") for r in rows)


@pytest.mark.parametrize("mode", ["upsert", "mirror"])
def test_upsert_and_mirror_make_hubspot_equal_the_model(project: Project, emu: HubSpotEmulator, mode: str) -> None:
    rows = seed_rows()
    project.write(rows, activate(mode), destinations(emu))
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["sent"] == in_segment(rows)
    assert contacts(emu) == model_as_hubspot(project)

    project.write_rows(mutate(rows))
    project.dbt("build")
    second = sync(project)
    gone = {f"user{i}@example.com" for i in (1, 3, 4, 7) if customer(i)["country"] in ("FR", "GB")}
    if mode == "mirror":
        assert contacts(emu) == model_as_hubspot(project)  # deleted and out-of-segment rows archived
        assert {r["properties"]["email"] for r in emu.records("contacts", archived=True)} == gone
        assert second["counts"]["removed"] == len(gone)
    else:
        assert set(contacts(emu)) == set(model_as_hubspot(project)) | gone  # upsert keeps them
    assert sync(project)["counts"]["sent"] == 0  # nothing changed since


def test_changed_emails_update_the_same_contacts_in_mirror(project: Project, emu: HubSpotEmulator) -> None:
    """500 contacts; then 25 new emails (same customer_id), 20 renamed rows, 5 deleted rows."""
    rows = seed_rows(500)
    project.write(rows, activate("mirror", where="1 = 1"), destinations(emu))
    project.dbt("build")
    assert sync(project)["counts"]["sent"] == 500
    by_id = {r["customer_id"]: dict(r) for r in rows}
    for i in range(1, 26):
        by_id[i]["email"] = f"customer{i}@moved.example.com"
    for i in range(21, 46):  # 21-25 change both their email and their name
        by_id[i]["full_name"] = f"Renamed {i}"
    for i in range(46, 51):
        del by_id[i]
    project.write_rows(list(by_id.values()))
    project.dbt("build")
    second = sync(project)
    assert (second["counts"]["changed"], second["counts"]["removed"], second["counts"]["rejected"]) == (45, 5, 0)

    def assert_hubspot_equals_the_model() -> None:
        stored = emu.records("contacts")
        assert len(stored) == 495, "one contact per customer: no duplicate under a new email"
        assert contacts(emu) == model_as_hubspot(project, where="1 = 1")
        assert not {f"user{i}@example.com" for i in range(1, 26)} & set(contacts(emu))  # no old email
        assert len({r["properties"]["customer_id"] for r in stored}) == 495

    assert_hubspot_equals_the_model()
    archived = {r["properties"]["email"] for r in emu.records("contacts", archived=True)}
    assert archived == {f"user{i}@example.com" for i in range(46, 51)}  # the moved ones were updated, not archived
    assert sync(project)["counts"]["sent"] == 0  # nothing changed since
    full = project.activate("run", "--full-resync")
    assert full.returncode == 0, full.stderr[-3000:]
    assert_hubspot_equals_the_model()


def test_on_delete_clear_empties_the_mapped_properties(project: Project, emu: HubSpotEmulator) -> None:
    rows = seed_rows()
    project.write(rows, activate("upsert", on_delete="clear"), destinations(emu))
    project.dbt("build")
    sync(project)
    project.write_rows(mutate(rows))
    project.dbt("build")
    sync(project)
    stored = contacts(emu)
    assert stored["user4@example.com"] == {"email": "user4@example.com"}  # 4 is GB, deleted from the model
    assert "user2@example.com" not in stored  # RU: never in the segment
    assert stored["user6@example.com"]["full_name"] == "Renamed 6"


def test_update_changes_existing_contacts_and_skips_the_others(project: Project, emu: HubSpotEmulator) -> None:
    emu.add_records("contacts", [{"email": f"user{i}@example.com", "full_name": "Old"} for i in (1, 4, 5)])
    rows = seed_rows(12)
    project.write(rows, activate("update"), destinations(emu))
    project.dbt("build")
    result = sync(project)
    existing = {"user1@example.com", "user4@example.com"}  # 5 is RU: outside the segment
    assert result["counts"]["sent"] == len(existing)
    assert result["counts"]["skipped"] == in_segment(rows) - len(existing)
    assert result["status"] == "success"
    model = model_as_hubspot(project)
    stored = contacts(emu)
    assert set(stored) == existing | {"user5@example.com"}
    for email in existing:
        assert stored[email] == model[email]
    assert stored["user5@example.com"]["full_name"] == "Old"


def test_bad_emails_cost_one_request_each_and_debug_shows_the_splits(project: Project, emu: HubSpotEmulator) -> None:
    """Issue 17: HubSpot refuses a batch whole for one invalid email; the other 99 rows still arrive."""
    rows = seed_rows(1000)
    bad = (5, 350, 777)  # three batches of 100
    for i in bad:
        rows[i - 1]["email"] = f"user{i}@example"
    project.write(rows, activate("upsert", where="1 = 1"), destinations(emu))
    project.dbt("build")
    proc = project.activate("run", "--debug")
    assert proc.returncode == 1, proc.stderr[-3000:]  # rejected rows
    result = project.result_of("customers_hubspot")
    assert (result["counts"]["sent"], result["counts"]["rejected"]) == (997, 3)
    assert sorted(result["rejected_samples"], key=lambda r: int(r["key"])) == [
        {"key": str(i), "reason": f"VALIDATION_ERROR: email: Email address user{i}@example is invalid"} for i in bad]
    assert len(emu.records("contacts")) == 997
    assert emu.counters.requests <= 10 + 3 * 15
    assert proc.stderr.count("HubSpot refused 100 records for a value it named: resending the other 99") == 3


def test_create_skips_the_contacts_hubspot_already_has(project: Project, emu: HubSpotEmulator) -> None:
    """Issue 17: HubSpot's 2024 409 body (OBJECT_ALREADY_EXISTS) means skipped, not rejected (exit 0)."""
    emu.add_records("contacts", [{"email": f"user{i}@example.com", "full_name": "Made in HubSpot"}
                                 for i in range(2, 101, 2)])
    project.write(seed_rows(100), activate("create", where="1 = 1"), destinations(emu))
    project.dbt("build")
    result = sync(project)
    assert result["status"] == "success"
    assert (result["counts"]["sent"], result["counts"]["skipped"], result["counts"]["rejected"]) == (50, 50, 0)
    stored = contacts(emu)
    assert len(stored) == 100 and stored["user2@example.com"]["full_name"] == "Made in HubSpot"


@pytest.mark.slow
def test_create_sends_new_contacts_only(project: Project, emu: HubSpotEmulator) -> None:
    emu.add_records("contacts", [{"email": "user1@example.com", "full_name": "Made in HubSpot"}])
    rows = seed_rows(12)
    project.write(rows, activate("create"), destinations(emu))
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["skipped"] == 1  # user1 exists already: HubSpot's conflict
    assert contacts(emu)["user1@example.com"]["full_name"] == "Made in HubSpot"
    project.write_rows(mutate(rows))
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["changed"] == 0
    assert contacts(emu)["user6@example.com"]["full_name"] == "Customer 6"  # create never updates
    assert {"user100@example.com", "user102@example.com"} <= set(contacts(emu))
    assert second["counts"]["sent"] == 2


@pytest.mark.slow
def test_append_creates_a_custom_object_record_per_change(project: Project, emu: HubSpotEmulator) -> None:
    rows = seed_rows(12)
    project.write(rows, activate("append", obj="2-7654321"), destinations(emu))
    project.dbt("build")
    first = sync(project)
    project.write_rows(mutate(rows))
    project.dbt("build")
    second = sync(project)
    stored = emu.records("signups")
    assert len(stored) == first["counts"]["sent"] + second["counts"]["sent"]
    assert [r["properties"]["full_name"] for r in stored].count("Renamed 6") == 1


@pytest.mark.slow
def test_values_are_formatted_as_hubspot_documents(project: Project, emu: HubSpotEmulator) -> None:
    row = customer(4) | {"signup_date": "2015-05-01", "updated_at": "2015-05-01 12:30:15", "score": 2.5}
    project.write([row], activate("upsert", where="1 = 1"), destinations(emu))
    project.dbt("build")
    sync(project)
    assert contacts(emu)["user4@example.com"] == {
        "email": "user4@example.com", "customer_id": "4", "full_name": "Customer 4", "country": "GB",
        "score": "2.5", "is_vip": "true", "signup_date": "1430438400000",  # midnight UTC, epoch ms
        "updated_at": "1430483415000"}


@pytest.mark.slow
def test_a_refused_row_is_rejected_with_hubspots_reason_and_the_others_sync(project: Project,
                                                                           emu: HubSpotEmulator) -> None:
    rows = seed_rows(12)
    rows[3]["email"] = "not-an-email"  # customer 4, GB
    project.write(rows, activate("upsert"), destinations(emu))
    project.dbt("build")
    result = sync(project, expect_exit=1)
    assert result["status"] == "partial"
    assert result["counts"]["rejected"] == 1
    assert result["rejected_samples"] == [{"key": "4", "reason": "VALIDATION_ERROR: email: Email address "
                                                                  "not-an-email is invalid"}]
    assert set(contacts(emu)) == set(model_as_hubspot(project)) - {"not-an-email"}
    rows[3]["email"] = "user4@example.com"  # fixed in the model: the next run sends only that row
    project.write_rows(rows)
    project.dbt("build")
    again = sync(project)
    assert again["counts"]["sent"] == 1
    assert contacts(emu) == model_as_hubspot(project)


@pytest.mark.slow
def test_an_unknown_property_rejects_every_row_with_its_name(project: Project, emu: HubSpotEmulator) -> None:
    project.write(seed_rows(6), activate("upsert", fields={"full_name": "nickname"}), destinations(emu))
    project.dbt("build")
    result = sync(project, expect_exit=1)
    assert result["counts"]["sent"] == 0
    assert result["counts"]["rejected"] == in_segment(seed_rows(6))
    assert result["rejected_samples"][0]["reason"] == 'VALIDATION_ERROR: nickname: Property "nickname" does not exist'


@pytest.mark.slow
def test_throttling_is_retried_and_every_row_arrives(project: Project, emu: HubSpotEmulator) -> None:
    emu.rate_limit = (4, 1.0)  # the account allows less than destinations.yml claims
    rows = seed_rows(90)
    project.write(rows, activate("upsert"), destinations(emu, batch_size=5, rate_limit={"requests": 8,
                                                                                        "per_seconds": 1}))
    project.dbt("build")
    result = sync(project)
    assert emu.counters.throttled > 0
    assert result["counts"]["sent"] == in_segment(rows)
    assert contacts(emu) == model_as_hubspot(project)


@pytest.mark.slow
def test_the_daily_limit_stops_the_sync_and_the_next_run_sends_the_rest(project: Project,
                                                                       emu: HubSpotEmulator) -> None:
    emu.daily_limit = 2
    rows = seed_rows(60)
    project.write(rows, activate("upsert"), destinations(emu, batch_size=10, max_concurrency=1))
    project.dbt("build")
    first = sync(project, expect_exit=1)
    assert "daily API limit" in first["error"]
    assert first["counts"]["sent"] == 20
    assert len(contacts(emu)) == 20
    emu.reset_daily()
    emu.daily_limit = None
    second = sync(project)
    assert second["counts"]["sent"] == in_segment(rows) - 20
    assert contacts(emu) == model_as_hubspot(project)


@pytest.mark.slow
def test_5xx_and_dropped_connections_are_retried(project: Project, emu: HubSpotEmulator) -> None:
    emu.inject("status_5xx", count=2, status=502)
    emu.inject("drop")
    rows = seed_rows(30)
    project.write(rows, activate("upsert"), destinations(emu))
    project.dbt("build")
    result = sync(project)
    assert emu.counters.faults == 3
    assert result["counts"]["sent"] == in_segment(rows)
    assert contacts(emu) == model_as_hubspot(project)
    assert TOKEN not in (project.root / "target" / "activate_results.json").read_text()
