"""Conformance harness of the ``google_sheets`` destination against ``GoogleSheetsEmulator``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.google_sheets.destination import MAX_BATCH, GoogleSheetsDestination
from dbt_activate.testing.google_sheets.auth import new_service_account
from dbt_activate.testing.google_sheets.emulator import GoogleSheetsEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness


class GoogleSheetsHarness(Harness):
    name = "google_sheets"
    destination: ClassVar[type[Destination]] = GoogleSheetsDestination
    object = "People"
    identity = "id"
    fields = ("id", "name")
    max_batch_size = MAX_BATCH
    secret = SECRET  # the key's private_key_id: a credential that must never be printed

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with GoogleSheetsEmulator() as self.emu:
            self.account = {**self.emu.service_account(), "private_key_id": SECRET}
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "google_sheets", "spreadsheet_id": "test-spreadsheet",
                "credentials_json": json.dumps(self.account), "base_url": self.emu.base_url}

    def values(self, i: int) -> dict[str, Any]:
        return {"id": i, "name": f"Name {i}"}

    def read_back(self) -> dict[str, dict[str, Any]]:
        with contextlib.suppress(Exception):
            rows = self.emu.values(self.object)
            header = rows[0]
            out = {}
            for row in rows[1:]:
                cells = {name: (row[c] if c < len(row) and row[c] != "" else None) for c, name in enumerate(header)}
                out[str(cells["id"]).partition(".")[0]] = cells  # "1.moved" (moved_identity) is record 1
            return out
        return {}

    def moved_identity(self, i: int) -> Any | None:
        return f"{i}.moved"

    def stored_identities(self) -> list[Any]:
        rows = self.emu.values(self.object)
        column = rows[0].index("id")
        return [row[column] for row in rows[1:] if column < len(row) and row[column] != ""]

    def bad_record(self, i: int) -> Record | None:
        return Record(str(i), {"id": i, "name": "x" * 50_001})  # over Sheets' 50,000 characters per cell

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=r"values:batchUpdate")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        # A key the emulator does not trust: the token endpoint answers invalid_grant.
        stranger, _ = new_service_account(self.emu.base_url + "/token", "stranger@test-project.iam.gserviceaccount.com")
        return {"credentials_json": json.dumps({**stranger, "private_key_id": WRONG_SECRET})}


HARNESSES: list[type[Harness]] = [GoogleSheetsHarness]
