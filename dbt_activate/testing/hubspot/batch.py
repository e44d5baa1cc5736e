"""HubSpot batch endpoints: create, update, upsert, archive and read, up to 100 inputs each.

Per-record failures come back as HubSpot's StandardError in a 207 multi-status; when every input
failed, the request fails as a whole (400, or 409 when every failure is a conflict) with one
error detail per input. Each error's ``context`` names the input: ``ids`` (the input's ``id``)
and ``objectWriteTraceId`` when the input carried one (HubSpot's way to match create errors).

A write that gives a unique property (``email`` of contacts, a ``hasUniqueValue`` property) a value
another record holds, an update changing a contact's email included, fails for that record with
CONFLICT "Contact already exists. Existing ID: <id>" (409 when it is the only input), as HubSpot
answers (github.com/stape-io/hubspot-tag/issues/7: "Error 409 when updating existing contacts";
github.com/HubSpot/hubspot-api-nodejs/issues/545); the two records are never merged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dbt_activate.testing.hubspot.schema import HubSpotObject, Problem, normalize
from dbt_activate.testing.hubspot.store import now_iso
from dbt_activate.testing.messages import ApiError, Request, Response

if TYPE_CHECKING:
    from dbt_activate.testing.hubspot.emulator import HubSpotEmulator

MAX_INPUTS = 100
MAX_READ_WITH_HISTORY = 50


class _Rejected(Exception):
    def __init__(self, category: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.category, self.message, self.problems = category, message, problems or []


class HubSpotBatch:
    def __init__(self, emulator: HubSpotEmulator) -> None:
        self.emu = emulator
        self._now = ""  # the batch's timestamp, shared by its records (set under the emulator lock)

    def _inputs(self, req: Request, limit: int = MAX_INPUTS) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        body = req.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise ApiError(400, "Invalid input JSON: expected an object with an `inputs` array", "VALIDATION_ERROR")
        if len(inputs) > limit:
            raise ApiError(400, f"Batch input limit of {limit} exceeded: received {len(inputs)} inputs",
                           "VALIDATION_ERROR", context={"maxInputs": [str(limit)]})
        return body, inputs

    def write(self, req: Request) -> Response:
        obj = self.emu.object_type(req.params["type"])
        op = req.params["op"]
        body, inputs = self._inputs(req)
        self.emu.count_records(len(inputs))
        default_id_property = req.arg("idProperty") or body.get("idProperty")
        if op in ("update", "upsert"):
            self._check_ids(obj, inputs, default_id_property)
        started = now_iso()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        apply = {"create": self._create, "update": self._update, "upsert": self._upsert, "archive": self._archive}[op]
        with self.emu.lock:
            self._now = started
            for index, item in enumerate(inputs):
                try:
                    if req.fails(index, len(inputs)):
                        raise _Rejected("VALIDATION_ERROR", "Injected partial failure (emulator fault)")
                    result = apply(obj, item, item.get("idProperty") or default_id_property)
                    if result is not None:
                        results.append(result)
                except _Rejected as rejected:
                    errors.append(_standard_error(rejected, item))
        if op == "archive":
            return Response.empty(204)
        return _batch_response(results, errors, started, 201 if op == "create" else 200)

    def read(self, req: Request) -> Response:
        obj = self.emu.object_type(req.params["type"])
        body, inputs = self._inputs(req)
        if body.get("propertiesWithHistory"):
            self._inputs(req, MAX_READ_WITH_HISTORY)
        names = self.emu.read_names(obj, body.get("properties"))
        id_property = req.arg("idProperty") or body.get("idProperty")
        started = now_iso()
        results, missing = [], []
        with self.emu.lock:
            for item in inputs:
                found = self.emu.store.find(obj, id_property, str(item.get("id", "")))
                if found is None:
                    missing.append(str(item.get("id", "")))
                else:
                    results.append(found.view(names))
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some "
                   f"{obj.name.upper()} objects, they may be deleted or not exist. Check that ids are valid.",
                   "context": {"ids": missing}, "errors": [], "links": {}}] if missing else []
        return _batch_response(results, errors, started, 200, all_failed_is_error=False)

    def _check_ids(self, obj: HubSpotObject, inputs: list[dict[str, Any]], default: str | None) -> None:
        """Request-level checks HubSpot makes before touching any record."""
        seen: set[tuple[str, str]] = set()
        for item in inputs:
            if item.get("id") in (None, ""):
                raise ApiError(400, "Invalid input JSON: every input needs an `id`", "VALIDATION_ERROR")
            id_property = item.get("idProperty") or default or "hs_object_id"
            prop = obj.by_name.get(id_property)
            if prop is None or not prop.unique:
                raise ApiError(400, f"Property {id_property!r} can not be used as an idProperty: it is not a "
                               "unique property", "VALIDATION_ERROR")
            key = (id_property, str(item["id"]).lower() if id_property == "email" else str(item["id"]))
            if key in seen:
                raise ApiError(400, f"Duplicate IDs found in batch input: [{item['id']}]. IDs must be unique",
                               "VALIDATION_ERROR")
            seen.add(key)

    def _values(self, obj: HubSpotObject, item: Mapping[str, Any]) -> dict[str, str]:
        props = item.get("properties") or {}
        if not isinstance(props, dict):
            raise _Rejected("VALIDATION_ERROR", "properties must be an object")
        values, problems = normalize(obj, props)
        if problems:
            raise _Rejected("VALIDATION_ERROR", _problems_message(problems), problems)
        return values

    def _guard_unique(self, obj: HubSpotObject, values: Mapping[str, str], record_id: str | None) -> None:
        owner = self.emu.store.conflict(obj, values, record_id)
        if owner is not None:
            raise _Rejected("CONFLICT", f"{obj.name.rstrip('s').capitalize()} already exists. Existing ID: {owner}")

    def _create(self, obj: HubSpotObject, item: Mapping[str, Any], _id_property: str | None) -> dict[str, Any]:
        values = self._values(obj, item)
        self._guard_unique(obj, values, None)
        return self.emu.store.create(obj, values, self._now).view()

    def _update(self, obj: HubSpotObject, item: Mapping[str, Any], id_property: str | None) -> dict[str, Any]:
        record = self.emu.store.find(obj, id_property, str(item["id"]))
        if record is None:
            raise _Rejected("OBJECT_NOT_FOUND", f"Could not get some {obj.name.upper()} objects, they may be "
                            "deleted or not exist. Check that ids are valid.")
        values = self._values(obj, item)
        self._guard_unique(obj, values, record.id)
        self.emu.store.update(obj, record, values, self._now)
        return record.view()

    def _upsert(self, obj: HubSpotObject, item: Mapping[str, Any], id_property: str | None) -> dict[str, Any]:
        values = self._values(obj, item)
        record = self.emu.store.find(obj, id_property, str(item["id"]))
        if record is not None:
            self._guard_unique(obj, values, record.id)
            self.emu.store.update(obj, record, values, self._now)
            return record.view(new=False)
        if id_property is None or id_property == "hs_object_id":
            raise _Rejected("OBJECT_NOT_FOUND", f"No {obj.name} record with id {item['id']}: upserts by record id "
                            "can only update")
        key_values, problems = normalize(obj, {id_property: item["id"]})
        if problems:
            raise _Rejected("VALIDATION_ERROR", _problems_message(problems), problems)
        values.update(key_values)
        self._guard_unique(obj, values, None)
        return self.emu.store.create(obj, values, self._now).view(new=True)

    def _archive(self, obj: HubSpotObject, item: Mapping[str, Any], _id_property: str | None) -> None:
        record = self.emu.store.find(obj, None, str(item.get("id", "")))
        if record is not None:  # HubSpot answers 204 for unknown ids too
            self.emu.store.archive(obj, record)


def _problems_message(problems: list[Problem]) -> str:
    details = [{"isValid": False, "message": p.message, "error": p.code, "name": p.name} for p in problems]
    return "Property values were not valid: " + json.dumps(details)


def _standard_error(rejected: _Rejected, item: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, list[str]] = {}
    if item.get("id") not in (None, ""):
        context["ids"] = [str(item["id"])]
    if item.get("objectWriteTraceId"):
        context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
    details = [{"message": p.message, "code": p.code, "in": p.name, "context": {"propertyName": [p.name]}}
               for p in rejected.problems]
    return {"status": "error", "category": rejected.category, "message": rejected.message, "context": context,
            "errors": details, "links": {}}


def _batch_response(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str, ok_status: int,
                    all_failed_is_error: bool = True) -> Response:
    times = {"startedAt": started, "completedAt": now_iso()}
    if not errors:
        return Response.json({"status": "COMPLETE", "results": results, **times}, ok_status)
    if results or not all_failed_is_error:
        return Response.json({"status": "COMPLETE", "results": results, "numErrors": len(errors), "errors": errors,
                              **times}, 207)
    categories = {e["category"] for e in errors}
    category = categories.pop() if len(categories) == 1 else "VALIDATION_ERROR"
    details = [{"message": e["message"], "code": e["category"], "context": e["context"],
                "subCategory": (e["errors"][0]["code"] if e["errors"] else None)} for e in errors]
    raise ApiError(409 if category == "CONFLICT" else 400, errors[0]["message"], category, errors=details)
