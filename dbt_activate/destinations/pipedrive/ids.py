"""Finding Pipedrive records by a sync's match field, searching each one at most once.

Pipedrive cannot upsert by a field: a write needs the record's id, found as ``record_ids`` describes
(learnt this run, the runner's store, then a search), so a run searches only for records never seen
before: a search costs 20 tokens and has a limit of 10 per 2 s.

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
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from dbt_activate.core.types import RecordIdStore
from dbt_activate.destinations.pipedrive.api import PipedriveApi, SearchSpec
from dbt_activate.destinations.pipedrive.fields import SEARCHABLE_CUSTOM, FieldTarget
from dbt_activate.destinations.record_ids import RecordIdCache
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


class RecordIds(RecordIdCache):
    """The match key -> record id map of one sync in one run, backed by a ``RecordIdStore``."""

    if_several = "merge the duplicates in Pipedrive or match on a field that is unique"

    def __init__(self, entity: str, match: FieldTarget, spec: SearchSpec, store: RecordIdStore,
                 api: PipedriveApi) -> None:
        super().__init__(store)
        self.entity, self.match, self.spec = entity, match, spec
        self.match_name, self.records = match.name, f"Pipedrive {entity}"
        self._api = api

    def key(self, term: str) -> str:
        return f"{self.entity}|{self.match.prop}|{term}"

    async def lookup(self, term: str) -> list[str]:
        return await self._api.search(self.spec, term)
