"""The Pipedrive emulator's persons, organizations and deals: v2 bodies in, v2 records out, search.

Not thread-safe by itself: the emulator holds its lock around every call. Deletes are soft
(``is_deleted``), as in Pipedrive; deleted records are invisible to reads and searches.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from dbt_activate.testing.messages import ApiError
from dbt_activate.testing.pipedrive.fields import SEARCHABLE, FieldDef

_I, _S, _N, _B, _L, _O = (int,), (str,), (int, float), (bool,), (list,), (dict,)
_TYPE_NAMES = {_I: "integer", _S: "string", _N: "number", _B: "boolean", _L: "array", _O: "object"}
BODY: dict[str, dict[str, tuple[type, ...]]] = {  # v2 request body properties per entity (from the spec)
    "persons": {"name": _S, "owner_id": _I, "org_id": _I, "add_time": _S, "update_time": _S, "emails": _L,
                "phones": _L, "visible_to": _I, "label_ids": _L, "marketing_status": _S, "custom_fields": _O},
    "organizations": {"name": _S, "owner_id": _I, "add_time": _S, "update_time": _S, "visible_to": _I,
                      "label_ids": _L, "address": _O, "custom_fields": _O},
    "deals": {"title": _S, "owner_id": _I, "person_id": _I, "org_id": _I, "pipeline_id": _I, "stage_id": _I,
              "value": _N, "currency": _S, "is_deleted": _B, "is_archived": _B, "archive_time": _S, "status": _S,
              "probability": _N, "lost_reason": _S, "visible_to": _I, "close_time": _S, "won_time": _S,
              "lost_time": _S, "expected_close_date": _S, "label_ids": _L, "custom_fields": _O},
}
REQUIRED = {"persons": "name", "organizations": "name", "deals": "title"}
# The body properties whose v2 request schemas say ``nullable: true`` (openapi-v2.yaml); ``null`` is
# refused for every other one.
NULLABLE = {"persons": frozenset[str](), "organizations": frozenset[str](),
            "deals": frozenset({"probability", "lost_reason", "close_time"})}
SINGULAR = {"persons": "person", "organizations": "organization", "deals": "deal"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "persons": {"owner_id": 1, "org_id": None, "emails": [], "phones": [], "is_deleted": False, "visible_to": 3,
                "label_ids": [], "picture_id": None},
    "organizations": {"owner_id": 1, "address": None, "is_deleted": False, "visible_to": 3, "label_ids": []},
    "deals": {"creator_user_id": 1, "owner_id": 1, "value": 0, "person_id": None, "org_id": None, "stage_id": 1,
              "pipeline_id": 1, "currency": "USD", "status": "open", "is_archived": False, "is_deleted": False,
              "probability": None, "lost_reason": None, "visible_to": 3, "close_time": None, "won_time": None,
              "lost_time": None, "expected_close_date": None, "label_ids": []},
}
STAGES = {1: "Lead In"}  # the default stage every deal gets; its name from the spec's deal search example
SEARCH_FIELDS = {"persons": ("name", "email", "phone", "notes", "custom_fields"),
                 "organizations": ("name", "address", "notes", "custom_fields"),
                 "deals": ("title", "notes", "custom_fields")}


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "ERR_SCHEMA_VALIDATION_FAILED")


class PipedriveStore:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.records: dict[str, dict[int, dict[str, Any]]] = {e: {} for e in BODY}

    def clear(self) -> None:
        for records in self.records.values():
            records.clear()

    def link(self, entity: str, record_id: Any, label: str, **extra: Any) -> dict[str, Any] | None:
        """``{id, <label>: name}`` of a linked record for search results; None when there is no link."""
        if record_id is None:
            return None
        found = self.records[entity].get(record_id)
        return {"id": record_id, label: found[REQUIRED[entity]] if found else f"#{record_id}", **extra}

    def live(self, entity: str) -> Iterator[dict[str, Any]]:
        return (r for r in self.records[entity].values() if not r["is_deleted"])

    def get(self, entity: str, record_id: int) -> dict[str, Any]:
        found = self.records[entity].get(record_id)
        if found is None or found["is_deleted"]:
            raise ApiError(404, f"{SINGULAR[entity].capitalize()} not found", "NOT_FOUND")
        return found

    def create(self, entity: str, body: Mapping[str, Any], custom: Mapping[str, FieldDef]) -> dict[str, Any]:
        values = self._checked(entity, body, custom)
        if not values.get(REQUIRED[entity]):
            raise invalid(f"{REQUIRED[entity]} is required")
        stamp = now_text()
        record: dict[str, Any] = {"id": next(self._ids), **DEFAULTS[entity], "add_time": stamp, "update_time": stamp,
                                  "custom_fields": {}}
        self._merge(entity, record, values)
        self.records[entity][record["id"]] = record
        return record

    def update(self, entity: str, record_id: int, body: Mapping[str, Any], custom: Mapping[str, FieldDef]
               ) -> dict[str, Any]:
        record = self.get(entity, record_id)
        values = self._checked(entity, body, custom)
        if REQUIRED[entity] in values and not values[REQUIRED[entity]]:
            raise invalid(f"{REQUIRED[entity]} can not be empty")
        record["update_time"] = now_text()
        self._merge(entity, record, values)
        return record

    def delete(self, entity: str, record_id: int) -> None:
        record = self.get(entity, record_id)
        record["is_deleted"] = True
        record["update_time"] = now_text()

    def _checked(self, entity: str, body: Mapping[str, Any], custom: Mapping[str, FieldDef]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        allowed = BODY[entity]
        values: dict[str, Any] = {}
        for name, value in body.items():
            types = allowed.get(name)
            if types is None:
                raise invalid(f"Unknown parameter '{name}' for {entity}")
            if value is None and name not in NULLABLE[entity]:
                raise invalid(f"Parameter '{name}' must be of type {_TYPE_NAMES[types]}, not null")
            if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and types != _B)):
                raise invalid(f"Parameter '{name}' must be of type {_TYPE_NAMES[types]}")
            values[name] = value
        if isinstance(values.get("custom_fields"), dict):
            checked = {}
            for key, value in values["custom_fields"].items():
                definition = custom.get(key)
                if definition is None:
                    raise invalid(f"Unknown custom field '{key}' for {entity}")
                checked[key] = definition.check(value)
            values["custom_fields"] = checked
        for name in ("emails", "phones"):
            if name in values:
                values[name] = _contacts(name, values[name] or [])
        return values

    @staticmethod
    def _merge(entity: str, record: dict[str, Any], values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if name == "custom_fields":
                for key, item in (value or {}).items():
                    if item is None:
                        record["custom_fields"].pop(key, None)
                    else:
                        record["custom_fields"][key] = item
            else:
                record[name] = value
        if entity == "persons":
            first, _, last = str(record.get("name") or "").partition(" ")
            record["first_name"], record["last_name"] = first, last


def _contacts(name: str, items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise invalid(f"{name}[{index}] must be an object with a string 'value'")
        label = item.get("label")
        out.append({"value": item["value"], "primary": bool(item.get("primary", index == 0)),
                    "label": label if isinstance(label, str) else "work"})
    return out


def search_texts(entity: str, record: Mapping[str, Any], fields: tuple[str, ...], custom: Mapping[str, FieldDef]
                 ) -> list[str]:
    """The values of ``record`` that a search over ``fields`` looks at."""
    texts: list[str] = []
    for name in fields:
        if name in ("name", "title") and record.get(name):
            texts.append(str(record[name]))
        elif name in ("email", "phone"):
            texts.extend(item["value"] for item in record.get(name + "s") or [])
        elif name == "address" and isinstance(record.get("address"), dict):
            texts.append(str(record["address"].get("value") or ""))
        elif name == "custom_fields":
            for key, value in record["custom_fields"].items():
                definition = custom.get(key)
                if definition is not None and definition.field_type in SEARCHABLE:
                    texts.append(str(value.get("value") if isinstance(value, dict) else value))
    return texts


def search_item(entity: str, record: Mapping[str, Any], score: float, store: PipedriveStore) -> dict[str, Any]:
    """One result of ``GET /api/v2/{entity}/search`` as the spec's example shows it (linked records by
    id and name, ``null`` when there is none, as in the example's ``organization: null``)."""
    owner = {"id": record["owner_id"]}
    organization = store.link("organizations", record.get("org_id"), "name", address=None)
    if entity == "persons":
        item = {"id": record["id"], "type": "person", "name": record["name"],
                "phones": [p["value"] for p in record["phones"]], "emails": [e["value"] for e in record["emails"]],
                "visible_to": record["visible_to"], "owner": owner, "organization": organization}
    elif entity == "organizations":
        address = record["address"].get("value") if isinstance(record["address"], dict) else None
        item = {"id": record["id"], "type": "organization", "name": record["name"], "address": address,
                "visible_to": record["visible_to"], "owner": owner}
    else:
        stage = record["stage_id"]
        item = {"id": record["id"], "type": "deal", "title": record["title"], "value": record["value"],
                "currency": record["currency"], "status": record["status"], "visible_to": record["visible_to"],
                "owner": owner, "stage": {"id": stage, "name": STAGES.get(stage, f"Stage {stage}")},
                "person": store.link("persons", record["person_id"], "name"), "organization": organization}
    item["custom_fields"] = [str(v) for v in record["custom_fields"].values()]
    item["notes"] = []
    return {"result_score": score, "item": item}
