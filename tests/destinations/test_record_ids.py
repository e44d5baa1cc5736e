"""``RecordIdCache.write``: the write of one record found by its match value, shared by the vendors that
need a record's id to write it (Intercom, Pipedrive), as a table of operation x what the vendor has."""

from __future__ import annotations

import asyncio

import pytest

from dbt_activate.core.types import MemoryIdStore, Operation
from dbt_activate.destinations.record_ids import OK, Outcome, RecordFailed, RecordIdCache


class People(RecordIdCache):
    """A vendor of people found by email, in memory: what it holds and every call made to it."""

    if_several = "merge them"

    def __init__(self, held: dict[str, list[str]]) -> None:
        super().__init__(MemoryIdStore())
        self.match_name, self.records = "email", "people"
        self.held = held
        self.calls: list[str] = []

    def key(self, term: str) -> str:
        return f"people|{term}"

    async def lookup(self, term: str) -> list[str]:
        self.calls.append(f"search {term}")
        return self.held.get(term, [])

    def write_one(self, operation: Operation, term: str) -> Outcome:
        async def on_existing(record_id: str) -> bool:
            self.calls.append(f"{operation.value} {record_id}")
            return True

        async def create() -> tuple[str | None, Outcome]:
            self.calls.append("create")
            return "new-id", OK

        return asyncio.run(self.write(operation, self.key(term), term, on_existing=on_existing, create=create,
                                      one="a person", none="no person"))


@pytest.mark.parametrize(("operation", "held", "outcome", "calls", "known"), [
    (Operation.CREATE, ["7"], ("skipped", "a person with email='a@x.io' exists (id 7)"), ["search a@x.io"], "7"),
    (Operation.CREATE, [], OK, ["search a@x.io", "create"], "new-id"),
    (Operation.UPSERT, ["7"], OK, ["search a@x.io", "upsert 7"], "7"),
    (Operation.UPSERT, [], OK, ["search a@x.io", "create"], "new-id"),
    (Operation.UPDATE, ["7"], OK, ["search a@x.io", "update 7"], "7"),
    (Operation.UPDATE, [], ("skipped", "no person with email='a@x.io'"), ["search a@x.io"], None),
    (Operation.DELETE, ["7"], OK, ["search a@x.io", "delete 7"], None),  # its id is forgotten
    (Operation.DELETE, [], OK, ["search a@x.io"], None),  # nothing to delete
    (Operation.CLEAR, ["7"], OK, ["search a@x.io", "clear 7"], "7"),
    (Operation.CLEAR, [], OK, ["search a@x.io"], None),  # nothing to clear, nothing created
], ids=lambda p: p.value if isinstance(p, Operation) else None)
def test_each_operation_on_a_record_the_vendor_has_or_has_not(operation: Operation, held: list[str],
                                                               outcome: Outcome, calls: list[str],
                                                               known: str | None) -> None:
    people = People({"a@x.io": held})
    assert people.write_one(operation, "a@x.io") == outcome
    assert people.calls == calls
    assert people.known(people.key("a@x.io")) == known


def test_several_records_with_the_value_reject_the_row_naming_them() -> None:
    people = People({"a@x.io": ["7", "8"]})
    with pytest.raises(RecordFailed, match=r"^2 people match email='a@x.io' \(ids 7, 8\): merge them$"):
        people.write_one(Operation.UPSERT, "a@x.io")
    assert people.calls == ["search a@x.io"]


def test_an_id_known_from_before_is_used_without_a_search() -> None:
    people = People({})
    people.learn(people.key("a@x.io"), "7")
    assert people.write_one(Operation.UPDATE, "a@x.io") == OK
    assert people.calls == ["update 7"]
