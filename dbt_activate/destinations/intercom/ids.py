"""Finding Intercom contacts by a sync's match field, searching each one at most once ever.

Intercom cannot upsert by a field: a write needs the contact's id, found as ``record_ids`` describes,
the search being ``POST /contacts/search``. New contacts take minutes to become searchable, which the
create's 409 conflict covers.

Store keys are ``contacts|<role>|<field>|<value>``; emails are lower-cased, as Intercom compares them.
"""

from __future__ import annotations

from dbt_activate.core.types import RecordIdStore
from dbt_activate.destinations.intercom.api import IntercomApi
from dbt_activate.destinations.record_ids import RecordIdCache


class ContactIds(RecordIdCache):
    if_several = "merge them in Intercom or match on external_id"

    def __init__(self, match: str, role: str, store: RecordIdStore, api: IntercomApi) -> None:
        super().__init__(store)
        self.match_name, self.role = match, role
        self.records = f"Intercom contacts ({role})"
        self._api = api

    def key(self, term: str) -> str:
        return f"contacts|{self.role}|{self.match_name}|{term.casefold() if self.match_name == 'email' else term}"

    async def lookup(self, term: str) -> list[str]:
        return await self._api.search(self.match_name, term, self.role)
