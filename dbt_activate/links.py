"""Relationships between records of two syncs: a child's reference resolved to its parent's record id.

A sync's ``references`` say that a column holds the primary key of a record another sync (the parent)
writes to the same destination account. Parents run first (``core/order.py``). Every sync that writes
records keeps the destination's id of each acknowledged record under ``sync|<sync>|<primary key>`` in
the destination's ``RecordIdStore`` (the ``destination_record_ids`` table, ``state/record_ids.py``),
from the ids its destination type reports (``BatchResult.ids``); a deleted record's id is forgotten.

Before a child's batch is sent, each reference value (the parent's primary key, sent under the
relationship's field, ``as``) is replaced by the parent's record id. The destination's link then equals
the model's reference:

- a NULL reference is sent as NULL: the destination clears the link (a field set to null, an
  association or attachment removed), whatever the sync's ``nulls``;
- a changed reference is sent (the fingerprint holds the parent's key): the link moves;
- a new child whose parent has no id (not synced, rejected, or deleted) is held back, rejected with
  "waiting for <parent sync> <key>": never created with a dangling or missing link; like every
  rejected row it keeps its old fingerprint and is retried by the next run;
- a child already in the destination whose parent has no id is sent with the link cleared (its old
  link would be wrong) and then rejected with the same reason, so it is linked once the parent is there.

A parent deleted by its sync (``mirror``, ``on_delete: delete``) leaves children pointing at nothing,
though their rows did not change. So each acknowledged child is indexed under its parent
(``under|<parent sync>|<parent key>|<child sync>|<child key>``, with the child's current parent key
under ``link|<child sync>|<parent sync>|<child key>``); deleting a parent moves the children still
linked to it to ``orphan|<child sync>|<child key>``, and the child sync's next run (in the same
invocation: parents run first) marks those rows to be sent again (``StateStore.resend``): the link is
cleared in the destination and the child waits for its parent as above.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
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


def _link_key(child: str, key: str, parent: str) -> str:
    """Where a child record's current parent key is kept (to tell a moved child from an orphan)."""
    return f"link|{child}|{parent}|{key}"


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
        # record key -> [(parent sync, parent key or None: no link)], from resolve until settled
        self._parents: dict[str, list[tuple[str, str | None]]] = {}

    def resolve(self, records: Sequence[Record],
                existing: Collection[str] = ()) -> tuple[list[Record], dict[str, str], dict[str, str]]:
        """The records to send, with references swapped for parent ids; those held back (key -> reason);
        and those of ``existing`` (records the destination has) sent with a link cleared for want of
        their parent, to be rejected with the reason once acknowledged."""
        if not self.links:
            return list(records), {}, {}
        wanted = {store_key(link.parent, parent_key(value))
                  for record in records for link in self.links
                  if (value := record.values.get(link.field)) is not None}
        ids = self.store.get_many(sorted(wanted)) if wanted else {}
        ready: list[Record] = []
        held: dict[str, str] = {}
        unlinked: dict[str, str] = {}
        for record in records:
            values = dict(record.values)
            missing: list[str] = []
            parents: list[tuple[str, str | None]] = []
            for link in self.links:
                value = values.get(link.field)
                if value is None:
                    parents.append((link.parent, None))
                    continue
                found = ids.get(store_key(link.parent, parent_key(value)))
                if found is None:
                    missing.append(f"waiting for {link.parent} {parent_key(value)}")
                else:
                    parents.append((link.parent, parent_key(value)))
                values[link.field] = found
            if missing and record.key not in existing:
                held[record.key] = "; ".join(missing)
                continue
            if missing:
                unlinked[record.key] = "; ".join(missing)
            ready.append(Record(record.key, values, previous=record.previous))
            self._parents[record.key] = parents
        return ready, held, unlinked

    def settled(self, keys: Iterable[str], acked: Iterable[str], ids: Mapping[str, str],
                deleted: Iterable[str] = ()) -> None:
        """After a batch of ``keys``: index the ``acked`` children under their parents; keep the ids of
        this sync's written records and forget those it ``deleted``, whose children become orphans."""
        acked = set(acked)
        index: dict[str, str] = {}
        unlinked: list[str] = []
        for key in keys:
            for parent, pkey in self._parents.pop(key, []):
                if key not in acked:
                    continue
                if pkey is None:
                    unlinked.append(_link_key(self.sync, key, parent))
                else:
                    index[f"under|{parent}|{pkey}|{self.sync}|{key}"] = self.sync
                    index[_link_key(self.sync, key, parent)] = pkey
        if unlinked:
            self.store.delete_many(unlinked)
        if index:
            self.store.put_many(index)
        if not self.keep_ids:
            return
        gone = list(deleted)
        if gone:
            self.store.delete_many([store_key(self.sync, k) for k in gone])
            self._orphan_children(gone)
        if ids:
            self.store.put_many({store_key(self.sync, k): v for k, v in ids.items()})

    def remember(self, ids: Mapping[str, str], deleted: Iterable[str] = ()) -> None:
        """Keep the ids of this sync's acknowledged records; forget those of records it deleted."""
        self.settled((), (), ids, deleted)

    def _orphan_children(self, deleted: Sequence[str]) -> None:
        """The children indexed under deleted records: marked for their syncs' next run (``take_orphans``)."""
        prefixes = [f"under|{self.sync}|{key}|" for key in deleted]
        entries = self.store.scan(prefixes)
        if not entries:
            return
        children: dict[str, tuple[str, str, str]] = {}  # its link entry -> (child sync, child key, parent key)
        for entry, child in entries.items():
            for key, prefix in zip(deleted, prefixes, strict=True):
                if entry.startswith(f"{prefix}{child}|"):
                    ckey = entry[len(prefix) + len(child) + 1:]
                    children[_link_key(child, ckey, self.sync)] = (child, ckey, key)
        # An entry left by a child that moved to another parent (or to none) is only dropped.
        current = self.store.get_many(sorted(children))
        orphans = {f"orphan|{child}|{ckey}": self.sync for link, (child, ckey, key) in children.items()
                   if current.get(link) == key}
        if orphans:
            self.store.put_many(orphans)
        self.store.delete_many([*entries, *(link for link in children if link in current and
                                            current[link] == children[link][2])])

    def take_orphans(self, resend: Callable[[list[str]], None]) -> list[str]:
        """This sync's records whose parent was deleted: ``resend`` them (durably), then forget them."""
        prefix = f"orphan|{self.sync}|"
        found = self.store.scan([prefix])
        keys = sorted(k[len(prefix):] for k in found)
        if keys:
            resend(keys)
            self.store.delete_many(list(found))
        return keys
