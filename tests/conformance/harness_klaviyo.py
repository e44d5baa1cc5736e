"""Conformance harness of the ``klaviyo`` destination against ``KlaviyoEmulator``."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Operation, Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.klaviyo.destination import KlaviyoDestination
from dbt_activate.testing.klaviyo.emulator import KlaviyoEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness


class KlaviyoHarness(Harness):
    """Profiles found by e-mail: a standard attribute, a location field and custom properties."""

    name = "klaviyo"
    destination: ClassVar[type[Destination]] = KlaviyoDestination
    object = "profiles"
    identity = "email"
    fields = ("email", "first_name", "city", "score", "vip", "signed_up")
    mutable_field = "first_name"
    max_batch_size = 10_000
    secret = SECRET

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with KlaviyoEmulator(token=SECRET, polls_to_complete=2) as self.emu:
            yield
        assert self.emu.errors == []

    @property
    def operations(self) -> frozenset[Operation]:
        return frozenset({Operation.UPSERT, Operation.CLEAR})  # bulk import upserts; no delete

    def config(self) -> dict[str, Any]:
        return {"type": "klaviyo", "api_key": SECRET, "base_url": self.emu.base_url, "timeout": 5,
                "job_poll_interval": 0}

    def values(self, i: int) -> dict[str, Any]:
        return {"email": f"user{i}@example.com", "first_name": f"Name {i}", "city": f"City {i}",
                "score": i * 1.5, "vip": i % 2 == 0, "signed_up": dt.date(2024, 1, 1 + i % 28)}

    def expected(self, record: Record) -> dict[str, Any]:
        return {**record.values, "signed_up": record.values["signed_up"].isoformat()}

    def read_back(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for profile in self.emu.profiles():
            props = profile["properties"]
            found[profile["email"].removeprefix("user").partition("@")[0]] = {
                "email": profile["email"], "first_name": profile.get("first_name"),
                "city": profile.get("location", {}).get("city"), "score": props.get("score"),
                "vip": props.get("vip"), "signed_up": props.get("signed_up")}
        return found

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, email=f"user{i}-at-example.com")  # refused in the job's import errors

    def moved_identity(self, i: int) -> Any | None:
        return f"user{i}@moved.example.com"

    def stored_identities(self) -> list[Any]:
        return [p["email"] for p in self.emu.profiles()]

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=r"^/api/profile-bulk-import-jobs$")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"api_key": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [KlaviyoHarness]
