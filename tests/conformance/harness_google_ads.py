"""Conformance harness of ``google_ads`` Customer Match (a user list) against ``GoogleAdsEmulator``.

Conversions are append-only and the suite writes with upsert or create, so only the list object is
held to it. Removals name members by the hashes kept in the record-id store, which the harness shares
between the destinations it builds, as the runner does between runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.google_ads.destination import GoogleAdsDestination
from dbt_activate.destinations.google_ads.payload import Account, user_identifiers
from dbt_activate.testing.google_ads import GoogleAdsEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness, HashedMembersHarness

LIST_ID = "5550001"


def _sorted(identifiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(identifiers, key=lambda i: json.dumps(i, sort_keys=True))


class GoogleAdsCustomerMatchHarness(HashedMembersHarness):
    name = "google_ads"
    destination: ClassVar[type[Destination]] = GoogleAdsDestination
    object = LIST_ID
    fields = ("id", "email", "first_name", "last_name", "country_code", "postal_code")
    max_batch_size = 2_000  # batch_size is the conversions' per-request maximum

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        self.start_store()
        with GoogleAdsEmulator(developer_token=SECRET, user_lists=(LIST_ID,), polls_until_done=1) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        emu = self.emu
        return {"type": "google_ads", "developer_token": SECRET, "client_id": emu.client_id,
                "client_secret": emu.client_secret, "refresh_token": emu.refresh_token, "customer_id": emu.customer_id,
                "base_url": emu.base_url, "token_url": emu.base_url + "/token", "job_poll_interval": 0.01, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"id": i, "email": f"p{i}@example.com", "first_name": f"Name {i}", "last_name": "Doe",
                "country_code": "GB", "postal_code": f"SW1A {i}"}

    def expected(self, record: Record) -> dict[str, Any]:
        return {"identifiers": _sorted(user_identifiers(record.values, Account(self.emu.customer_id)))}

    def read_back(self) -> dict[str, dict[str, Any]]:
        stored: dict[str, dict[str, Any]] = {}
        for member in self.emu.members(LIST_ID):
            identifiers = json.loads(member)
            email = next(i["hashedEmail"] for i in identifiers if "hashedEmail" in i)
            stored[self.keys[email]] = {"identifiers": _sorted(identifiers)}
        return stored

    def bad_record(self, i: int) -> Record | None:
        return Record(str(i), {"id": i, "email": None, "first_name": "Ada"})  # an address without its other parts

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path="offlineUserDataJobs:create")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"developer_token": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [GoogleAdsCustomerMatchHarness]
