"""HubSpot references as v4 associations, against the emulator over HTTP: link, move, refuse."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.hubspot import HubSpotDestination
from dbt_activate.testing import HubSpotEmulator

TARGET = SyncTarget("drivers", "contacts", Mode.UPSERT,
                    tuple(FieldSpec(f, f) for f in ("email", "lastname", "company")), ("email",),
                    references=("company",))


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token="t") as emulator:
        yield emulator
    assert emulator.errors == []


def _write(emu: HubSpotEmulator, *records: Record, target: SyncTarget = TARGET) -> BatchResult:
    destination = HubSpotDestination("crm", {"type": "hubspot", "access_token": "t", "base_url": emu.base_url})

    async def go() -> BatchResult:
        try:
            return await destination.write(target, Batch(Operation.UPSERT, list(records)))
        finally:
            await destination.close()

    return asyncio.run(go())


def _contact(key: str, company: str | None) -> Record:
    return Record(key, {"email": f"driver{key}@x.com", "lastname": f"Driver {key}", "company": company})


def test_a_company_field_no_reference_declares_is_an_ordinary_property(emu: HubSpotEmulator) -> None:
    """`company` is also HubSpot's own text property of a contact (its company name): only a declared
    `references` makes it an association."""
    plain = SyncTarget("drivers", "contacts", Mode.UPSERT, TARGET.fields, ("email",))
    _write(emu, _contact("1", "Acme Ltd"), target=plain)
    assert [c["properties"]["company"] for c in emu.records("contacts")] == ["Acme Ltd"]
    assert emu.associations.of("contacts", "companies") == {}
    assert not [p for p in emu.counters.by_path if "/associations/" in p]


def test_contacts_are_associated_moved_and_never_get_the_reference_as_a_property(emu: HubSpotEmulator) -> None:
    acme, initech = emu.add_records("companies", [{"name": "Acme"}, {"name": "Initech"}])
    first = _write(emu, _contact("1", acme), _contact("2", acme), _contact("3", None))
    contacts = {c["properties"]["email"]: c["id"] for c in emu.records("contacts")}
    assert first == BatchResult()
    assert first.ids == {k: contacts[f"driver{k}@x.com"] for k in ("1", "2", "3")}
    assert all("company" not in c["properties"] for c in emu.records("contacts"))
    ada, bob, cid = (contacts[f"driver{k}@x.com"] for k in ("1", "2", "3"))
    assert emu.associations.of("contacts", "companies") == {ada: {acme}, bob: {acme}}

    emu.reset_counters()
    _write(emu, _contact("1", initech), _contact("2", acme))  # 1 moves; 2 is linked already
    assert emu.associations.of("contacts", "companies") == {ada: {initech}, bob: {acme}}
    paths = emu.counters.by_path
    assert paths["/crm/v4/associations/contacts/companies/batch/read"] == 1
    assert paths["/crm/v4/associations/contacts/companies/batch/archive"] == 1
    assert paths["/crm/v4/associations/contacts/companies/batch/associate/default"] == 1
    assert cid not in emu.associations.of("contacts", "companies")  # a NULL reference links nothing


def test_an_association_hubspot_refuses_rejects_the_record_with_the_reason(emu: HubSpotEmulator) -> None:
    [acme] = emu.add_records("companies", [{"name": "Acme"}])
    result = _write(emu, _contact("1", acme), _contact("2", "424242"))
    assert result.rejected == {"2": "HubSpot refused associating it with its company: No companies objects exist "
                                    "with ids 424242"}
    assert set(result.ids) == {"1"}


def test_clear_leaves_the_reference_out_of_the_properties_it_empties(emu: HubSpotEmulator) -> None:
    # `company` is also a contact property (the company name typed in HubSpot): the reference is not it.
    [acme] = emu.add_records("companies", [{"name": "Acme"}])
    emu.add_records("contacts", [{"email": "driver1@x.com", "company": "Acme Corp (typed by a rep)"}])
    _write(emu, _contact("1", acme))
    destination = HubSpotDestination("crm", {"type": "hubspot", "access_token": "t", "base_url": emu.base_url})

    async def go() -> BatchResult:
        try:
            return await destination.write(TARGET, Batch(Operation.CLEAR, [Record("1", {"email": "driver1@x.com"})]))
        finally:
            await destination.close()

    assert asyncio.run(go()) == BatchResult()
    [contact] = emu.records("contacts")
    assert contact["properties"].get("lastname") is None  # the mapped property is cleared...
    assert contact["properties"]["company"] == "Acme Corp (typed by a rep)"  # ...not the one `as` is named after


def test_a_null_reference_removes_the_association_and_creates_none(emu: HubSpotEmulator) -> None:
    [acme] = emu.add_records("companies", [{"name": "Acme"}])
    _write(emu, _contact("1", acme), _contact("2", acme))
    contacts = {c["properties"]["email"]: c["id"] for c in emu.records("contacts")}
    emu.reset_counters()
    assert _write(emu, _contact("1", None), _contact("2", acme)) == BatchResult()
    assert emu.associations.of("contacts", "companies") == {contacts["driver2@x.com"]: {acme}}
    paths = emu.counters.by_path
    assert paths["/crm/v4/associations/contacts/companies/batch/archive"] == 1
    assert "/crm/v4/associations/contacts/companies/batch/associate/default" not in paths


def test_plan_shows_the_reference_as_an_association_not_a_property() -> None:
    destination = HubSpotDestination("crm", {"type": "hubspot", "access_token": "t", "base_url": "http://127.0.0.1:9"})
    batch = Batch(Operation.UPSERT, [_contact("1", "77"), _contact("2", None)])
    described = destination.describe_request(TARGET, batch)
    assert all("company" not in i["properties"] for i in described["body"]["inputs"])
    [then] = described["then"]
    assert then["url"].endswith("/crm/v4/associations/contacts/companies/batch/associate/default")
    assert then["associations"] == [{"record": "1", "company": "77"}, {"record": "2", "company": None}]
