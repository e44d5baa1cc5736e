"""Finding Pipedrive records by a sync's match field, searching each one at most once.

Pipedrive cannot upsert by a field: a write needs the record's id. The ids come, in this order,
from what this run already learnt, from the ``RecordIdStore`` (kept across runs by the runner;
read once per batch), and only then from a search, which costs 20 tokens and has a limit of
10 per 2 s. What a search finds and what a POST creates is written back to the store at the end of
each batch, and a record deleted (or found gone) is forgotten, so the next run searches only for
records it has never seen. A negative search is never cached: the record may be created meanwhile.

Store keys are ``<object>|<field>|<value>``: the v2 property or the custom field's 40-character key
(stable when the field is renamed in Pipedrive) and the match value as searched.

Match fields and their searches (``openapi-v2.yaml``; all exact matches):

=========================  ====================================================================
person ``email``/``phone``  ``GET /persons/search?fields=email|phone&exact_match=true`` (not case-
                            sensitive; hits are re-checked against the term)
person, organization name   ``GET /{persons|organizations}/search?fields=name&exact_match=true``
deal ``title``              ``GET /deals/search?fields=title&exact_match=true``
custom field                ``GET /itemSearch/field?entity_type=…&field=<key>&match=exact`` (case-
                            sensitive); only types address, varchar, text, varchar_auto, double,
                            monetary and phone are searchable
=========================  ====================================================================

Two rows with the same match value are written one after the other (a lock per key), so the second
finds the record the first created instead of creating a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dbt_activate.destinations.base import RecordIdStore
from dbt_activate.destinations.pipedrive_api import PipedriveApi, RecordFailed, SearchSpec
from dbt_activate.destinations.pipedrive_fields import SEARCHABLE_CUSTOM, FieldTarget
from dbt_activate.errors import ConfigError

SINGULAR = {"persons": "person", "organizations": "organization", "deals": "deal"}
_STANDARD_SEARCH = {  # (object, v2 property) -> the `fields` value of /{object}/search
    ("persons", "emails"): "email", ("persons", "phones"): "phone", ("persons", "name"): "name",
    ("organizations", "name"): "name", ("deals", "title"): "title",
}
_ITEM_PROPERTY = {"email": "emails", "phone": "phones", "name": "name", "title": "title"}


def term(value: Any) -> str:
    """A match value as the search term Pipedrive compares (first email of a list, dates in ISO)."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip()


def search_spec(entity: str, match: FieldTarget, *, where: str) -> SearchSpec:
    """How records of ``entity`` are found by ``match``; a ConfigError when Pipedrive cannot search it."""
    if match.custom:
        if match.field_type not in SEARCHABLE_CUSTOM:
            raise ConfigError(
                f"match field {match.name!r} is a {match.field_type!r} custom field, which Pipedrive cannot "
                f"search; match on one of type {', '.join(SEARCHABLE_CUSTOM)}", location=where)
        return SearchSpec("/itemSearch/field", {"entity_type": SINGULAR[entity], "field": match.prop,
                                                "match": "exact"})
    search_field = _STANDARD_SEARCH.get((entity, match.prop))
    if search_field is None:
        searchable = ", ".join(f for (e, _), f in _STANDARD_SEARCH.items() if e == entity)
        raise ConfigError(f"Pipedrive cannot find {entity} by {match.name!r}: match on {searchable} or a "
                          "searchable custom field", location=where)
    return SearchSpec(f"/{entity}/search", {"fields": search_field, "exact_match": "true"},
                      verify=_ITEM_PROPERTY[search_field])


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class RecordIds:
    """The match key -> record id map of one sync in one run, backed by a ``RecordIdStore``."""

    def __init__(self, entity: str, match: FieldTarget, spec: SearchSpec, store: RecordIdStore,
                 api: PipedriveApi) -> None:
        self.entity, self.match, self.spec = entity, match, spec
        self._store, self._api = store, api
        self._known: dict[str, str] = {}  # learnt this run, or read from the store
        self._asked: set[str] = set()  # keys already looked up in the store this run
        self._put: dict[str, str] = {}
        self._forget: set[str] = set()
        self._locks: dict[str, _KeyLock] = {}

    def key(self, term: str) -> str:
        return f"{self.entity}|{self.match.prop}|{term}"

    def describe(self, term: str) -> str:
        return f"{self.match.name}={term!r}"

    def load(self, keys: Iterable[str]) -> None:
        """Read the store once for the keys of a batch that this run has not looked up yet."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._known and k not in self._asked]
        if wanted:
            self._asked.update(wanted)
            self._known.update(self._store.get_many(wanted))

    def known(self, key: str) -> str | None:
        """The id learnt this run or read from the store, if any (call ``load`` first)."""
        return self._known.get(key)

    async def search(self, key: str, term: str) -> str | None:
        """Search Pipedrive for the record (remembering what is found); several hits reject the row."""
        ids = await self._api.search(self.spec, term)
        if len(ids) > 1:
            raise RecordFailed(
                f"{len(ids)} Pipedrive {self.entity} match {self.describe(term)} (ids {', '.join(ids[:5])}): "
                "merge the duplicates in Pipedrive or match on a field that is unique")
        if ids:
            self.learn(key, ids[0])
            return ids[0]
        return None

    def learn(self, key: str, record_id: str) -> None:
        self._known[key] = record_id
        self._put[key] = record_id
        self._forget.discard(key)

    def forget(self, key: str) -> None:
        self._known.pop(key, None)
        self._put.pop(key, None)
        self._forget.add(key)

    def flush(self) -> None:
        """Write what the batch learnt and forgot to the store (also after a failed batch)."""
        put, forget = self._put, self._forget
        self._put, self._forget = {}, set()
        if forget:
            self._store.delete_many(sorted(forget))
        if put:
            self._store.put_many(put)

    @contextlib.asynccontextmanager
    async def locked(self, key: str) -> AsyncIterator[None]:
        """Serialise the records of one key across the batches in flight."""
        entry = self._locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]
