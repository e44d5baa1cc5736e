"""A changed match value in Pipedrive (Record.previous): the stored id of the old value is used, the
record is PATCHed with the new value and its id filed under it; a value another person has is refused."""

from __future__ import annotations

from dbt_activate.core.types import Batch, BatchResult, MemoryIdStore, Operation, Record
from tests.destinations.pipedrive.test_unit import FakePipedrive, _destination, _person, _run, _target


def _moved(key: str, old: str, new: str) -> Record:
    record = _person(key, new, name="Moved")
    return Record(record.key, record.values, previous={"email": old})


def test_the_stored_id_of_the_old_value_is_moved_to_the_new_one() -> None:
    fake = FakePipedrive()
    ada = fake.add("ada@x.com")
    store = MemoryIdStore({"persons|emails|ada@x.com": str(ada)})
    [result] = _run(_destination(fake, store), _target(), Batch(Operation.UPSERT, [_moved("1", "ada@x.com",
                                                                                            "ada@new.com")]))
    assert result == BatchResult()
    assert fake.calls("PATCH") == [f"PATCH /api/v2/persons/{ada}"] and fake.calls("POST") == []
    assert fake.persons[ada]["emails"][0]["value"] == "ada@new.com" and fake.persons[ada]["name"] == "Moved"
    # Only the new value was searched (is it someone else's?); the old one's id came from the store.
    assert [r.url.params["term"] for r in fake.requests if r.url.path.endswith("/search")] == ["ada@new.com"]
    assert store.ids == {"persons|emails|ada@new.com": str(ada)}


def test_a_new_value_another_person_has_is_rejected_and_nothing_changes() -> None:
    fake = FakePipedrive()
    ada, bob = fake.add("ada@x.com"), fake.add("bob@x.com")
    [result] = _run(_destination(fake, MemoryIdStore()), _target(),
                    Batch(Operation.UPDATE, [_moved("1", "ada@x.com", "bob@x.com")]))
    assert set(result.rejected) == {"1"} and f"person {bob} already has" in result.rejected["1"]
    assert fake.calls("PATCH") == [] and fake.persons[ada]["emails"][0]["value"] == "ada@x.com"


def test_without_a_record_under_the_old_value_the_new_one_is_written_as_usual() -> None:
    fake = FakePipedrive()
    store = MemoryIdStore()
    [result] = _run(_destination(fake, store), _target(), Batch(Operation.UPSERT, [_moved("1", "gone@x.com",
                                                                                            "ada@new.com")]))
    assert result == BatchResult() and fake.calls("POST") == ["POST /api/v2/persons"]
    assert list(store.ids) == ["persons|emails|ada@new.com"]
