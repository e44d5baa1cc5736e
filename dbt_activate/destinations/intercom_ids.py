"""Finding Intercom contacts by a sync's match field, searching each one at most once ever.

Intercom cannot upsert by a field: a write needs the contact's id. Ids come from what this run
already learnt, then from the runner's ``RecordIdStore`` (read once per batch, kept across runs),
and only then from ``POST /contacts/search``. What a search finds and what a create returns is
written back at the end of each batch; a deleted contact, or an id Intercom no longer knows, is
forgotten. A negative search is never stored: the contact may be created meanwhile (and new
contacts take minutes to become searchable, which the create's 409 conflict covers).

Store keys are ``contacts|<role>|<field>|<value>``; emails are lower-cased, as Intercom compares them.
Two rows with the same match value are written one after the other (a lock per key).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from dbt_activate.destinations.base import RecordIdStore
from dbt_activate.destinations.intercom_api import IntercomApi, RecordFailed


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ContactIds:
    def __init__(self, match: str, role: str, store: RecordIdStore, api: IntercomApi) -> None:
        self.match, self.role = match, role
        self._store, self._api = store, api
        self._known: dict[str, str] = {}
        self._asked: set[str] = set()
        self._put: dict[str, str] = {}
        self._forget: set[str] = set()
        self._locks: dict[str, _KeyLock] = {}

    def key(self, term: str) -> str:
        return f"contacts|{self.role}|{self.match}|{term.casefold() if self.match == 'email' else term}"

    def describe(self, term: str) -> str:
        return f"{self.match}={term!r}"

    def load(self, keys: Iterable[str]) -> None:
        """Read the store once for the keys of a batch that this run has not looked up yet."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._known and k not in self._asked]
        if wanted:
            self._asked.update(wanted)
            self._known.update(self._store.get_many(wanted))

    def known(self, key: str) -> str | None:
        return self._known.get(key)

    async def search(self, key: str, term: str) -> str | None:
        ids = await self._api.search(self.match, term, self.role)
        if len(ids) > 1:
            raise RecordFailed(f"{len(ids)} Intercom contacts ({self.role}) match {self.describe(term)} "
                               f"(ids {', '.join(ids[:5])}): merge them in Intercom or match on external_id")
        if ids:
            self.learn(key, ids[0])
            return ids[0]
        return None

    def learn(self, key: str, contact_id: str) -> None:
        self._known[key] = contact_id
        self._put[key] = contact_id
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
        entry = self._locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]
