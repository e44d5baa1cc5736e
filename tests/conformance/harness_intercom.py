"""Conformance harness of the ``intercom`` destination against ``IntercomEmulator`` (users by external_id)."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.intercom.destination import IntercomDestination
from dbt_activate.testing.intercom.emulator import IntercomEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness

ATTRIBUTES = {"plan": "string", "score": "float", "vip": "boolean", "signed_up": "date"}


class IntercomHarness(Harness):
    name = "intercom"
    destination: ClassVar[type[Destination]] = IntercomDestination
    object = "contacts"
    identity = "external_id"
    fields = ("external_id", "email", "name", "plan", "score", "vip", "signed_up")
    mutable_field = "name"
    secret = SECRET

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with IntercomEmulator(token=SECRET, attributes=ATTRIBUTES) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "intercom", "access_token": SECRET, "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"external_id": f"I-{i}", "email": f"user{i}@example.com", "name": f"Name {i}",
                "plan": "pro" if i % 2 else "free", "score": i * 1.5, "vip": i % 2 == 0,
                "signed_up": dt.date(2024, 1, 1 + i % 28)}

    def expected(self, record: Record) -> dict[str, Any]:
        return {**record.values, "signed_up": calendar.timegm(record.values["signed_up"].timetuple())}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        # external_id and email identify the user in Intercom: clearing keeps them.
        return {"external_id": record.values["external_id"], "email": record.values["email"], "name": None,
                "plan": None, "score": None, "vip": None, "signed_up": None}

    def read_back(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for contact in self.emu.records():
            custom = contact["custom_attributes"]
            found[str(contact["external_id"]).partition("-")[2]] = {
                "external_id": contact["external_id"], "email": contact["email"], "name": contact["name"],
                **{key: custom.get(key) for key in ATTRIBUTES}}
        return found

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, score="high")  # a float attribute refuses text

    def moved_identity(self, i: int) -> Any | None:
        return f"M-{i}"

    def stored_identities(self) -> list[Any]:
        return [c["external_id"] for c in self.emu.records()]

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=r"^/contacts$")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"access_token": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [IntercomHarness]
