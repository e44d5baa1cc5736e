"""Conformance harness of the ``customerio`` destination against ``CustomerIOEmulator`` (people by id)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.customerio.destination import CustomerIODestination
from dbt_activate.destinations.customerio.payload import cio_attributes
from dbt_activate.testing.customerio.emulator import CustomerIOEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness

SITE = "site-conformance-1"


class CustomerIOHarness(Harness):
    name = "customerio"
    destination: ClassVar[type[Destination]] = CustomerIODestination
    object = "signed_up"
    identity = "id"
    fields = ("id", "name", "score", "vip", "signed_up")
    max_batch_size = 1000
    secret = SECRET

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with CustomerIOEmulator(token=SECRET, site_id=SITE, app_api_key=SECRET) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "customerio", "site_id": SITE, "api_key": SECRET, "app_api_key": SECRET,
                "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"id": f"P-{i}", "name": f"Name {i}", "score": i * 1.5, "vip": i % 2 == 0,
                "signed_up": dt.date(2024, 1, 1 + i % 28)}

    def expected(self, record: Record) -> dict[str, Any]:
        return {"id": record.values["id"], **cio_attributes(record.values, exclude=("id",))}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        return {"id": record.values["id"]}  # "" removes every other attribute

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {p["id"].partition("-")[2]: {k: v for k, v in p.items() if k != "cio_id"}
                for p in self.emu.records() if p["id"]}

    def moved_identity(self, i: int) -> Any | None:
        return f"M-{i}"

    def stored_identities(self) -> list[Any]:
        return [p["id"] for p in self.emu.records()]

    def read_appended(self) -> list[dict[str, Any]]:
        return [{"id": e["identifiers"]["id"], **e["attributes"]} for e in self.emu.events]

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, name="x" * 1200)  # Customer.io refuses attribute values over 1000 bytes

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", status=503)
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"api_key": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [CustomerIOHarness]
