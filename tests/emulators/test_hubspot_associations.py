"""HubSpot emulator, v4 batch associations over real HTTP: read, associate/default, archive, errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dbt_activate.testing import HubSpotEmulator

BASE = "/crm/v4/associations/contacts/companies/batch"


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token="t") as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def client(emu: HubSpotEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer t"}, timeout=5) as c:
        yield c


def test_associate_read_from_both_sides_and_archive(emu: HubSpotEmulator, client: httpx.Client) -> None:
    ada, bob = emu.add_records("contacts", [{"email": "ada@x.com"}, {"email": "bob@x.com"}])
    acme, initech = emu.add_records("companies", [{"name": "Acme"}, {"name": "Initech"}])
    created = client.post(f"{BASE}/associate/default", json={"inputs": [
        {"from": {"id": ada}, "to": {"id": acme}}, {"from": {"id": bob}, "to": {"id": acme}}]})
    assert created.status_code == 200
    assert created.json()["results"][0] == {"from": {"id": ada}, "to": {"id": acme}, "associationSpec": {
        "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}}

    read = client.post(f"{BASE}/read", json={"inputs": [{"id": ada}, {"id": bob}]}).json()["results"]
    assert [(r["from"]["id"], [t["toObjectId"] for t in r["to"]]) for r in read] == [(ada, [int(acme)]),
                                                                                    (bob, [int(acme)])]
    assert emu.associations.of("companies", "contacts") == {acme: {ada, bob}}  # one association, both ways

    archived = client.post(f"{BASE}/archive", json={"inputs": [{"from": {"id": ada}, "to": [{"id": acme}]}]})
    assert archived.status_code == 204
    client.post(f"{BASE}/associate/default", json={"inputs": [{"from": {"id": ada}, "to": {"id": initech}}]})
    assert emu.associations.of("contacts", "companies") == {ada: {initech}, bob: {acme}}


def test_unknown_records_are_errors_naming_their_ids(emu: HubSpotEmulator, client: httpx.Client) -> None:
    [ada] = emu.add_records("contacts", [{"email": "ada@x.com"}])
    [acme] = emu.add_records("companies", [{"name": "Acme"}])
    partial = client.post(f"{BASE}/associate/default", json={"inputs": [
        {"from": {"id": ada}, "to": {"id": acme}}, {"from": {"id": ada}, "to": {"id": "999"}}]})
    assert partial.status_code == 207
    [error] = partial.json()["errors"]
    assert (error["category"], error["context"]["ids"]) == ("OBJECT_NOT_FOUND", ["999"])
    failed = client.post(f"{BASE}/read", json={"inputs": [{"id": "998"}]})
    assert failed.status_code == 400
    assert failed.json()["errors"][0]["context"]["ids"] == ["998"]
    too_many = client.post(f"{BASE}/read", json={"inputs": [{"id": str(i)} for i in range(1001)]})
    assert too_many.status_code == 400
