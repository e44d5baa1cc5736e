"""Conformance harness of ``meta`` Custom Audience members against ``MetaEmulator``.

Conversions API events are append-only and the suite writes with upsert or create, so only the
audience object is held to it. Removals name members by the hashes kept in the record-id store, which
the harness shares between the destinations it builds, as the runner does between runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.meta.destination import MetaDestination
from dbt_activate.destinations.meta.payload import audience_row, audience_schema
from dbt_activate.testing.meta import MetaEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness, HashedMembersHarness

AUDIENCE = "2345678901"


class MetaAudienceHarness(HashedMembersHarness):
    name = "meta"
    destination: ClassVar[type[Destination]] = MetaDestination
    object = f"audience:{AUDIENCE}"
    fields = ("id", "email", "first_name", "last_name", "country_code")
    max_batch_size = None  # 1,000 events or 10,000 users: checked in tests/destinations/meta

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        self.start_store()
        with MetaEmulator(token=SECRET, audiences=(AUDIENCE,)) as self.emu:
            yield
        assert self.emu.errors == []
        assert self.emu.tokens_in_url == 0

    def config(self) -> dict[str, Any]:
        return {"type": "meta", "access_token": SECRET, "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"id": i, "email": f"p{i}@example.com", "first_name": f"Name {i}", "last_name": "Doe",
                "country_code": "GB"}

    def expected(self, record: Record) -> dict[str, Any]:
        schema = audience_schema(self.fields)
        return {k: v for k, v in zip(schema, audience_row(record.values, schema, None), strict=True) if v}

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {self.keys[m["EMAIL"]]: m for m in self.emu.members(AUDIENCE)}

    def bad_record(self, i: int) -> Record | None:
        return Record(str(i), {"id": i, "email": "not an email", "first_name": "Ada"})

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"access_token": WRONG_SECRET}


HARNESSES: list[type[Harness]] = [MetaAudienceHarness]
