"""The ``http`` destination against ``RestEmulator``: once with batch endpoints, once per record."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Record
from dbt_activate.delivery import encode_record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.http.destination import HttpDestination
from dbt_activate.testing.rest import RestEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness

BATCH = '{"records": {{ records | tojson }}}'
RESULTS = {"errors_path": "$.errors[*]", "skipped_path": "$.skipped[*]", "error_message_path": "$.message"}
CLEARED = '{"id": {{ record.id | tojson }}, "name": null, "score": null, "vip": null, "signed_up": null}'

# Batch endpoints; errors found by their position in the request.
BATCH_REQUESTS: dict[str, Any] = {
    op: {"path": f"/v1/people/batch/{op}", "body": BATCH, "error_index_path": "$.index", **RESULTS}
    for op in ("upsert", "create", "update")
} | {
    "append": {"path": "/v1/people/events", "body": '{"events": {{ records | tojson }}}',
               "error_index_path": "$.index", **RESULTS},
    "delete": {"path": "/v1/people/batch/delete",
               "body": '{"ids": {{ records | map(attribute="id") | list | tojson }}}'},
    "clear": {"path": "/v1/people/batch/update", "error_index_path": "$.index", **RESULTS,
              "body": '{"records": [{% for record in records %}' + CLEARED
                      + '{{ "," if not loop.last }}{% endfor %}]}'},
}
# One request per record (errors are the response's message); create is a batch matched by key.
ONE = "/v1/people/{{ record.id }}"
PER_RECORD_REQUESTS: dict[str, Any] = {
    "upsert": {"method": "PUT", "path": ONE, "per_record": True, "error_message_path": "$.message"},
    "update": {"method": "PATCH", "path": ONE, "per_record": True, "skip_statuses": [404],
               "error_message_path": "$.message"},
    "create": {"path": "/v1/people/batch/create", "body": BATCH, "error_key_path": "$.id", **RESULTS},
    "append": {"path": "/v1/people/events", "per_record": True, "body": '{"events": [{{ record | tojson }}]}'},
    "delete": {"method": "DELETE", "path": ONE, "per_record": True, "ok_statuses": [404]},
    "clear": {"method": "PATCH", "path": ONE, "per_record": True, "body": CLEARED, "skip_statuses": [404]},
}


def person(i: int) -> dict[str, Any]:
    """Record ``i``, as ``harnesses.person`` (not imported: harnesses.py imports this module)."""
    return {"id": i, "name": f"Name {i}", "score": i * 1.5, "vip": i % 2 == 0,
            "signed_up": dt.date(2024, 1, 1 + i % 28)}


class HttpBatchHarness(Harness):
    name = "http_batch"
    destination: ClassVar[type[Destination]] = HttpDestination
    fields = ("id", "name", "score", "vip", "signed_up")
    secret = SECRET
    REQUESTS: ClassVar[dict[str, Any]] = BATCH_REQUESTS

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with RestEmulator(token=SECRET, max_lengths={"name": 40}) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "http", "base_url": self.emu.base_url, "headers": {"Authorization": f"Bearer {SECRET}"},
                "timeout": 5, "requests": self.REQUESTS}

    def values(self, i: int) -> dict[str, Any]:
        return person(i)

    def expected(self, record: Record) -> dict[str, Any]:
        return encode_record(record.values)  # JSON: dates as ISO 8601 text

    def read_back(self) -> dict[str, dict[str, Any]]:
        return self.emu.records("people")

    def read_appended(self) -> list[dict[str, Any]]:
        return self.emu.events("people")

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, name="x" * 41)  # longer than the API accepts

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", status=503)
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"headers": {"Authorization": f"Bearer {WRONG_SECRET}"}}


class HttpPerRecordHarness(HttpBatchHarness):
    name = "http_per_record"
    REQUESTS: ClassVar[dict[str, Any]] = PER_RECORD_REQUESTS


HARNESSES: list[type[Harness]] = [HttpBatchHarness, HttpPerRecordHarness]
