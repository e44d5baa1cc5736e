"""Rows with a null or duplicated primary key are rejected with a reason that names the key as the
activate block does, whatever case the warehouse reports the column in (Snowflake: CUSTOMER_ID)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbt_activate.core.changes import ADD, DUPLICATE_KEY, NULL_KEY
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.stream import Stream
from tests.factories import engine_sync, resolved_sync


def rows() -> Iterator[list[tuple[Any, ...]]]:
    # (op, key, fingerprint, identity, rows sharing the key): the diff's rejected rows send nothing.
    yield [(NULL_KEY, None, None, None, 2), (DUPLICATE_KEY, "5", None, None, 3), (ADD, "7", "f7", None, 1)]


def test_the_reason_names_the_key_as_the_activate_block_does(tmp_path: Path) -> None:
    resolved = resolved_sync("people", columns={"CUSTOMER_ID": "NUMBER", "EMAIL": "TEXT"},
                             primary_key=("customer_id",))
    assert resolved.key_columns == ("CUSTOMER_ID",)  # as the warehouse reports it
    destination = WebhookDestination("hook", {"type": "webhook", "url": "http://127.0.0.1:9/unused"})
    stream = Stream(engine_sync(resolved, destination, None, None, tmp_path))

    # A first sync: the key query found customer 7 twice, the plain scan yields it once.
    result = asyncio.run(stream.run(rows(), duplicate_keys={"7": 2}))

    assert dict(result.rejected_samples) == {
        "<null>": "primary key (customer_id) is null",
        "5": "duplicate primary key (customer_id): 3 rows share this value",
        "7": "duplicate primary key (customer_id): 2 rows share this value"}
    assert result.counts.rejected == 2 + 3 + 1
