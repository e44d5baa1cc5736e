"""Conformance harness of the ``mailchimp`` destination against ``MailchimpEmulator``."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.mailchimp.destination import MailchimpDestination
from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness

LIST_ID = "c0nf0rm4nc"


class MailchimpHarness(Harness):
    """Members of one audience found by e-mail; merge fields of each emulated type."""

    name = "mailchimp"
    destination: ClassVar[type[Destination]] = MailchimpDestination
    object = LIST_ID
    identity = "email_address"
    fields = ("email_address", "FNAME", "SCORE", "SINCE")
    mutable_field = "FNAME"
    max_batch_size = 500
    secret = SECRET
    MERGE: ClassVar[dict[str, str]] = {"SCORE": "number", "SINCE": "date"}

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with MailchimpEmulator(token=SECRET, list_ids=[LIST_ID], merge_fields=self.MERGE,
                               max_connections=True) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "mailchimp", "api_key": SECRET, "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"email_address": f"user{i}@example.com", "FNAME": f"Name {i}", "SCORE": i * 1.5,
                "SINCE": dt.date(2024, 1, 1 + i % 28)}

    def expected(self, record: Record) -> dict[str, Any]:
        return {**record.values, "SINCE": record.values["SINCE"].isoformat()}

    def read_back(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for member in self.emu.members(LIST_ID):
            merge = {k: (v if v != "" else None) for k, v in member["merge_fields"].items()}
            key = member["email_address"].removeprefix("user").partition("@")[0]
            found[key] = {"email_address": member["email_address"], **{f: merge.get(f) for f in self.fields[1:]}}
        return found

    def moved_identity(self, i: int) -> Any | None:
        return f"user{i}@moved.example.com"

    def stored_identities(self) -> list[Any]:
        return [m["email_address"] for m in self.emu.members(LIST_ID)]

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, SINCE="the fifth of May")  # not a date: Mailchimp refuses the member

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=rf"^/3\.0/lists/{LIST_ID}$")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"api_key": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [MailchimpHarness]
