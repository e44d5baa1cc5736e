"""links.py: references swapped for parent record ids, children without a parent held back."""

from __future__ import annotations

from dbt_activate.core.types import MemoryIdStore, Record
from dbt_activate.links import Link, Links

DEALS = [Link("person_id", "drivers"), Link("org_id", "fleets")]


def test_references_become_parent_ids_and_missing_parents_hold_the_child_back() -> None:
    store = MemoryIdStore({"sync|drivers|1": "501", "sync|drivers|2": "502", "sync|fleets|7": "901",
                           "sync|fleets|true": "902"})
    links = Links("leads", DEALS, store)
    ready, held = links.resolve([
        Record("a", {"title": "A", "person_id": 1, "org_id": 7}),
        Record("b", {"title": "B", "person_id": 2}),  # no org reference: sent without one
        Record("c", {"title": "C", "person_id": 3, "org_id": 7}),  # driver 3 is not in the destination
        Record("d", {"title": "D", "person_id": 4, "org_id": 8}),
        Record("e", {"title": "E", "person_id": None, "org_id": True}),  # keys read as the warehouse casts them
    ])
    assert ready == [Record("a", {"title": "A", "person_id": "501", "org_id": "901"}),
                     Record("b", {"title": "B", "person_id": "502"}),
                     Record("e", {"title": "E", "person_id": None, "org_id": "902"})]
    assert held == {"c": "waiting for drivers 3", "d": "waiting for drivers 4; waiting for fleets 8"}


def test_a_sync_without_references_sends_its_records_as_they_are() -> None:
    records = [Record("1", {"name": "Fleet 1"})]
    assert Links("fleets", [], MemoryIdStore()).resolve(records) == (records, {})


def test_ids_of_written_records_are_kept_and_those_of_deleted_ones_forgotten() -> None:
    store = MemoryIdStore({"sync|fleets|1": "old", "sync|fleets|2": "902", "persons|emails|a@x": "5"})
    links = Links("fleets", [], store)
    links.remember({"1": "901", "3": "903"}, deleted=["2"])
    assert store.ids == {"sync|fleets|1": "901", "sync|fleets|3": "903", "persons|emails|a@x": "5"}


def test_a_sync_nobody_references_does_not_write_its_ids() -> None:
    store = MemoryIdStore()
    Links("fleets", [], store, keep_ids=False).remember({"1": "901"}, deleted=["2"])
    assert store.ids == {}
