"""Relationships between records of two syncs: a child's reference resolved to its parent's record id.

A sync's ``references`` say that a column holds the primary key of a record another sync (the parent)
writes to the same destination account. Parents run first (``core/order.py``). Every sync that writes
records keeps the destination's id of each acknowledged record under ``sync|<sync>|<primary key>`` in
the destination's ``RecordIdStore`` (the ``destination_record_ids`` table, ``state/record_ids.py``),
from the ids its destination type reports (``BatchResult.ids``); a deleted record's id is forgotten.

Before a child's batch is sent, each reference value (the parent's primary key, sent under the
relationship's field, ``as``) is replaced by the parent's record id. A child whose parent has no id yet
(not synced, rejected, or deleted) is held back, rejected with "waiting for <parent sync> <key>": it is
never sent with a dangling or missing link, and like every rejected row it keeps its old fingerprint and
is retried by the next run. The fingerprint holds the parent's key, so a child that moves to another
parent is sent again and the destination moves the link. A NULL reference sends no link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dbt_activate.core.types import Record, RecordIdStore


@dataclass(frozen=True)
class Link:
    """The field a reference is sent under, and the sync whose record ids it takes."""

    field: str
    parent: str


def store_key(sync: str, key: str) -> str:
    """Where a sync's record id is kept; distinct from the keys destination types choose (``a|b|c``)."""
    return f"sync|{sync}|{key}"


def parent_key(value: object) -> str:
    """A reference value as the parent's sync key reads (``cast(... as varchar)``, booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Links:
    """The record ids one sync reports, kept for its children; and its own references, resolved."""

    def __init__(self, sync: str, links: Sequence[Link], store: RecordIdStore, *, keep_ids: bool = True) -> None:
        """``keep_ids``: whether other syncs reference this one (else its ids are not worth a write per batch)."""
        self.sync, self.links, self.store, self.keep_ids = sync, tuple(links), store, keep_ids

    def resolve(self, records: Sequence[Record]) -> tuple[list[Record], dict[str, str]]:
        """The records with their references swapped for parent ids, and those held back (key -> reason)."""
        if not self.links:
            return list(records), {}
        wanted = {store_key(link.parent, parent_key(value))
                  for record in records for link in self.links
                  if (value := record.values.get(link.field)) is not None}
        ids = self.store.get_many(sorted(wanted)) if wanted else {}
        ready: list[Record] = []
        held: dict[str, str] = {}
        for record in records:
            values = dict(record.values)
            missing = []
            for link in self.links:
                value = values.get(link.field)
                if value is None:
                    continue
                found = ids.get(store_key(link.parent, parent_key(value)))
                if found is None:
                    missing.append(f"waiting for {link.parent} {parent_key(value)}")
                values[link.field] = found
            if missing:
                held[record.key] = "; ".join(missing)
            else:
                ready.append(Record(record.key, values))
        return ready, held

    def remember(self, ids: Mapping[str, str], deleted: Iterable[str] = ()) -> None:
        """Keep the ids of this sync's acknowledged records; forget those of records it deleted."""
        if not self.keep_ids:
            return
        gone = [store_key(self.sync, k) for k in deleted]
        if gone:
            self.store.delete_many(gone)
        if ids:
            self.store.put_many({store_key(self.sync, k): v for k, v in ids.items()})
