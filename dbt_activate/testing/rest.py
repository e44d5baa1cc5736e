"""``RestEmulator``: a small, typical JSON REST API for the ``http`` destination's tests and demos.

No vendor's contract: it is the shape most record APIs share, so one ``http`` configuration of
each kind (batch endpoints with per-record errors, or one request per record) can be tested
against it. Records live in named collections, keyed by ``id_field`` (default ``id``)::

    POST   /v1/{collection}/batch/upsert   {"records": [...]}   create or merge by id
    POST   /v1/{collection}/batch/create   {"records": [...]}   new ids only; others in "skipped"
    POST   /v1/{collection}/batch/update   {"records": [...]}   merge known ids; others in "skipped"
    POST   /v1/{collection}/batch/delete   {"ids": [...]}       unknown ids are ignored
    POST   /v1/{collection}/events         {"events": [...]}    appended as they come
      -> 200 {"results": [{"id", "index", "status"}], "errors": [{"id", "index", "code", "message"}],
              "skipped": [{"id", "index", "message"}]}
    PUT    /v1/{collection}/{id}     replace (create)      200/201 the record; 422 {"message", "code"}
    PATCH  /v1/{collection}/{id}     merge; 404 if unknown
    DELETE /v1/{collection}/{id}     204; 404 if unknown

A batch of more than ``max_batch`` records is a 400. A record whose string field is longer than
``max_lengths[field]``, or whose id is missing, is refused (in ``errors`` for batches, 422 alone).
Bearer-token authentication (401), rate limits (429 with ``Retry-After``), latency and injected
faults come from the emulator base (``server.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

_COLLECTION = r"/v1/(?P<collection>[A-Za-z0-9_-]+)"


class RestEmulator(Emulator):
    vendor = "rest"

    def __init__(self, *, id_field: str = "id", max_batch: int = 100,
                 max_lengths: Mapping[str, int] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.id_field = id_field
        self.max_batch = max_batch
        self.max_lengths = dict(max_lengths or {})
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.event_log: dict[str, list[dict[str, Any]]] = {}
        self.route("POST", _COLLECTION + r"/batch/(?P<action>upsert|create|update|delete)", self._batch, writes=True)
        self.route("POST", _COLLECTION + r"/events", self._events, writes=True)
        self.route("PUT", _COLLECTION + r"/(?P<id>[^/]+)", self._put, writes=True)
        self.route("PATCH", _COLLECTION + r"/(?P<id>[^/]+)", self._patch, writes=True)
        self.route("DELETE", _COLLECTION + r"/(?P<id>[^/]+)", self._delete, writes=True)

    # -- inspection -----------------------------------------------------------------------------

    def records(self, collection: str) -> dict[str, dict[str, Any]]:
        """Stored records of ``collection`` by id (as a string), copied."""
        with self.lock:
            return copy.deepcopy(self.collections.get(collection, {}))

    def events(self, collection: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.event_log.get(collection, []))

    def add_records(self, collection: str, records: list[dict[str, Any]]) -> None:
        with self.lock:
            store = self.collections.setdefault(collection, {})
            for record in records:
                store[str(record[self.id_field])] = dict(record)

    # -- handlers -------------------------------------------------------------------------------

    def _problem(self, record: Any) -> str | None:
        if not isinstance(record, dict):
            return "a record must be a JSON object"
        if record.get(self.id_field) in (None, ""):
            return f"{self.id_field} is required"
        for field, limit in self.max_lengths.items():
            value = record.get(field)
            if isinstance(value, str) and len(value) > limit:
                return f"{field}: longer than {limit} characters"
        return None

    def _items(self, request: Request, name: str) -> list[Any]:
        items = request.json_object().get(name)
        if not isinstance(items, list):
            raise ApiError(400, f"body must be an object with a {name!r} list", "INVALID_PAYLOAD")
        if len(items) > self.max_batch:
            raise ApiError(400, f"at most {self.max_batch} {name} per request, got {len(items)}", "TOO_MANY")
        self.count_records(len(items))
        return items

    def _batch(self, request: Request) -> Response:
        collection, action = request.params["collection"], request.params["action"]
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        items = self._items(request, "ids" if action == "delete" else "records")
        with self.lock:
            store = self.collections.setdefault(collection, {})
            for index, item in enumerate(items):
                if action == "delete":
                    store.pop(str(item), None)
                    results.append({"id": item, "index": index, "status": "deleted"})
                    continue
                problem = self._problem(item) or ("injected failure" if request.fails(index, len(items)) else None)
                if problem is not None:
                    item_id = item.get(self.id_field) if isinstance(item, dict) else None
                    errors.append({"id": item_id, "index": index, "code": "INVALID_RECORD", "message": problem})
                    continue
                key = str(item[self.id_field])
                if action == "create" and key in store:
                    skipped.append({"id": item[self.id_field], "index": index, "message": "already exists"})
                elif action == "update" and key not in store:
                    skipped.append({"id": item[self.id_field], "index": index, "message": "not found"})
                else:
                    status = "updated" if key in store else "created"
                    store[key] = {**store.get(key, {}), **item}
                    results.append({"id": item[self.id_field], "index": index, "status": status})
        return Response.json({"results": results, "errors": errors, "skipped": skipped})

    def _events(self, request: Request) -> Response:
        collection = request.params["collection"]
        items = self._items(request, "events")
        errors = [{"index": i, "code": "INVALID_RECORD", "message": "an event must be a JSON object"}
                  for i, item in enumerate(items) if not isinstance(item, dict)]
        with self.lock:
            self.event_log.setdefault(collection, []).extend(i for i in items if isinstance(i, dict))
        return Response.json({"results": [], "errors": errors, "skipped": []})

    def _one(self, request: Request) -> dict[str, Any]:
        self.count_records(1)
        record = request.json_object()
        record.setdefault(self.id_field, request.params["id"])
        problem = self._problem(record)
        if problem is not None:
            raise ApiError(422, problem, "INVALID_RECORD")
        if str(record[self.id_field]) != request.params["id"]:
            raise ApiError(422, f"{self.id_field} in the body does not match the path", "INVALID_RECORD")
        return record

    def _put(self, request: Request) -> Response:
        record = self._one(request)
        with self.lock:
            store = self.collections.setdefault(request.params["collection"], {})
            created = request.params["id"] not in store
            store[request.params["id"]] = record
        return Response.json(record, 201 if created else 200)

    def _patch(self, request: Request) -> Response:
        record = self._one(request)
        with self.lock:
            store = self.collections.setdefault(request.params["collection"], {})
            if request.params["id"] not in store:
                raise ApiError(404, f"no record with {self.id_field} {request.params['id']}", "NOT_FOUND")
            store[request.params["id"]].update(record)
            return Response.json(store[request.params["id"]])

    def _delete(self, request: Request) -> Response:
        self.count_records(1)
        with self.lock:
            store = self.collections.setdefault(request.params["collection"], {})
            if store.pop(request.params["id"], None) is None:
                raise ApiError(404, f"no record with {self.id_field} {request.params['id']}", "NOT_FOUND")
        return Response.empty(204)
