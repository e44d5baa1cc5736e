"""Conformance harness of the ``zendesk`` destination against ``ZendeskEmulator`` (users by external_id)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.zendesk.destination import ZendeskDestination
from dbt_activate.testing.zendesk.emulator import ZendeskEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness

AGENT = "ops@example.com"
USER_FIELDS = {"plan": "text", "score": "decimal", "vip": "checkbox", "signed_up": "date"}


class _Zendesk(Harness):
    """What the users and organizations harnesses share: the emulator, the config, the failures."""

    destination: ClassVar[type[Destination]] = ZendeskDestination
    identity = "external_id"
    mutable_field = "name"
    max_batch_size = 100
    secret = SECRET
    emulator_fields: ClassVar[dict[str, dict[str, str]]]  # ZendeskEmulator's custom field definitions

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with ZendeskEmulator(token=SECRET, email=AGENT, **self.emulator_fields) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "zendesk", "base_url": self.emu.base_url, "email": AGENT, "api_token": SECRET,
                "job_poll_interval": 0, "timeout": 5}

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"api_token": WRONG_SECRET}


class ZendeskHarness(_Zendesk):
    name = "zendesk"
    object = "users"
    fields = ("external_id", "name", "email", "plan", "score", "vip", "signed_up")
    emulator_fields: ClassVar[dict[str, dict[str, str]]] = {"user_fields": USER_FIELDS}

    def values(self, i: int) -> dict[str, Any]:
        return {"external_id": f"Z-{i}", "name": f"Name {i}", "email": f"user{i}@example.com",
                "plan": "pro" if i % 2 else "free", "score": i * 1.5, "vip": i % 2 == 0,
                "signed_up": dt.date(2024, 1, 1 + i % 28)}

    def expected(self, record: Record) -> dict[str, Any]:
        return {**record.values, "signed_up": record.values["signed_up"].isoformat()}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        # Zendesk refuses a blank name and the email is an identity: clearing keeps both.
        values = record.values
        return {"external_id": values["external_id"], "name": values["name"], "email": values["email"],
                "plan": None, "score": None, "vip": None, "signed_up": None}

    def read_back(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for user in self.emu.records("users"):
            custom = user["user_fields"]
            found[str(user["external_id"]).partition("-")[2]] = {
                "external_id": user["external_id"], "name": user["name"], "email": user["email"],
                **{key: custom.get(key) for key in USER_FIELDS}}
        return found

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, email="not-an-email")

    def moved_identity(self, i: int) -> Any | None:
        return f"M-{i}"

    def stored_identities(self) -> list[Any]:
        return [u["external_id"] for u in self.emu.records("users")]

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=r"create_or_update_many")
        return True


class ZendeskOrganizationsHarness(_Zendesk):
    """Organizations by external_id: upsert goes through show_many, then create_many/update_many."""

    name = "zendesk_organizations"
    object = "organizations"
    fields = ("external_id", "name", "notes", "tier", "seats")
    ORG_FIELDS: ClassVar[dict[str, str]] = {"tier": "text", "seats": "integer"}
    emulator_fields: ClassVar[dict[str, dict[str, str]]] = {"organization_fields": ORG_FIELDS}

    def values(self, i: int) -> dict[str, Any]:
        return {"external_id": f"O-{i}", "name": f"Org {i}", "notes": f"note {i}",
                "tier": "gold" if i % 2 else "silver", "seats": i * 10}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        # Zendesk refuses a blank name: clearing keeps it.
        return {"external_id": record.values["external_id"], "name": record.values["name"], "notes": None,
                "tier": None, "seats": None}

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {str(org["external_id"]).removeprefix("O-"): {
            "external_id": org["external_id"], "name": org["name"], "notes": org["notes"],
            **{key: org["organization_fields"].get(key) for key in self.ORG_FIELDS}}
            for org in self.emu.records("organizations")}

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, seats="many")  # not an integer: Zendesk fails the item

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=r"show_many")
        return True


HARNESSES: list[type[Harness]] = [ZendeskHarness, ZendeskOrganizationsHarness]
