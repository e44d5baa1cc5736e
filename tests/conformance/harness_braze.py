"""Conformance harness of the ``braze`` destination against ``BrazeEmulator`` (users by external_id)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Operation, Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.braze.destination import BrazeDestination
from dbt_activate.destinations.braze.payload import braze_values
from dbt_activate.testing.braze.emulator import BrazeEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness


class BrazeHarness(Harness):
    name = "braze"
    destination: ClassVar[type[Destination]] = BrazeDestination
    object = "users"
    identity = "external_id"
    fields = ("external_id", "name", "score", "vip", "signed_up")
    max_batch_size = 75
    secret = SECRET

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with BrazeEmulator(token=SECRET) as self.emu:
            yield
        assert self.emu.errors == []

    @property
    def operations(self) -> frozenset[Operation]:
        # Update-only mode: Braze ignores unknown users without saying which, so the suite's
        # "unknown records are skipped" case cannot hold; tests/destinations/braze/test_unit.py covers update.
        return super().operations - {Operation.UPDATE}

    def config(self) -> dict[str, Any]:
        return {"type": "braze", "api_key": SECRET, "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"external_id": f"U-{i}", "name": f"Name {i}", "score": i * 1.5, "vip": i % 2 == 0,
                "signed_up": dt.date(2024, 1, 1 + i % 28)}

    def expected(self, record: Record) -> dict[str, Any]:
        stored = {k: v for k, v in braze_values(record.values).items() if v is not None}
        return {**stored, "external_id": record.values["external_id"]}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        return {"external_id": record.values["external_id"]}  # null removes every other attribute

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {u["external_id"].removeprefix("U-"): {k: v for k, v in u.items() if k not in ("braze_id", "user_alias")}
                for u in self.emu.records() if u["external_id"]}

    def read_appended(self) -> list[dict[str, Any]]:
        return [{"external_id": e["external_id"], **e["properties"]} for e in self.emu.events]

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, score=float("nan"))  # not a number Braze can store

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", status=502)
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"api_key": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [BrazeHarness]
