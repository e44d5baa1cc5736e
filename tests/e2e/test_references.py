"""End to end: two syncs linked by `references` -> dbt-activate (CLI) -> DuckDB -> vendor emulators.

Fleets become Pipedrive organizations (Salesforce Accounts) and drivers become persons whose
``org_id`` (Contacts whose ``AccountId``) is their fleet's record. After every run each driver's link
in the emulator must equal the model's ``fleet_id`` translated to the record the fleet sync wrote; a
driver whose fleet is not in the destination yet must not be there at all (held back), then linked by
the run after its fleet arrives.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbt_activate.testing import (
    HubSpotEmulator,
    HubSpotProperty,
    PipedriveEmulator,
    SalesforceEmulator,
    SalesforceField,
)
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "pd-refs-token-0ddba11"
FLEETS = {"name": "fleets", "destination": "crm", "object": "organizations", "primary_key": "fleet_id",
          "mode": "mirror", "match": {"fleet_name": "name"}, "fields": {"fleet_name": "name"}}
DRIVERS = {"name": "drivers", "destination": "crm", "object": "persons", "primary_key": "driver_id",
           "match": {"email": "email"}, "fields": {"email": "email", "full_name": "name"},
           "references": [{"sync": "fleets", "column": "fleet_id", "as": "org_id"}]}


SF_FLEETS = {"name": "fleets", "destination": "crm", "object": "Account", "primary_key": "fleet_id",
             "mode": "mirror", "fields": {"fleet_id": "Fleet_Id__c", "fleet_name": "Name"}}
SF_DRIVERS = {"name": "drivers", "destination": "crm", "object": "Contact", "primary_key": "driver_id",
              "fields": {"driver_id": "Driver_Id__c", "email": "Email", "full_name": "LastName"},
              "references": [{"sync": "fleets", "column": "fleet_id", "as": "AccountId"}]}


HS_FLEETS = {"name": "fleets", "destination": "crm", "object": "companies", "primary_key": "fleet_id",
             "mode": "mirror", "match": {"fleet_id": "fleet_id"},
             "fields": {"fleet_id": "fleet_id", "fleet_name": "name"}}
HS_DRIVERS = {"name": "drivers", "destination": "crm", "object": "contacts", "primary_key": "driver_id",
              "match": {"email": "email"}, "fields": {"email": "email", "full_name": "lastname"},
              "references": [{"sync": "fleets", "column": "fleet_id", "as": "company"}]}
Emulator = PipedriveEmulator | SalesforceEmulator | HubSpotEmulator


@pytest.fixture
def hs() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token=TOKEN, properties={"companies": [HubSpotProperty("fleet_id", unique=True)]}) as emu:
        yield emu
    assert emu.errors == []


@pytest.fixture
def emu() -> Iterator[PipedriveEmulator]:
    with PipedriveEmulator(token=TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def sf() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(token=TOKEN, fields={
            "Account": [SalesforceField("Fleet_Id__c", external_id=True, length=20)],
            "Contact": [SalesforceField("Driver_Id__c", external_id=True, length=20)]}) as emulator:
        yield emulator
    assert emulator.errors == []


def _seed(project: Project, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    with (project.root / "seeds" / f"{name}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write(project: Project, emu: Emulator, fleets: list[dict[str, Any]],
           drivers: list[dict[str, Any]], *, fleets_sync: Mapping[str, Any] = FLEETS,
           drivers_sync: Mapping[str, Any] = DRIVERS) -> None:
    """Two models, fleets and drivers, each with its sync (drivers is declared first: order is not luck)."""
    kind = {PipedriveEmulator: "pipedrive", SalesforceEmulator: "salesforce", HubSpotEmulator: "hubspot"}[type(emu)]
    credentials = {"api_token": TOKEN} if kind == "pipedrive" else {"access_token": TOKEN}
    project.write([customer(1)], [], {"crm": {"type": kind, "base_url": emu.base_url, **credentials}})
    _seed(project, "seed_fleets", fleets)
    _seed(project, "seed_drivers", drivers)
    for model in ("fleets", "drivers"):
        (project.root / "models" / f"{model}.sql").write_text(f"select * from {{{{ ref('seed_{model}') }}}}")
    models = [{"name": "drivers", "config": {"meta": {"activate": [dict(drivers_sync)]}}},
              {"name": "fleets", "config": {"meta": {"activate": [dict(fleets_sync)]}}}]
    (project.root / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, "models": models}))


def _fleet(i: int) -> dict[str, Any]:
    return {"fleet_id": i, "fleet_name": f"Fleet {i}"}


def _driver(i: int, fleet: int) -> dict[str, Any]:
    return {"driver_id": i, "email": f"driver{i}@example.com", "full_name": f"Driver {i}", "fleet_id": fleet}


def _links(emu: Emulator) -> dict[str, str | None]:
    """Each person's organization (contact's account), by the person's email and the organization's name."""
    if isinstance(emu, HubSpotEmulator):
        companies = {c["id"]: c["properties"]["name"] for c in emu.records("companies")}
        linked = emu.associations.of("contacts", "companies")
        found: dict[str, str | None] = {}
        for contact in emu.records("contacts"):
            names = sorted(companies[i] for i in linked.get(contact["id"], set()))
            assert len(names) <= 1, names  # one company per contact: a move leaves no old link behind
            found[contact["properties"]["email"]] = names[0] if names else None
        return found
    if isinstance(emu, SalesforceEmulator):
        accounts = {a["Id"]: a["Name"] for a in emu.records("Account")}
        return {c["Email"]: accounts.get(c.get("AccountId")) for c in emu.records("Contact")}
    orgs = {o["id"]: o["name"] for o in emu.records("organizations")}
    return {p["emails"][0]["value"]: orgs.get(p["org_id"]) for p in emu.records("persons")}


def _expected(drivers: list[dict[str, Any]], synced: set[int] | None = None) -> dict[str, str | None]:
    return {d["email"]: None if d["fleet_id"] is None else f"Fleet {d['fleet_id']}"
            for d in drivers if synced is None or d["driver_id"] in synced}


def _run(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stdout + proc.stderr
    return {r["sync"]: r for r in project.results()["results"]}


def test_children_link_to_parents_move_with_them_and_wait_for_missing_ones(
        tmp_path: Path, emu: PipedriveEmulator) -> None:
    _links_follow_the_model(Project(tmp_path, "duckdb"), emu, FLEETS, DRIVERS)
    assert len(emu.records("organizations")) == 4  # fleet 2 deleted, then written again


@pytest.mark.slow
def test_salesforce_contacts_get_the_account_id_of_their_fleet(tmp_path: Path, sf: SalesforceEmulator) -> None:
    _links_follow_the_model(Project(tmp_path, "duckdb"), sf, SF_FLEETS, SF_DRIVERS)
    assert len(sf.records("Account")) == 4


@pytest.mark.slow
def test_hubspot_contacts_are_associated_with_their_fleet_company(tmp_path: Path, hs: HubSpotEmulator) -> None:
    _links_follow_the_model(Project(tmp_path, "duckdb"), hs, HS_FLEETS, HS_DRIVERS)
    assert len(hs.records("companies")) == 4


def _links_follow_the_model(project: Project, emu: Emulator,
                            fleets_sync: Mapping[str, Any], drivers_sync: Mapping[str, Any]) -> None:
    fleets = [_fleet(i) for i in (1, 2, 3)]
    drivers = [_driver(i, fleet=1 + i % 3) for i in range(1, 7)]
    _write(project, emu, fleets, drivers, fleets_sync=fleets_sync, drivers_sync=drivers_sync)
    project.dbt("build")

    plan = project.activate("plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    relationship = drivers_sync["references"][0]["as"]
    assert f"drivers: runs after fleets (references[0] {relationship})" in plan.stderr
    assert [r["sync"] for r in project.results()["results"]] == ["fleets", "drivers"]

    first = _run(project)
    assert list(first) == ["fleets", "drivers"]  # parents first, though drivers is declared first
    assert first["drivers"]["counts"]["sent"] == 6
    assert _links(emu) == _expected(drivers)

    # Driver 1 moves to fleet 3; driver 7 arrives for fleet 4, which is not in the model yet.
    drivers[0]["fleet_id"] = 3
    drivers.append(_driver(7, fleet=4))
    _seed(project, "seed_drivers", drivers)
    project.dbt("build")
    second = _run(project, expect_exit=1)
    assert (second["drivers"]["counts"]["sent"], second["drivers"]["counts"]["rejected"]) == (1, 1)
    assert second["drivers"]["rejected_samples"] == [{"key": "7", "reason": "waiting for fleets 4"}]
    assert _links(emu) == _expected(drivers, synced={1, 2, 3, 4, 5, 6})  # never sent without its link

    fleets.append(_fleet(4))
    _seed(project, "seed_fleets", fleets)
    project.dbt("build")
    third = _run(project)
    assert third["drivers"]["counts"]["sent"] == 1  # only the held-back driver
    assert _links(emu) == _expected(drivers)

    # Fleet 2 leaves the model: mirror deletes it, and its driver (4) loses the link and waits for it.
    # Driver 2 gets no fleet at all: its link is cleared (Pipedrive's API cannot empty org_id: kept).
    fleets = [f for f in fleets if f["fleet_id"] != 2]
    drivers[1]["fleet_id"] = None
    _seed(project, "seed_fleets", fleets)
    _seed(project, "seed_drivers", drivers)
    project.dbt("build")
    fourth = _run(project, expect_exit=1)
    assert fourth["fleets"]["counts"]["sent"] == 1
    assert (fourth["drivers"]["counts"]["sent"], fourth["drivers"]["counts"]["rejected"]) == (1, 1)
    assert fourth["drivers"]["rejected_samples"] == [{"key": "4", "reason": "waiting for fleets 2"}]
    expected = _expected(drivers)
    expected["driver2@example.com"] = "Fleet 3" if isinstance(emu, PipedriveEmulator) else None
    expected["driver4@example.com"] = None  # its parent is gone from the model and the destination
    assert _links(emu) == expected

    fifth = _run(project, expect_exit=1)  # still no fleet 2: driver 4 is held back again
    assert fifth["drivers"]["rejected_samples"] == [{"key": "4", "reason": "waiting for fleets 2"}]
    assert _links(emu) == expected

    fleets.append(_fleet(2))  # fleet 2 is back (a new record): driver 4 is linked to it
    _seed(project, "seed_fleets", fleets)
    project.dbt("build")
    sixth = _run(project)
    assert (sixth["drivers"]["counts"]["sent"], sixth["drivers"]["counts"]["rejected"]) == (1, 0)
    expected["driver4@example.com"] = "Fleet 2"
    assert _links(emu) == expected


def test_a_cycle_or_an_unknown_referenced_sync_exits_2_naming_them(tmp_path: Path, emu: PipedriveEmulator) -> None:
    project = Project(tmp_path, "duckdb")
    fleets, drivers = [_fleet(1)], [_driver(1, fleet=1)]
    _write(project, emu, fleets, drivers, fleets_sync={**FLEETS, "after": ["drivers"]})
    project.dbt("parse")
    proc = project.activate("run", "--all")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cycle: drivers -> fleets -> drivers" in proc.stderr
    validated = project.activate("validate", "--output", "json")  # validate lists it among the problems
    assert validated.returncode == 2, validated.stdout + validated.stderr
    assert any("cycle: drivers -> fleets -> drivers" in p for p in json.loads(validated.stdout)["problems"])

    unknown = {**DRIVERS, "references": [{"sync": "fleet", "column": "fleet_id", "as": "org_id"}]}
    _write(project, emu, fleets, drivers, drivers_sync=unknown)
    project.dbt("parse")
    proc = project.activate("run", "--all")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ("models/schema.yml: drivers.config.meta.activate[0].references[0].sync: unknown sync 'fleet'"
            in " ".join(proc.stderr.split()))
    assert emu.records("persons") == []


@pytest.mark.slow
def test_pipedrive_deals_link_to_their_person_and_organization(tmp_path: Path, emu: PipedriveEmulator) -> None:
    project = Project(tmp_path, "duckdb")
    fleets, drivers = [_fleet(1), _fleet(2)], [_driver(1, fleet=1), _driver(2, fleet=2)]
    leads = [{"lead_id": i, "title": f"Lead {i}", "driver_id": 1 + i % 2, "fleet_id": 2 - i % 2} for i in range(1, 5)]
    leads_sync = {"name": "leads", "destination": "crm", "object": "deals", "primary_key": "lead_id",
                  "match": {"title": "title"}, "fields": {"title": "title"},
                  "references": [{"sync": "drivers", "column": "driver_id", "as": "person_id"},
                                 {"sync": "fleets", "column": "fleet_id", "as": "org_id"}]}
    _write(project, emu, fleets, drivers)
    _seed(project, "seed_leads", leads)
    (project.root / "models" / "leads.sql").write_text("select * from {{ ref('seed_leads') }}")
    schema = yaml.safe_load((project.root / "models" / "schema.yml").read_text())
    schema["models"].insert(0, {"name": "leads", "config": {"meta": {"activate": [leads_sync]}}})
    (project.root / "models" / "schema.yml").write_text(yaml.safe_dump(schema))
    project.dbt("build")

    result = _run(project)
    assert list(result) == ["fleets", "drivers", "leads"]
    persons = {p["id"]: p["name"] for p in emu.records("persons")}
    orgs = {o["id"]: o["name"] for o in emu.records("organizations")}
    assert {d["title"]: (persons[d["person_id"]], orgs[d["org_id"]]) for d in emu.records("deals")} == {
        lead["title"]: (f"Driver {lead['driver_id']}", f"Fleet {lead['fleet_id']}") for lead in leads}
