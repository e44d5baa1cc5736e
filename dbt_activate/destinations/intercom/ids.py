"""Finding Intercom contacts by a sync's match field, searching each one at most once ever.

Intercom cannot upsert by a field: a write needs the contact's id, found as ``record_ids`` describes,
the search being ``POST /contacts/search``. New contacts take minutes to become searchable, which the
create's 409 conflict covers.

Store keys are ``contacts|<role>|<field>|<value>``; emails are lower-cased, as Intercom compares them.
"""

from __future__ import annotations

from dbt_activate.core.types import RecordIdStore
from dbt_activate.destinations.intercom.api import IntercomApi, RecordFailed
from dbt_activate.destinations.record_ids import RecordIdCache


class ContactIds(RecordIdCache):
    def __init__(self, match: str, role: str, store: RecordIdStore, api: IntercomApi) -> None:
        super().__init__(store)
        self.match, self.role = match, role
        self._api = api

    def key(self, term: str) -> str:
        return f"contacts|{self.role}|{self.match}|{term.casefold() if self.match == 'email' else term}"

    def describe(self, term: str) -> str:
        return f"{self.match}={term!r}"

    async def search(self, key: str, term: str) -> str | None:
        ids = await self._api.search(self.match, term, self.role)
        if len(ids) > 1:
            raise RecordFailed(f"{len(ids)} Intercom contacts ({self.role}) match {self.describe(term)} "
                               f"(ids {', '.join(ids[:5])}): merge them in Intercom or match on external_id")
        if ids:
            self.learn(key, ids[0])
            return ids[0]
        return None
