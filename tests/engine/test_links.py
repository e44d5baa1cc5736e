"""links.py: references swapped for parent record ids, children without a parent held back or unlinked,
children of deleted parents marked to be sent again."""

from __future__ import annotations

from dbt_activate.core.types import MemoryIdStore, Record
from dbt_activate.links import Link, Links

DEALS = [Link("person_id", "drivers"), Link("org_id", "fleets")]


def test_references_become_parent_ids_and_missing_parents_hold_the_child_back() -> None:
    store = MemoryIdStore({"sync|drivers|1": "501", "sync|drivers|2": "502", "sync|fleets|7": "901",
                           "sync|fleets|true": "902"})
    links = Links("leads", DEALS, store)
    ready, held, unlinked = links.resolve([
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
    assert unlinked == {}


def test_a_child_the_destination_has_is_sent_unlinked_when_its_parent_is_missing() -> None:
    """Its old link would point at the wrong (or a deleted) parent: cleared, then rejected as waiting."""
    links = Links("leads", DEALS, MemoryIdStore({"sync|drivers|1": "501"}))
    ready, held, unlinked = links.resolve([Record("a", {"person_id": 1, "org_id": 9}),
                                           Record("b", {"person_id": 1, "org_id": 9})], existing={"a"})
    assert ready == [Record("a", {"person_id": "501", "org_id": None})]
    assert held == {"b": "waiting for fleets 9"}
    assert unlinked == {"a": "waiting for fleets 9"}


def test_a_sync_without_references_sends_its_records_as_they_are() -> None:
    records = [Record("1", {"name": "Fleet 1"})]
    assert Links("fleets", [], MemoryIdStore()).resolve(records) == (records, {}, {})


def test_ids_of_written_records_are_kept_and_those_of_deleted_ones_forgotten() -> None:
    store = MemoryIdStore({"sync|fleets|1": "old", "sync|fleets|2": "902", "persons|emails|a@x": "5"})
    links = Links("fleets", [], store)
    links.remember({"1": "901", "3": "903"}, deleted=["2"])
    assert store.ids == {"sync|fleets|1": "901", "sync|fleets|3": "903", "persons|emails|a@x": "5"}


def test_a_sync_nobody_references_does_not_write_its_ids() -> None:
    store = MemoryIdStore()
    Links("fleets", [], store, keep_ids=False).remember({"1": "901"}, deleted=["2"])
    assert store.ids == {}


def test_children_of_a_deleted_parent_are_sent_again_by_their_sync() -> None:
    store = MemoryIdStore({"sync|fleets|1": "901", "sync|fleets|2": "902"})
    drivers = Links("drivers", [Link("org_id", "fleets")], store, keep_ids=False)
    ready, _, _ = drivers.resolve([Record("d1", {"org_id": 1}), Record("d2", {"org_id": 2}),
                                   Record("d|3", {"org_id": 1}), Record("d4", {"org_id": 1})])
    drivers.settled([r.key for r in ready], acked=["d1", "d2", "d|3"], ids={})  # d4 was rejected
    assert "under|fleets|1|drivers|d1" in store.ids and "under|fleets|1|drivers|d4" not in store.ids

    fleets = Links("fleets", [], store)
    fleets.settled(["1"], acked=["1"], ids={}, deleted=["1"])  # mirror deleted fleet 1
    assert "sync|fleets|1" not in store.ids and store.scan(["under|fleets|1|"]) == {}

    resent: list[list[str]] = []
    assert drivers.take_orphans(resent.append) == ["d1", "d|3"]
    assert resent == [["d1", "d|3"]]
    assert drivers.take_orphans(resent.append) == []  # taken once
    assert store.scan(["under|fleets|2|"]) == {"under|fleets|2|drivers|d2": "drivers"}  # fleet 2 kept its child


def test_a_child_that_moved_or_lost_its_link_is_not_an_orphan_of_its_old_parent() -> None:
    store = MemoryIdStore({"sync|fleets|1": "901", "sync|fleets|2": "902"})
    drivers = Links("drivers", [Link("org_id", "fleets")], store, keep_ids=False)
    drivers.resolve([Record("a", {"org_id": 1}), Record("b", {"org_id": 1}), Record("c", {"org_id": 1})])
    drivers.settled(["a", "b", "c"], acked=["a", "b", "c"], ids={})
    drivers.resolve([Record("a", {"org_id": 2}), Record("b", {"org_id": None})], existing={"a", "b"})
    drivers.settled(["a", "b"], acked=["a", "b"], ids={})  # a moved to fleet 2, b has no fleet now

    Links("fleets", [], store).settled(["1"], acked=["1"], ids={}, deleted=["1"])
    assert drivers.take_orphans(lambda keys: None) == ["c"]
    assert store.scan(["under|fleets|1|", "link|drivers|fleets|c"]) == {}  # nothing left for fleet 1


def test_a_child_whose_identity_changed_keeps_the_identity_it_was_sent_with() -> None:
    """``Record.previous`` finds the record to update (a new email): resolving references keeps it."""
    links = Links("drivers", [Link("org_id", "fleets")], MemoryIdStore({"sync|fleets|1": "901"}))
    moved = Record("d1", {"email": "new@x.io", "org_id": 1}, previous={"email": "old@x.io"})
    ready, _, _ = links.resolve([moved], existing={"d1"})
    assert ready == [Record("d1", {"email": "new@x.io", "org_id": "901"}, previous={"email": "old@x.io"})]
