"""A changed identifier in Customer.io (Record.previous): with ``app_api_key`` the person is found by the
old value through the App API and identified by cio_id; without it the new value names a new person."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.customerio.destination import CustomerIODestination
from dbt_activate.testing.customerio.emulator import CustomerIOEmulator

KEY, APP_KEY, SITE = "cio-track-key-1", "cio-app-key-2", "site-1"
TARGET = SyncTarget("people__cio", "people", Mode.UPSERT, (FieldSpec("email", "email"), FieldSpec("name", "name")),
                    ("email",), run_id="r1")


@pytest.fixture
def emu() -> Iterator[CustomerIOEmulator]:
    with CustomerIOEmulator(token=KEY, site_id=SITE, app_api_key=APP_KEY) as emulator:
        yield emulator
    assert emulator.errors == []


def write(emu: CustomerIOEmulator, records: list[Record], **config: Any) -> BatchResult:
    destination = CustomerIODestination("cio", {"type": "customerio", "site_id": SITE, "api_key": KEY,
                                                "base_url": emu.base_url, **config})

    async def run() -> BatchResult:
        try:
            return await destination.write(TARGET, Batch(Operation.UPSERT, records))
        finally:
            await destination.close()

    return asyncio.run(run())


def moved(old: str, new: str) -> Record:
    return Record("1", {"email": new, "name": "Ada"}, previous={"email": old})


def test_the_person_of_the_old_email_is_updated_by_cio_id(emu: CustomerIOEmulator) -> None:
    write(emu, [Record("1", {"email": "ada@x.io", "name": "Ada"})])
    assert write(emu, [moved("ada@x.io", "ada@new.io")], app_api_key=APP_KEY) == BatchResult()
    assert [p["email"] for p in emu.records()] == ["ada@new.io"]


def test_a_new_email_another_person_has_is_rejected(emu: CustomerIOEmulator) -> None:
    write(emu, [Record("1", {"email": "ada@x.io", "name": "Ada"}), Record("2", {"email": "bob@x.io", "name": "Bob"})])
    result = write(emu, [moved("ada@x.io", "bob@x.io")], app_api_key=APP_KEY)
    assert set(result.rejected) == {"1"} and "already has" in result.rejected["1"]
    assert sorted((p["email"], p["name"]) for p in emu.records()) == [("ada@x.io", "Ada"), ("bob@x.io", "Bob")]


def test_without_an_app_api_key_the_new_email_identifies_a_new_person(emu: CustomerIOEmulator) -> None:
    write(emu, [Record("1", {"email": "ada@x.io", "name": "Ada"})])
    assert write(emu, [moved("ada@x.io", "ada@new.io")]) == BatchResult()
    assert sorted(p["email"] for p in emu.records()) == ["ada@new.io", "ada@x.io"]  # as documented
