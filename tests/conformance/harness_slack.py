"""Conformance harnesses of the ``slack`` destination (a message per row, a digest per batch).

Slack only announces rows, so both harnesses declare ``operations`` = create and append: the
suite's upsert/update/delete/clear cases skip, explicitly, rather than fail. Their templates print
each row as JSON, so ``read_back`` can compare what a message says with what was sent.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from dbt_activate.core.types import Operation, Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.slack.destination import MAX_BATCH, SlackDestination
from dbt_activate.testing.slack.emulator import SlackEmulator
from tests.conformance.base import SECRET, WRONG_SECRET, Harness


class SlackRowHarness(Harness):
    name = "slack_row"
    destination: ClassVar[type[Destination]] = SlackDestination
    object = "conversions"
    identity = "id"
    fields = ("id", "name")
    max_batch_size = MAX_BATCH
    secret = SECRET  # the webhook URL's token segment
    template = "{% if row.name %}{{ row | tojson }}{% endif %}"  # an empty name renders nothing: no_text
    message = "row"

    @property
    def operations(self) -> frozenset[Operation]:
        return frozenset({Operation.CREATE, Operation.APPEND})

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with SlackEmulator(token=SECRET) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "slack", "webhook_url": self.emu.url, "message": self.message, "text": self.template}

    def values(self, i: int) -> dict[str, Any]:
        return {"id": i, "name": f"Name {i}"}

    def read_appended(self) -> list[dict[str, Any]]:
        return [json.loads(line) for text in self.emu.texts() for line in text.splitlines() if line.strip()]

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r for r in self.read_appended()}  # the latest message about a row wins

    def bad_record(self, i: int) -> Record | None:
        return Record(str(i), {"id": i, "name": ""})

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"webhook_url": f"{self.emu.base_url}/services/T0/B0/{WRONG_SECRET}"}  # 404 no_service


class SlackDigestHarness(SlackRowHarness):
    name = "slack_digest"
    template = "{% for r in rows %}{{ r | tojson }}\n{% endfor %}"
    message = "digest"

    def bad_record(self, i: int) -> Record | None:
        return None  # a digest is one message: Slack refuses it whole, never one row of it


HARNESSES: list[type[Harness]] = [SlackRowHarness, SlackDigestHarness]
