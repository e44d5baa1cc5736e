"""Pipedrive field definitions (``/v1/personFields`` and friends) and custom-field value checks.

Custom fields are addressed by a 40-character hash key (v2 bodies: ``custom_fields: {key: value}``).
The emulator derives keys deterministically (sha1 of entity and name) so tests can compute them,
or use the key given. Value shapes follow the v2 spec: ``enum`` takes one option id, ``set`` a list
of option ids, ``date`` ``YYYY-MM-DD``, ``double`` a number, ``monetary`` a number or
``{value, currency}``; ``null`` clears.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from dbt_activate.testing.messages import ApiError, Request, Response

FIELD_TYPES = ("address", "date", "daterange", "double", "enum", "monetary", "org", "people", "phone", "set",
               "text", "time", "timerange", "user", "varchar", "varchar_auto", "visible_to")
SEARCHABLE = ("address", "varchar", "text", "varchar_auto", "double", "monetary", "phone")
ENTITY_FIELDS = {"persons": "personFields", "organizations": "organizationFields", "deals": "dealFields"}
STANDARD = {  # key -> (name, field_type) of the built-in fields each entity lists
    "persons": {"name": ("Name", "varchar"), "email": ("Email", "varchar"), "phone": ("Phone", "phone"),
                "org_id": ("Organization", "org"), "owner_id": ("Owner", "user"), "label_ids": ("Labels", "set"),
                "visible_to": ("Visible to", "visible_to")},
    "organizations": {"name": ("Name", "varchar"), "address": ("Address", "address"),
                      "owner_id": ("Owner", "user"), "label_ids": ("Labels", "set"),
                      "visible_to": ("Visible to", "visible_to")},
    "deals": {"title": ("Title", "varchar"), "value": ("Value", "monetary"), "currency": ("Currency", "varchar"),
              "person_id": ("Contact person", "people"), "org_id": ("Organization", "org"),
              "stage_id": ("Stage", "enum"), "status": ("Status", "enum"), "owner_id": ("Owner", "user"),
              "expected_close_date": ("Expected close date", "date")},
}
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")


@dataclass(frozen=True)
class PipedriveField:
    """A custom field. ``options`` are labels (``enum``/``set``); ids are assigned by the emulator."""

    name: str
    field_type: str = "varchar"
    options: tuple[str, ...] = ()
    key: str | None = None

    def __post_init__(self) -> None:
        if self.field_type not in FIELD_TYPES:
            allowed = ", ".join(FIELD_TYPES)
            raise ValueError(f"field {self.name}: field_type {self.field_type!r} is not one of {allowed}")


def field_key(entity: str, name: str) -> str:
    """The 40-character key the emulator gives custom field ``name`` of ``entity`` (``persons``, …)."""
    return hashlib.sha1(f"{entity}:{name}".encode()).hexdigest()


@dataclass(frozen=True)
class FieldDef:
    """A field as the fields endpoints list it (custom or built-in)."""

    id: int
    key: str
    name: str
    field_type: str
    options: tuple[tuple[int, str], ...]  # (id, label)
    custom: bool
    add_time: str

    def payload(self, order: int) -> dict[str, Any]:
        return {
            "id": self.id, "key": self.key, "name": self.name, "order_nr": order, "field_type": self.field_type,
            "add_time": self.add_time, "update_time": self.add_time, "last_updated_by_user_id": 1,
            "created_by_user_id": 1, "active_flag": True, "edit_flag": self.custom, "index_visible_flag": True,
            "details_visible_flag": True, "add_visible_flag": True, "important_flag": False,
            "bulk_edit_allowed": True, "searchable_flag": self.custom and self.field_type in SEARCHABLE,
            "filtering_allowed": True, "sortable_flag": True, "mandatory_flag": self.key in ("name", "title"),
            "options": [{"id": i, "label": label} for i, label in self.options] if self.options else None,
        }

    def check(self, value: Any) -> Any:
        """The value to store, or the 400 Pipedrive answers for a value of the wrong shape."""
        if value is None:
            return None
        kind, ok = self.field_type, True
        if kind in ("varchar", "varchar_auto", "text", "phone"):
            ok = isinstance(value, str)
        elif kind == "address":
            ok = isinstance(value, (str, dict))
        elif kind == "double":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind == "monetary":
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
                isinstance(value, dict) and isinstance(value.get("value"), (int, float)))
        elif kind == "date":
            ok = isinstance(value, str) and _is_date(value)
        elif kind == "time":
            ok = isinstance(value, str) and bool(_TIME.match(value))
        elif kind in ("user", "org", "people", "visible_to"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "enum":
            ok = value in {i for i, _ in self.options} and not isinstance(value, bool)
        elif kind == "set":
            ids = {i for i, _ in self.options}
            ok = isinstance(value, list) and all(v in ids and not isinstance(v, bool) for v in value)
        if not ok:
            raise ApiError(400, f"Invalid value for field '{self.name}' ({self.key}, {kind}): {value!r}",
                           "ERR_SCHEMA_VALIDATION_FAILED")
        return value


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def ok(data: Any, additional: dict[str, Any] | None = None) -> Response:
    """Pipedrive's success envelope."""
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    return Response.json(body)


class FieldRegistry:
    """The fields of each entity, built-in and custom, and the v1 ``/{entity}Fields`` endpoints."""

    def __init__(self, lock: threading.RLock, custom: Mapping[str, Iterable[PipedriveField]]) -> None:
        self._lock = lock
        self._ids = itertools.count(1)
        self._option_ids = itertools.count(100)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.defs: dict[str, dict[str, FieldDef]] = {
            entity: {key: FieldDef(next(self._ids), key, name, kind, (), False, stamp)
                     for key, (name, kind) in standard.items()}
            for entity, standard in STANDARD.items()
        }
        for entity, declared in custom.items():
            if entity not in STANDARD:
                raise ValueError(f"custom_fields: unknown entity {entity!r}; expected one of {sorted(STANDARD)}")
            for f in declared:
                self.add(entity, f)

    def add(self, entity: str, f: PipedriveField) -> FieldDef:
        options = tuple((next(self._option_ids), label) for label in f.options)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        definition = FieldDef(next(self._ids), f.key or field_key(entity, f.name), f.name, f.field_type, options,
                              True, stamp)
        self.defs[entity][definition.key] = definition
        return definition

    def key_of(self, entity: str, name: str) -> str:
        for definition in self.defs[entity].values():
            if definition.name == name:
                return definition.key
        raise KeyError(f"no {entity} field named {name!r}")

    def _entity(self, req: Request) -> str:
        return next(e for e, f in ENTITY_FIELDS.items() if f == req.params["fields"])

    def list_fields(self, req: Request) -> Response:
        start, limit = req.int_arg("start", 0), req.int_arg("limit", 100)
        with self._lock:
            defs = list(self.defs[self._entity(req)].values())
        page = [d.payload(order) for order, d in enumerate(defs[start:start + limit], start + 1)]
        more = start + limit < len(defs)
        return ok(page, {"pagination": {"start": start, "limit": limit, "more_items_in_collection": more}})

    def get_field(self, req: Request) -> Response:
        with self._lock:
            for order, definition in enumerate(self.defs[self._entity(req)].values(), 1):
                if definition.id == int(req.params["id"]):
                    return ok(definition.payload(order))
        raise ApiError(404, "Field not found", "NOT_FOUND")

    def add_field(self, req: Request) -> Response:
        body = req.json_object()
        entity = self._entity(req)
        try:
            declared = PipedriveField(str(body["name"]), str(body.get("field_type", "")),
                                      tuple(str(o.get("label")) for o in body.get("options") or []))
        except (KeyError, ValueError, AttributeError) as exc:
            raise ApiError(400, f"Invalid field definition: {exc}", "ERR_SCHEMA_VALIDATION_FAILED") from exc
        with self._lock:
            return ok(self.add(entity, declared).payload(len(self.defs[entity])))

    def delete_field(self, req: Request) -> Response:
        with self._lock:
            defs = self.defs[self._entity(req)]
            for key, definition in list(defs.items()):
                if definition.id == int(req.params["id"]) and definition.custom:
                    del defs[key]
                    return ok({"id": definition.id})
        raise ApiError(404, "Field not found", "NOT_FOUND")
