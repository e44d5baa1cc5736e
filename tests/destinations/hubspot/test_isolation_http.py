"""Issue 17 acceptance, over real HTTP: HubSpotDestination + deliver() against the HubSpotEmulator.

The emulator refuses an upsert batch whole for one bad input, as HubSpot does (sources in
``testing/hubspot/batch.py``); the destination must still write every good row in the same run,
reject exactly the bad ones with HubSpot's reason, and spend at most 10 + 3 x 15 requests on
1,000 rows with 3 bad ones in different batches (counted by the emulator).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.delivery import RateLimiter, RetryPolicy, deliver
from dbt_activate.destinations.hubspot.destination import HubSpotDestination
from dbt_activate.testing import HubSpotEmulator, HubSpotProperty

TOKEN = "pat-na1-isolation-3c4b5a69788796a5"
ROWS = 1000
BAD = (5, 350, 777)  # in three different batches of 100
BUDGET = 10 + 3 * 15


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    properties = {"contacts": [HubSpotProperty("driver_id", unique=True), HubSpotProperty("score", "number")]}
    with HubSpotEmulator(token=TOKEN, properties=properties) as emulator:
        yield emulator
    assert emulator.errors == []


def sync_target(mode: Mode, identity: str, fields: Sequence[str]) -> SyncTarget:
    return SyncTarget(f"drivers__hubspot__{mode.value}", "contacts", mode, tuple(FieldSpec(f, f) for f in fields),
                      (identity,), run_id="run-1")


def run(emu: HubSpotEmulator, tgt: SyncTarget, operation: Operation, records: list[Record]) -> BatchResult:
    """Every batch of ``records`` through deliver(), concurrently, under HubSpot's 100/10 s limiter."""
    destination = HubSpotDestination("crm", {"type": "hubspot", "access_token": TOKEN, "base_url": emu.base_url,
                                             "timeout": 10})
    limiter = RateLimiter(RateLimit(100, 10.0))

    async def go() -> list[BatchResult]:
        try:
            return await asyncio.gather(*(
                deliver(destination, tgt, Batch(operation, records[i:i + 100]), limiter=limiter, policy=RetryPolicy())
                for i in range(0, len(records), 100)))
        finally:
            await destination.close()

    merged = BatchResult()
    for result in asyncio.run(go()):
        merged.rejected.update(result.rejected)
        merged.skipped.update(result.skipped)
    return merged


def driver(i: int, **changes: str) -> Record:
    return Record(str(i), {"driver_id": f"D-{i}", "email": f"driver{i}@example.com", "firstname": f"Driver {i}",
                           **changes})


def test_upsert_of_1000_rows_with_3_invalid_emails_writes_the_997_others(emu: HubSpotEmulator) -> None:
    records = [driver(i, email=f"driver{i}@example" if i in BAD else f"driver{i}@example.com")
               for i in range(1, ROWS + 1)]
    result = run(emu, sync_target(Mode.UPSERT, "email", ("email", "firstname")), Operation.UPSERT, records)
    assert result.rejected == {str(i): f"VALIDATION_ERROR: email: Email address driver{i}@example is invalid"
                               for i in BAD}
    assert len(emu.records("contacts")) == ROWS - len(BAD)
    assert emu.counters.requests <= BUDGET
    assert emu.counters.by_status.get(400) == len(BAD)  # one refused request per bad row, no more


def test_upsert_of_1000_rows_with_3_conflicting_emails_writes_the_997_others(emu: HubSpotEmulator) -> None:
    owners = emu.add_records("contacts", [{"email": f"driver{i}@example.com"} for i in BAD])  # made in HubSpot
    records = [driver(i) for i in range(1, ROWS + 1)]
    result = run(emu, sync_target(Mode.UPSERT, "driver_id", ("driver_id", "email", "firstname")), Operation.UPSERT,
                 records)
    assert result.rejected == {
        str(i): f"OBJECT_ALREADY_EXISTS: email: A contact with email driver{i}@example.com already exists. "
                f"Existing ID: {owner}" for i, owner in zip(BAD, owners, strict=True)}
    assert sum("driver_id" in r["properties"] for r in emu.records("contacts")) == ROWS - len(BAD)
    assert emu.counters.requests <= BUDGET
    assert emu.counters.by_status.get(409) == len(BAD)


def test_an_error_that_names_no_value_is_found_by_halving_within_the_same_budget(emu: HubSpotEmulator) -> None:
    # HubSpot's over-long-value message gives the length, not the value: nothing to match, so halving.
    records = [driver(i, firstname="x" * 65_537 if i in BAD else f"Driver {i}") for i in range(1, ROWS + 1)]
    result = run(emu, sync_target(Mode.UPSERT, "email", ("email", "firstname")), Operation.UPSERT, records)
    assert set(result.rejected) == {str(i) for i in BAD}
    assert all(r.startswith("VALIDATION_ERROR: firstname: firstname is 65537 characters long")
               for r in result.rejected.values())
    assert len(emu.records("contacts")) == ROWS - len(BAD)
    assert emu.counters.requests <= BUDGET


def test_create_over_100_rows_of_which_50_exist_creates_50_and_skips_50(emu: HubSpotEmulator) -> None:
    emu.add_records("contacts", [{"email": f"driver{i}@example.com", "firstname": "Made in HubSpot"}
                                 for i in range(2, 101, 2)])
    records = [driver(i) for i in range(1, 101)]
    result = run(emu, sync_target(Mode.CREATE, "email", ("email", "firstname")), Operation.CREATE, records)
    assert result.rejected == {}
    assert set(result.skipped) == {str(i) for i in range(2, 101, 2)}
    assert result.skipped["2"].startswith("OBJECT_ALREADY_EXISTS: email: A contact with email driver2@example.com")
    stored = {r["properties"]["email"]: r["properties"]["firstname"] for r in emu.records("contacts")}
    assert len(stored) == 100 and stored["driver2@example.com"] == "Made in HubSpot"
    assert stored["driver1@example.com"] == "Driver 1"
