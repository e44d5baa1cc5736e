"""sObject Collections: create, update, upsert by external id, delete and retrieve, 200 records each.

Results come back in request order, one per record: ``{id, success, errors[], created}`` (``created``
on upserts). With ``allOrNone`` every change of the request is undone when one record fails, the
failing records keep their errors and the others report ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.salesforce.schema import SalesforceField, SObject, normalize_id, parse
from dbt_activate.testing.salesforce.store import RecordError, error, now_iso

if TYPE_CHECKING:
    from dbt_activate.testing.salesforce.emulator import SalesforceEmulator

MAX_RECORDS = 200
ROLLED_BACK = error("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and "
                    "the request was using AllOrNone header")
# One record's work: raises RecordError, else returns (record id, created).
Step = Callable[[], "tuple[str, bool]"]


class SalesforceCollections:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emu = emulator

    # -- routes ----------------------------------------------------------------------------------

    def create(self, req: Request) -> Response:
        body, parsed = self._records(req)
        steps = [self._step(s, f, None) if rid is None else _fails("INVALID_FIELD", "cannot specify Id in an insert "
                                                                   "call", ["Id"]) for s, f, rid in parsed]
        return self._run(req, steps, bool(body.get("allOrNone")), upsert=False)

    def update(self, req: Request) -> Response:
        body, parsed = self._records(req)
        steps = [self._step(s, f, rid) if rid else _fails("MISSING_ARGUMENT", "Id not specified in an update call")
                 for s, f, rid in parsed]
        return self._run(req, steps, bool(body.get("allOrNone")), upsert=False)

    def upsert(self, req: Request) -> Response:
        if float(req.params["version"]) < 46.0:
            raise ApiError(404, "The requested resource does not exist", "NOT_FOUND")
        sobject = self.emu.sobject(req.params["sobject"])
        key = sobject.field(req.params["field"])
        if key is None or not key.external_id:
            raise ApiError(404, f"Provided external ID field does not exist or is not accessible: "
                           f"{req.params['field']}", "NOT_FOUND")
        body, parsed = self._records(req, sobject)
        counts = Counter(str(f.get(key.name)).lower() for _, f, _ in parsed if f.get(key.name) not in (None, ""))
        steps: list[Step] = []
        for _, fields, rid in parsed:
            value = fields.get(key.name)
            if rid is not None:
                steps.append(_fails("INVALID_FIELD", f"cannot specify Id in an upsert by {key.name} call", ["Id"]))
            elif value in (None, ""):
                steps.append(_fails("MISSING_ARGUMENT", f"{key.name} not specified", [key.name]))
            elif counts[str(value).lower()] > 1:
                steps.append(_fails("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}", [key.name]))
            else:
                steps.append(self._upsert_step(sobject, fields, key.name, value))
        return self._run(req, steps, bool(body.get("allOrNone")), upsert=True)

    def delete(self, req: Request) -> Response:
        ids = [i for i in (req.arg("ids") or "").split(",") if i]
        if not ids:
            raise ApiError(400, "ids parameter is required", "MISSING_ARGUMENT")
        if len(ids) > MAX_RECORDS:
            raise ApiError(400, f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
                           "EXCEEDED_ID_LIMIT")
        self.emu.count_records(len(ids))
        return self._run(req, [self._delete_step(i) for i in ids], req.arg("allOrNone") == "true", upsert=False)

    def retrieve(self, req: Request) -> Response:
        sobject = self.emu.sobject(req.params["sobject"])
        source: dict[str, Any] = req.json_object() if req.method == "POST" else {
            "ids": (req.arg("ids") or "").split(","), "fields": (req.arg("fields") or "").split(",")}
        names = [self._field(sobject, n).name for n in source.get("fields") or [] if n]
        if not names:
            raise ApiError(400, "fields parameter is required", "MISSING_ARGUMENT")
        out: list[dict[str, Any] | None] = []
        with self.emu.lock:
            for raw in source.get("ids") or []:
                rid = normalize_id(str(raw))
                record = self.emu.store.of(sobject).get(rid) if rid else None
                out.append(None if record is None else {"attributes": self.emu.attributes(sobject, record["Id"], req),
                                                        **{n: self.emu.store.view(record).get(n) for n in names}})
        return Response.json(out)

    # -- the work --------------------------------------------------------------------------------

    def _run(self, req: Request, steps: list[Step], all_or_none: bool, upsert: bool) -> Response:
        results: list[dict[str, Any]] = []
        with self.emu.lock:
            self.emu.store.begin()
            for index, step in enumerate(steps):
                try:
                    if req.fails(index, len(steps)):
                        raise RecordError([error("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this "
                                                 "record or 1 records (injected fault)")])
                    record_id, created = step()
                    result: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
                    if upsert:
                        result["created"] = created
                except RecordError as refused:
                    result = {"id": None, "success": False, "errors": refused.errors}
                    if upsert:
                        result["created"] = False
                results.append(result)
            if all_or_none and not all(r["success"] for r in results):
                self.emu.store.rollback()
                for result in results:
                    if result["success"]:
                        result.update(id=None, success=False, errors=[ROLLED_BACK], **({"created": False} if upsert
                                                                                         else {}))
            else:
                self.emu.store.commit()
        return Response.json(results)

    def _records(self, req: Request, sobject: SObject | None = None
                 ) -> tuple[dict[str, Any], list[tuple[SObject, dict[str, Any], str | None]]]:
        """Parse every record first: an unknown field or unreadable value fails the whole request."""
        body = req.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ApiError(400, "Json Deserialization failed on token 'records': expected an array of sObjects",
                           "JSON_PARSER_ERROR")
        if len(records) > MAX_RECORDS:
            raise ApiError(400, f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
                           "EXCEEDED_ID_LIMIT")
        self.emu.count_records(len(records))
        return body, [self._record(raw, sobject) for raw in records]

    def _record(self, raw: dict[str, Any], expected: SObject | None) -> tuple[SObject, dict[str, Any], str | None]:
        attributes = raw.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not type_name:
            raise ApiError(400, "No SObject Type defined in the attributes of a record", "INVALID_TYPE")
        sobject = self.emu.sobject(str(type_name))
        if expected is not None and sobject is not expected:
            raise ApiError(400, f"The record type {type_name} does not match the URL's {expected.name}",
                           "INVALID_TYPE")
        fields: dict[str, Any] = {}
        record_id: str | None = None
        for name, value in raw.items():
            if name == "attributes":
                continue
            f = self._field(sobject, name)
            if f.name == "Id":
                record_id = normalize_id(str(value)) or str(value)
                continue
            try:
                fields[f.name] = parse(f, value)
            except (ValueError, TypeError) as exc:
                raise ApiError(400, f"Cannot deserialize instance of {f.type} from VALUE_STRING value {value} or "
                               "request may be missing a required field", "JSON_PARSER_ERROR") from exc
        return sobject, fields, record_id

    def _field(self, sobject: SObject, name: str) -> SalesforceField:
        found = sobject.field(name)
        if found is None:
            raise ApiError(400, f"No such column '{name}' on sobject of type {sobject.name}", "INVALID_FIELD")
        return found

    def _step(self, sobject: SObject, fields: dict[str, Any], record_id: str | None) -> Step:
        return lambda: (self.emu.store.save(sobject, fields, record_id, now_iso()), record_id is None)

    def _upsert_step(self, sobject: SObject, fields: dict[str, Any], key: str, value: Any) -> Step:
        def step() -> tuple[str, bool]:
            existing = self.emu.store.find_by(sobject, key, value)
            return self.emu.store.save(sobject, fields, existing, now_iso()), existing is None
        return step

    def _delete_step(self, raw: str) -> Step:
        def step() -> tuple[str, bool]:
            rid = normalize_id(raw)
            if rid is None:
                raise RecordError([error("MALFORMED_ID", f"malformed id {raw}")])
            found = self.emu.store.locate(rid)
            if found is None:
                raise RecordError([error("ENTITY_IS_DELETED", "entity is deleted")])
            self.emu.store.delete(self.emu.sobject(found[0]), rid)
            return rid, False
        return step


def _fails(code: str, message: str, fields: list[str] | None = None) -> Step:
    def step() -> tuple[str, bool]:
        raise RecordError([error(code, message, fields)])
    return step
