"""HubSpot batch endpoints: create, update, upsert, archive and read, up to 100 inputs each.

Upsert and update refuse a batch WHOLE when one input carries an invalid property value or a
unique value another record holds: nothing of the batch is written, and the answer names the
property and the value, not the input (no index, no ``context``):

- 400 ``{"status": "error", "message": "Property values were not valid: [{\"isValid\":false,
  \"message\":\"Email address name@domain.x is invalid\",\"error\":\"INVALID_EMAIL\",
  \"name\":\"email\"}]", "correlationId", "category": "VALIDATION_ERROR"}`` for the first input
  found invalid (Atlas-Authority/marketing-automation issue #174, a whole batchUpsert failed on one
  INVALID_EMAIL: https://github.com/Atlas-Authority/marketing-automation/issues/174; the message
  format also in https://community.hubspot.com/t5/APIs-Integrations/contacts-integration-invalid-e-mails/td-p/833439;
  RudderStack, https://github.com/rudderlabs/rudder-transformer/pull/3308: HubSpot "discards the
  entire batch");
- 409 for a conflict, in the body HubSpot sends since 2024 (HubSpot community, "Updated 409 Conflict
  responses", https://community.hubspot.com/t5/APIs-Integrations/Updated-409-Conflict-responses/m-p/951534):
  ``{"status": "error", "message": "Contact already exists. Existing ID: 2926551", "errors":
  [{"message": "A contact with email lee@xyz.co.uk already exists. Existing ID: 2926551", "in":
  "email"}], "correlationId", "category": "OBJECT_ALREADY_EXISTS", "error": "CONTACT_EXISTS"}``
  (``error`` for contacts only; the thread's ``identityProfile`` is left out). That batch upsert
  answers a 409 "for the entire batch" when one record conflicts: airbytehq/airbyte PR #76340,
  https://github.com/airbytehq/airbyte/pull/76340, after the HubSpot community thread "Contacts
  API Batch Upsert return 409 instead of 207".

A record that does not exist (``update``, or ``upsert`` by record id) stays a per-record
``OBJECT_NOT_FOUND`` in a 207 multi-status, as does an injected ``partial`` fault. ``create``
answers per record too (207): HubSpot's spec documents a 207 for it, and reports of whole-batch
create conflicts (HubSpot/hubspot-api-python issue #51) do not show the body; a conflict there is
the same ``OBJECT_ALREADY_EXISTS`` error. When every input of a create failed, the request fails
as a whole (400, or 409 when every failure is a conflict) with one error detail per input. Each
per-record error's ``context`` names the input: ``ids`` (the input's ``id``) and
``objectWriteTraceId`` when the input carried one (HubSpot's way to match create errors).

A write that gives a unique property (``email`` of contacts, a ``hasUniqueValue`` property) a value
another record holds, an update changing a contact's email included, is such a conflict: the whole
upsert/update batch gets the 409 above (per record in a create), as HubSpot answers
(github.com/stape-io/hubspot-tag/issues/7: "Error 409 when updating existing contacts";
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
CONFLICT = "OBJECT_ALREADY_EXISTS"  # the category of HubSpot's 409 since 2024 (the module's sources)
_NOUNS = {"contacts": "contact", "companies": "company", "deals": "deal"}


class _Rejected(Exception):
    def __init__(self, category: str, message: str, problems: list[Problem] | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.category, self.message, self.problems = category, message, problems or []
        self.details = details  # the error's ``errors[]`` when it is not a list of property problems


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
            checked = self._refuse_whole(obj, op, inputs, default_id_property) if op in ("update", "upsert") else {}
            for index, item in enumerate(inputs):
                try:
                    if req.fails(index, len(inputs)):
                        raise _Rejected("VALIDATION_ERROR", "Injected partial failure (emulator fault)")
                    result = apply(obj, item, item.get("idProperty") or default_id_property, checked.get(index))
                    if result is not None:
                        results.append(result)
                except _Rejected as rejected:
                    errors.append(_standard_error(rejected, item))
        if op == "archive":
            return Response.empty(204)
        return _batch_response(obj, results, errors, started, 201 if op == "create" else 200)

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
        return _batch_response(obj, results, errors, started, 200, all_failed_is_error=False)

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

    def _refuse_whole(self, obj: HubSpotObject, op: str, inputs: list[dict[str, Any]], default: str | None
                      ) -> dict[int, dict[str, str]]:
        """Refuse the batch (400/409, see the module) for its first invalid or conflicting input.

        Returns each input's checked property values by index, so they are not validated twice.
        """
        checked: dict[int, dict[str, str]] = {}
        claimed: dict[tuple[str, str], int] = {}  # unique values the batch itself sets, by input
        for index, item in enumerate(inputs):
            id_property = item.get("idProperty") or default
            props = item.get("properties") or {}
            if not isinstance(props, dict):
                raise ApiError(400, "Invalid input JSON: properties must be an object", "VALIDATION_ERROR")
            values, problems = normalize(obj, props)
            record = self.emu.store.find(obj, id_property, str(item["id"]))
            creates = record is None and op == "upsert" and id_property not in (None, "hs_object_id")
            unique = values
            if creates and not problems:
                assert id_property is not None
                key_values, problems = normalize(obj, {id_property: item["id"]})
                unique = {**values, **key_values}
            if problems:
                raise ApiError(400, _problems_message(problems), "VALIDATION_ERROR")
            checked[index] = values
            if record is None and not creates:
                continue  # OBJECT_NOT_FOUND: per record
            clash = self.emu.store.conflict(obj, unique, record.id if record is not None else None)
            for name in obj.unique_names:
                value = unique.get(name)
                if clash is None and value and claimed.setdefault((name, value), index) != index:
                    clash = (name, value, record.id if record is not None else "none yet")
            if clash is not None:
                raise _conflict(obj, *clash)
        return checked

    def _values(self, obj: HubSpotObject, item: Mapping[str, Any]) -> dict[str, str]:
        props = item.get("properties") or {}
        if not isinstance(props, dict):
            raise _Rejected("VALIDATION_ERROR", "properties must be an object")
        values, problems = normalize(obj, props)
        if problems:
            raise _Rejected("VALIDATION_ERROR", _problems_message(problems), problems)
        return values

    def _guard_unique(self, obj: HubSpotObject, values: Mapping[str, str], record_id: str | None) -> None:
        clash = self.emu.store.conflict(obj, values, record_id)
        if clash is not None:
            error = _conflict(obj, *clash)
            raise _Rejected(CONFLICT, error.message, details=error.extra["errors"])

    def _create(self, obj: HubSpotObject, item: Mapping[str, Any], _id_property: str | None,
                _checked: dict[str, str] | None) -> dict[str, Any]:
        values = self._values(obj, item)
        self._guard_unique(obj, values, None)
        return self.emu.store.create(obj, values, self._now).view()

    def _update(self, obj: HubSpotObject, item: Mapping[str, Any], id_property: str | None,
                checked: dict[str, str] | None) -> dict[str, Any]:
        record = self.emu.store.find(obj, id_property, str(item["id"]))
        if record is None:
            raise _Rejected("OBJECT_NOT_FOUND", f"Could not get some {obj.name.upper()} objects, they may be "
                            "deleted or not exist. Check that ids are valid.")
        values = self._values(obj, item) if checked is None else checked
        self._guard_unique(obj, values, record.id)
        self.emu.store.update(obj, record, values, self._now)
        return record.view()

    def _upsert(self, obj: HubSpotObject, item: Mapping[str, Any], id_property: str | None,
                checked: dict[str, str] | None) -> dict[str, Any]:
        values = self._values(obj, item) if checked is None else dict(checked)
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

    def _archive(self, obj: HubSpotObject, item: Mapping[str, Any], _id_property: str | None,
                 _checked: dict[str, str] | None) -> None:
        record = self.emu.store.find(obj, None, str(item.get("id", "")))
        if record is not None:  # HubSpot answers 204 for unknown ids too
            self.emu.store.archive(obj, record)


def _problems_message(problems: list[Problem]) -> str:
    details = [{"isValid": False, "message": p.message, "error": p.code, "name": p.name} for p in problems]
    return "Property values were not valid: " + json.dumps(details)


def _conflict(obj: HubSpotObject, name: str, value: str, owner: str) -> ApiError:
    """HubSpot's 409 (2024 shape) for a unique ``value`` of property ``name`` that record ``owner`` holds."""
    noun = _NOUNS.get(obj.name, "object")
    extra: dict[str, Any] = {"errors": [{"message": f"A {noun} with {name} {value} already exists. "
                                                    f"Existing ID: {owner}", "in": name}]}
    if obj.name == "contacts":
        extra["error"] = "CONTACT_EXISTS"
    return ApiError(409, f"{noun.capitalize()} already exists. Existing ID: {owner}", CONFLICT, **extra)


def _standard_error(rejected: _Rejected, item: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, list[str]] = {}
    if item.get("id") not in (None, ""):
        context["ids"] = [str(item["id"])]
    if item.get("objectWriteTraceId"):
        context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
    details = rejected.details or [{"message": p.message, "code": p.code, "in": p.name,
                                    "context": {"propertyName": [p.name]}} for p in rejected.problems]
    return {"status": "error", "category": rejected.category, "message": rejected.message, "context": context,
            "errors": details, "links": {}}


def _batch_response(obj: HubSpotObject, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str,
                    ok_status: int, all_failed_is_error: bool = True) -> Response:
    times = {"startedAt": started, "completedAt": now_iso()}
    if not errors:
        return Response.json({"status": "COMPLETE", "results": results, **times}, ok_status)
    if results or not all_failed_is_error:
        return Response.json({"status": "COMPLETE", "results": results, "numErrors": len(errors), "errors": errors,
                              **times}, 207)
    categories = {e["category"] for e in errors}
    category = categories.pop() if len(categories) == 1 else "VALIDATION_ERROR"
    details = [{"message": e["message"], "code": e["category"], "context": e["context"],
                "subCategory": (e["errors"][0].get("code") if e["errors"] else None),
                **({"in": e["errors"][0]["in"]} if e["errors"] and e["errors"][0].get("in") else {})}
               for e in errors]
    extra: dict[str, Any] = {"error": "CONTACT_EXISTS"} if category == CONFLICT and obj.name == "contacts" else {}
    raise ApiError(409 if category == CONFLICT else 400, errors[0]["message"], category, errors=details, **extra)
