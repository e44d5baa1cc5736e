"""End to end: dbt build (DuckDB) -> dbt-activate run (CLI) -> SalesforceEmulator over real HTTP.

The destination authenticates with OAuth client credentials against the emulator, whose token
answer gives the instance URL; the client secret comes from an env var and must never appear in
the output or the artifacts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing import SalesforceEmulator, SalesforceField
from tests.e2e.project import COLUMNS, Project, customer, fresh_database

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

SECRET = "sf-client-secret-7d1e9b2c4a"
SEGMENT = "country in ('FR', 'GB')"
IN_SEGMENT = {"FR", "GB"}
FIELDS = {"customer_id": "Customer_Id__c", "email": "Email", "full_name": "LastName", "country": "MailingCountry",
          "score": "Score__c", "is_vip": "Vip__c", "signup_date": "Signup_Date__c", "updated_at": "Updated_At__c"}
CONTACT_FIELDS = [
    SalesforceField("Customer_Id__c", external_id=True, length=20), SalesforceField("Score__c", "double"),
    SalesforceField("Vip__c", "boolean"), SalesforceField("Signup_Date__c", "date"),
    SalesforceField("Updated_At__c", "datetime"), SalesforceField("Tier__c", "picklist", picklist=("Gold", "Silver")),
]
EVENT_FIELDS = [SalesforceField("Customer__c", length=20), SalesforceField("Score__c", "double")]


@pytest.fixture
def emu() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(token=None, client_id="dbt-activate", client_secret=SECRET,
                            fields={"Contact": CONTACT_FIELDS},
                            custom_objects={"Signup_Event__c": EVENT_FIELDS}) as emulator:
        emulator.token = "issued-token-3f9a"  # only the token endpoint hands it out
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with fresh_database("act_sf") as destination_db:
        yield Project(tmp_path, "duckdb", destination_db=destination_db, env={"SF_CLIENT_SECRET": SECRET})


def _destinations(emu: SalesforceEmulator, **extra: Any) -> dict[str, Any]:
    return {"sf": {"type": "salesforce", "login_url": emu.base_url, "client_id": "dbt-activate",
                   "client_secret": "{{ env_var('SF_CLIENT_SECRET') }}", **extra}}


def _activate(mode: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "sf", "object": "Contact", "mode": mode, "primary_key": "customer_id",
             "fields": FIELDS, "where": SEGMENT, "name": "customers_sf", **extra}]


def _seed(n: int = 60) -> list[dict[str, Any]]:
    return [customer(i) for i in range(1, n + 1)]


def _mutated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rename 3, delete 3, insert 3, move 2 out of the segment (FR/GB -> RU)."""
    by_id = {r["customer_id"]: dict(r) for r in rows}
    for i in (3, 4, 6):
        by_id[i].update(full_name=f"Renamed {i}", score=999.5)
    for i in (12, 13, 15):
        del by_id[i]
    for i in (100, 101, 103):
        by_id[i] = customer(i)
    for i in (18, 19):
        by_id[i]["country"] = "RU"
    return list(by_id.values())


def _sync(project: Project, *, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    artifacts = (project.root / "target" / "activate_results.json").read_text()
    for text in (proc.stdout, proc.stderr, artifacts):
        assert SECRET not in text and "issued-token-3f9a" not in text
    return project.result_of("customers_sf")


def _model(project: Project, where: str = SEGMENT) -> dict[str, dict[str, Any]]:
    """The model as Salesforce should hold it: Customer_Id__c -> formatted fields."""
    out = {}
    for row in project.model_rows(where=where):
        values = dict(zip(COLUMNS, row, strict=True))
        updated: dt.datetime = values["updated_at"]
        out[str(row[0])] = {"Email": values["email"], "LastName": values["full_name"],
                            "MailingCountry": values["country"], "Score__c": values["score"],
                            "Vip__c": values["is_vip"], "Signup_Date__c": values["signup_date"].isoformat(),
                            "Updated_At__c": updated.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    return out


def _contacts(emu: SalesforceEmulator) -> dict[str, dict[str, Any]]:
    return {r["Customer_Id__c"]: {f: r.get(f) for f in FIELDS.values() if f != "Customer_Id__c"}
            for r in emu.records("Contact")}


def _segment_ids(rows: list[dict[str, Any]]) -> set[str]:
    return {str(r["customer_id"]) for r in rows if r["country"] in IN_SEGMENT}


@pytest.mark.parametrize("mode", ["upsert", "mirror"])
def test_upsert_and_mirror_keep_salesforce_equal_to_the_model(project: Project, emu: SalesforceEmulator,
                                                              mode: str) -> None:
    rows = _seed()
    project.write(rows, _activate(mode, **({"on_delete": "delete"} if mode == "upsert" else {})), _destinations(emu))
    project.dbt("build")
    first = _sync(project)
    assert first["counts"]["sent"] == len(_segment_ids(rows))
    assert _contacts(emu) == _model(project)
    ada = _contacts(emu)["3"]  # typed values: date, UTC timestamp, boolean, number
    assert (ada["Signup_Date__c"], ada["Updated_At__c"], ada["Vip__c"], ada["Score__c"]) == (
        "2024-01-04", "2025-06-04T10:03:00.000Z", False, 4.5)

    project.write_rows(_mutated(rows))
    project.dbt("build")
    second = _sync(project)
    assert second["counts"]["changed"] == 3 and second["counts"]["removed"] == 5
    assert _contacts(emu) == _model(project)  # renamed, inserted, deleted and left-segment rows all applied
    assert _sync(project)["counts"]["sent"] == 0


def test_update_changes_existing_contacts_and_skips_the_others(project: Project, emu: SalesforceEmulator) -> None:
    rows = _seed(30)
    existing = sorted(_segment_ids(rows), key=int)[:5]
    emu.add_records("Contact", [{"Customer_Id__c": i, "LastName": "Old", "Email": "old@example.com"}
                                for i in existing])
    project.write(rows, _activate("update"), _destinations(emu))
    project.dbt("build")
    result = _sync(project)
    assert result["counts"]["skipped"] == len(_segment_ids(rows)) - 5
    assert result["counts"]["sent"] == 5
    contacts = _contacts(emu)
    assert set(contacts) == set(existing)
    assert contacts == {k: v for k, v in _model(project).items() if k in existing}


def test_create_adds_new_contacts_and_skips_existing_ones(project: Project, emu: SalesforceEmulator) -> None:
    rows = _seed(30)
    [before] = emu.add_records("Contact", [{"Customer_Id__c": "3", "LastName": "Already here"}])
    project.write(rows, _activate("create"), _destinations(emu))
    project.dbt("build")
    result = _sync(project)
    assert result["counts"]["skipped"] == 1
    assert result["counts"]["sent"] == len(_segment_ids(rows)) - 1
    assert _contacts(emu)["3"]["LastName"] == "Already here"  # create never updates
    assert len(emu.records("Contact")) == len(_segment_ids(rows))
    assert next(r for r in emu.records("Contact") if r["Customer_Id__c"] == "3")["Id"] == before


@pytest.mark.slow
def test_append_creates_a_record_for_every_added_or_changed_row(project: Project, emu: SalesforceEmulator) -> None:
    rows = _seed(30)
    project.write(rows, [{"destination": "sf", "object": "Signup_Event__c", "mode": "append",
                          "primary_key": "customer_id", "fields": {"customer_id": "Customer__c", "score": "Score__c"},
                          "name": "customers_sf"}], _destinations(emu))
    project.dbt("build")
    assert _sync(project)["counts"]["sent"] == 30
    project.write_rows(_mutated(rows)[:30])  # 3 rescored, 3 inserted (and rows dropped: ignored by append)
    project.dbt("build")
    assert _sync(project)["counts"]["sent"] == 6
    events = emu.records("Signup_Event__c")
    assert len(events) == 36
    assert [e["Score__c"] for e in events if e["Customer__c"] == "3"] == [4.5, 999.5]


@pytest.mark.slow
def test_on_delete_clear_empties_fields_but_keeps_the_contact(project: Project, emu: SalesforceEmulator) -> None:
    rows = _seed(30)
    project.write(rows, _activate("upsert", on_delete="clear"), _destinations(emu))
    project.dbt("build")
    _sync(project)
    project.write_rows([r for r in rows if r["customer_id"] != 3])
    project.dbt("build")
    assert _sync(project)["counts"]["removed"] == 1
    cleared = _contacts(emu)["3"]
    assert cleared["LastName"] == "Customer 3"  # required: Salesforce cannot empty it
    assert {k: v for k, v in cleared.items() if k != "LastName"} == dict.fromkeys(
        ["Email", "MailingCountry", "Score__c", "Vip__c", "Signup_Date__c", "Updated_At__c"])


@pytest.mark.slow
def test_rejected_rows_do_not_stop_the_others_and_go_out_once_fixed(project: Project,
                                                                     emu: SalesforceEmulator) -> None:
    rows = _seed(30)
    rows[2]["full_name"] = "X" * 100  # customer 3: LastName holds 80 characters
    tiered = ("select *, case when customer_id = 4 then 'Platinum' else 'Gold' end as tier "
              "from {{ ref('seed_customers') }}")
    fields = {**FIELDS, "tier": "Tier__c"}
    project.write(rows, _activate("upsert", fields=fields), _destinations(emu), model_sql=tiered)
    project.dbt("build")
    result = _sync(project, expect_exit=1)
    assert result["status"] == "partial"
    reasons = {r["key"]: r["reason"] for r in result["rejected_samples"]}
    assert set(reasons) == {"3", "4"}
    assert reasons["3"].startswith("STRING_TOO_LONG: ")
    assert reasons["4"].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: ")
    assert set(_contacts(emu)) == _segment_ids(rows) - {"3", "4"}

    rows[2]["full_name"] = "Fixed"
    project.write_rows(rows)
    project.write(rows, _activate("upsert", fields=fields), _destinations(emu),
                  model_sql=tiered.replace("'Platinum'", "'Silver'"))
    project.dbt("build")
    again = _sync(project)
    assert again["counts"]["sent"] == 2  # only the two rejected rows were pending
    assert _contacts(emu)["3"]["LastName"] == "Fixed"


@pytest.mark.slow
def test_large_upserts_switch_to_bulk_api_jobs(project: Project, emu: SalesforceEmulator) -> None:
    rows = _seed()
    rows[39]["full_name"] = "Y" * 90  # customer 40 (GB) fails inside a Bulk job
    project.write(rows, _activate("mirror"), _destinations(emu, bulk_threshold=10))
    project.dbt("build")
    result = _sync(project, expect_exit=1)
    reasons = {r["key"]: r["reason"] for r in result["rejected_samples"]}
    assert list(reasons) == ["40"] and reasons["40"].startswith("STRING_TOO_LONG: ")
    paths = emu.counters.by_path
    assert paths["/services/data/v62.0/composite/sobjects/Contact/Customer_Id__c"] == 1  # the first 10 rows
    jobs = len(_segment_ids(rows)) // 10 - 1
    assert paths["/services/data/v62.0/jobs/ingest"] == jobs
    assert sum(1 for p in paths if p.endswith("/failedResults/")) == jobs
    assert _contacts(emu) == {k: v for k, v in _model(project).items() if k != "40"}

    rows[39]["full_name"] = "Fixed"
    project.write_rows(_mutated(rows))
    project.dbt("build")
    second = _sync(project)
    assert second["counts"]["removed"] == 5
    assert _contacts(emu) == _model(project)


@pytest.mark.slow
def test_server_errors_are_retried_and_nothing_is_duplicated(project: Project, emu: SalesforceEmulator) -> None:
    rows = _seed(30)
    emu.inject("status_5xx", count=2, path="/composite/")
    emu.inject("partial", count=1, path="/composite/", fail_indexes=(0,))  # UNABLE_TO_LOCK_ROW for one row
    project.write(rows, _activate("upsert"), _destinations(emu, batch_size=5))
    project.dbt("build")
    result = _sync(project, expect_exit=1)
    assert [r["reason"].split(":")[0] for r in result["rejected_samples"]] == ["UNABLE_TO_LOCK_ROW"]
    assert emu.counters.faults == 3
    assert len(emu.records("Contact")) == len(_segment_ids(rows)) - 1
    assert _sync(project)["counts"]["sent"] == 1  # the locked row, next run
    assert _contacts(emu) == _model(project)
    assert len(emu.records("Contact")) == len(_segment_ids(rows))


@pytest.mark.slow
def test_a_spent_daily_allocation_stops_the_sync_and_the_next_run_finishes(project: Project,
                                                                            emu: SalesforceEmulator) -> None:
    rows = _seed()
    emu.daily_limit = 6  # token, describe and four requests of 5 rows
    # bulk_threshold 0: batches of batch_size rows, each acknowledged on its own (with Bulk API on,
    # an upsert batch is a Bulk job's worth, acknowledged only as a whole)
    project.write(rows, _activate("upsert"), _destinations(emu, batch_size=5, max_concurrency=1, bulk_threshold=0))
    project.dbt("build")
    stopped = _sync(project, expect_exit=1)
    assert "daily API" in stopped["error"]
    assert stopped["counts"]["sent"] == len(emu.records("Contact")) == 20
    emu.daily_limit = None
    emu.reset_daily()
    finished = _sync(project)
    assert finished["counts"]["sent"] == len(_segment_ids(rows)) - 20
    assert _contacts(emu) == _model(project)
