"""A changed identity in a sheet (grid.plan with ``previous``): the old value's row is rewritten, a
value another row has rejects the record, and a record with no row under its old value is added."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_activate.core.types import Operation
from dbt_activate.destinations.google_sheets.grid import plan

GRID: list[list[Any]] = [["id", "name", "notes"], [1, "Ada", "hand-written"], [2, "Bob"]]
FIELDS = ("id", "name")


@pytest.mark.parametrize(("operation", "previous", "grid", "rejected", "skipped"), [
    # 1 becomes 7: its row (notes kept) is rewritten, no new row.
    (Operation.UPSERT, {"k": 1}, [[7, "Ada", "hand-written"], [2, "Bob"]], {}, {}),
    (Operation.UPDATE, {"k": 1}, [[7, "Ada", "hand-written"], [2, "Bob"]], {}, {}),
    # No row has the old value: an upsert adds one, an update skips it.
    (Operation.UPSERT, {"k": 5}, [[1, "Ada", "hand-written"], [2, "Bob"], [7, "Ada"]], {}, {}),
    (Operation.UPDATE, {"k": 5}, [[1, "Ada", "hand-written"], [2, "Bob"]], {},
     {"k": "no row with this key in the sheet"}),
])
def test_a_changed_identity_rewrites_the_row_of_the_old_one(operation: Operation, previous: dict[str, Any],
                                                            grid: list[list[Any]], rejected: dict[str, str],
                                                            skipped: dict[str, str]) -> None:
    planned = plan(GRID, FIELDS, "id", operation, [("k", {"id": 7, "name": "Ada"})], previous)
    assert planned.grid[1:] == grid
    assert (planned.rejected, planned.skipped) == (rejected, skipped)


def test_a_value_another_row_has_rejects_the_record_and_changes_nothing() -> None:
    planned = plan(GRID, FIELDS, "id", Operation.UPSERT, [("k", {"id": 2, "name": "Ada"})], {"k": 1})
    assert planned.rejected == {"k": "id changed from '1' to '2', which row 3 of the sheet already has: not merged "
                                      "into it"}
    assert planned.grid == GRID and planned.writes == []


def test_previous_is_ignored_by_the_operations_that_do_not_follow_identities() -> None:
    planned = plan(GRID, FIELDS, "id", Operation.APPEND, [("k", {"id": 7, "name": "Ada"})], {"k": 1})
    assert planned.grid[1:] == [[1, "Ada", "hand-written"], [2, "Bob"], [7, "Ada"]]
