"""Emulator of the Zendesk Support API: users and organizations through bulk jobs.

Follows ``shared/contracts/SUMMARY.md`` §6 (Zendesk) and the vendor pages it cites:
developer.zendesk.com/api-reference/ticketing/users/users/#create-or-update-many-users,
developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/ (job ``status`` one
of queued, working, failed, completed; ``results`` per item), the developer-advocacy answer on
support.zendesk.com (community post 4408861015066: results in request order, statuses only
``Created``/``Updated``/``Failed`` with ``error`` and ``details``) and
developer.zendesk.com/api-reference/introduction/rate-limits (per-minute account limit by plan,
Enterprise 700 = ``rate_limit=True``; headers ``X-Rate-Limit``/``X-Rate-Limit-Remaining``; 429 with
``Retry-After`` in seconds).

Endpoints, as the reference pages list them (developer.zendesk.com/api-reference/ticketing/users/users/
and …/ticketing/organizations/organizations/, read in their 2025 form):

- ``POST /api/v2/users/create_or_update_many``: at most 100 users, matched by ``id``,
  ``external_id`` or ``email``. Users only: the organizations page has no such endpoint, so
  ``POST /api/v2/organizations/create_or_update_many`` answers Zendesk's 404 for an unknown route.
- ``POST /api/v2/{users|organizations}/create_many``: at most 100 new records ("Accepts an array of
  up to 100 organization objects"); an item whose external id or email is taken fails.
- ``POST /api/v2/{users|organizations}/create_or_update``: ONE record, ``{"organization": {...}}``,
  matched by ``id`` or ``external_id`` ("Name is not available as a matching criteria"); answers
  ``201`` when it created, ``200`` when it updated, with the record. Not a job.
- ``PUT …/update_many``: the batch form ``{"users": [{"id"|"external_id": …, …}]}`` (the pages'
  samples: users ``{"external_id": "123", "verified": true}``, organizations ``{"external_id": "2",
  "notes": …}``) and the bulk form ``?ids=|external_ids=`` with one ``{"user": {...}}`` applied to
  each.
- ``DELETE …/destroy_many?ids=|external_ids=`` (at most 100).
- ``GET …/show_many?ids=|external_ids=`` (at most 100): ``{"organizations": [...], "count": n}``.
- ``GET /api/v2/job_statuses/{id}``; ``GET /api/v2/{users|organizations}/{id}``.

An update that gives a record an external_id or email another record has fails for that item ("External: …
has already been taken", "Email: … is already being used by another user"), changing neither record.

Bulk writes answer ``{"job_status": {...}}``. Paths may end in ``.json``. Auth: Basic
``{email}/token:{api_token}`` or an OAuth Bearer token.

The work of a job is done when it is queued; the job reports ``queued`` in the answer to the bulk
request and in the first ``job_polls`` reads of its status (default 1), then ``completed`` with its
results, so a client must poll.
The result shape of create/update/destroy jobs and the ``RecordNotFound`` error of an unknown item
are assumptions [R].

Not emulated: tickets, identities, user merges, search and incremental exports, the limit of 30
concurrent background jobs [R], High Volume add-on headers, Zendesk's 10,000-page list cap.
"""

from __future__ import annotations

import base64
import itertools
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from dbt_activate.testing.limits import Decision, RateLimit
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator
from dbt_activate.testing.zendesk.store import ItemFailed, ZendeskStore

KINDS = r"(?P<kind>users|organizations)"
JSON = r"(?:\.json)?"
MAX_ITEMS = 100


class ZendeskEmulator(Emulator):
    """A Zendesk account. ``email``/``token``: the API token credential; ``user_fields`` and
    ``organization_fields``: custom field key -> type (text, integer, decimal, checkbox, date, ...)."""

    vendor = "zendesk"
    default_rate_limit = RateLimit(700, 60.0)

    def __init__(
        self,
        token: str | None = "test-token",
        *,
        email: str = "agent@example.com",
        oauth_token: str | None = None,
        user_fields: Mapping[str, str] | None = None,
        organization_fields: Mapping[str, str] | None = None,
        job_polls: int = 1,
        **knobs: Any,
    ) -> None:
        super().__init__(token=token, **knobs)
        self.email, self.oauth_token = email, oauth_token
        self.job_polls = job_polls
        self.store = ZendeskStore(user_fields or {}, organization_fields or {})
        self.jobs: dict[str, dict[str, Any]] = {}
        self._job_ids = itertools.count(1)
        self._jobs_lock = threading.Lock()
        # Users only: Zendesk has no organizations/create_or_update_many (an unknown route: 404).
        self.route("POST", rf"/api/v2/(?P<kind>users)/create_or_update_many{JSON}", self._create_or_update_many,
                   writes=True)
        self.route("POST", rf"/api/v2/{KINDS}/create_many{JSON}", self._create_many, writes=True)
        self.route("POST", rf"/api/v2/{KINDS}/create_or_update{JSON}", self._create_or_update, writes=True)
        self.route("GET", rf"/api/v2/{KINDS}/show_many{JSON}", self._show_many)
        self.route("PUT", rf"/api/v2/{KINDS}/update_many{JSON}", self._update_many, writes=True)
        self.route("DELETE", rf"/api/v2/{KINDS}/destroy_many{JSON}", self._destroy_many, writes=True)
        self.route("GET", rf"/api/v2/job_statuses/(?P<id>[0-9a-f]+){JSON}", self._job_status)
        self.route("GET", rf"/api/v2/{KINDS}/(?P<id>\d+){JSON}", self._show)

    # -- accessors for tests -------------------------------------------------------------------

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Users or organizations as the API shows them, in id order."""
        with self.lock:
            return [_copy(r) for _, r in sorted(self.store.records[_kind(kind)].items())]

    def add_records(self, kind: str, items: Iterable[Mapping[str, Any]]) -> list[int]:
        """Seed records without HTTP (validated like API items); returns their ids."""
        with self.lock:
            return [self.store.create(_kind(kind), dict(item))["id"] for item in items]

    def clear(self) -> None:
        with self.lock:
            self.store.clear()

    # -- bulk jobs -------------------------------------------------------------------------------

    def _items(self, req: Request) -> tuple[str, list[Any]]:
        kind = req.params["kind"]
        items = req.json_object().get(kind)
        if not isinstance(items, list) or not items:
            raise ApiError(400, f"{kind} must be a non-empty array", "InvalidValue")
        if len(items) > MAX_ITEMS:
            raise ApiError(400, f"Too many {kind}: at most {MAX_ITEMS} per request, got {len(items)}", "TooManyValues")
        self.count_records(len(items))
        return kind, items

    def _create_or_update_many(self, req: Request) -> Response:
        kind, items = self._items(req)
        results: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(items):
                results.append(self._one(req, index, len(items), lambda i=item: self.store.upsert(kind, i)))
        return self._queue(req, f"bulk_create_or_update_{kind}", results)

    def _create_many(self, req: Request) -> Response:
        kind, items = self._items(req)
        results: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(items):
                results.append(self._one(req, index, len(items), lambda i=item: self._create(kind, i)))
        return self._queue(req, f"bulk_create_{kind}", results)

    def _create(self, kind: str, item: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(item, dict):
            raise ItemFailed("InvalidValue", "each item must be a JSON object")
        return "Created", self.store.create(kind, item)

    def _create_or_update(self, req: Request) -> Response:
        """One record, at once (no job): 201 with it when created, 200 when updated."""
        kind, singular = req.params["kind"], req.params["kind"][:-1]
        item = req.json_object().get(singular)
        if not isinstance(item, dict):
            raise ApiError(400, f"{singular} must be an object", "InvalidValue")
        self.count_records(1)
        with self.lock:
            # Matched by id or external id only ("Name is not available as a matching criteria").
            found = self.store.find(kind, item, by_email=kind == "users")
            try:
                record = self.store.create(kind, item) if found is None else self.store.update(kind, found, item)
            except ItemFailed as exc:
                raise ApiError(422, str(exc), "RecordInvalid") from None
            return Response.json({singular: _copy(record)}, 201 if found is None else 200)

    def _show_many(self, req: Request) -> Response:
        kind = req.params["kind"]
        wanted = self._named_by_query(req)
        with self.lock:
            found = [_copy(r) for r in (self.store.find(kind, item, by_email=False) for item in wanted) if r]
        return Response.json({kind: found, "next_page": None, "previous_page": None, "count": len(found)})

    def _named_by_query(self, req: Request) -> list[dict[str, Any]]:
        """``?ids=`` or ``?external_ids=`` (comma-separated, 1 to 100) as items naming records."""
        wanted: list[dict[str, Any]] = []
        for value in (v for v in (req.arg("ids") or "").split(",") if v.strip()):
            if not value.strip().isdigit():
                raise ApiError(400, f"ids: {value!r} is not an id", "InvalidValue")
            wanted.append({"id": int(value)})
        wanted.extend({"external_id": v} for v in (req.arg("external_ids") or "").split(",") if v.strip())
        if not wanted or len(wanted) > MAX_ITEMS:
            raise ApiError(400, f"give 1 to {MAX_ITEMS} ids or external_ids", "InvalidValue")
        return wanted

    def _update_many(self, req: Request) -> Response:
        if req.arg("ids") or req.arg("external_ids"):
            return self._bulk_update(req)
        kind, items = self._items(req)
        results: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(items):
                results.append(self._one(req, index, len(items), lambda i=item: self._update(kind, i)))
        return self._queue(req, f"bulk_update_{kind}", results)

    def _bulk_update(self, req: Request) -> Response:
        """``?ids=|external_ids=`` with one ``{"user": {...}}``: the same change to each record named."""
        kind, singular = req.params["kind"], req.params["kind"][:-1]
        change = req.json_object().get(singular)
        if not isinstance(change, dict):
            raise ApiError(400, f"{singular} must be an object", "InvalidValue")
        wanted = self._named_by_query(req)
        self.count_records(len(wanted))
        fields = {k: v for k, v in change.items() if k not in ("id", "external_id")}
        results: list[dict[str, Any]] = []
        with self.lock:
            for index, named in enumerate(wanted):
                results.append(self._one(req, index, len(wanted), lambda n=named: self._update(kind, {**fields, **n})))
        return self._queue(req, f"bulk_update_{kind}", results)

    def _update(self, kind: str, item: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(item, dict) or (item.get("id") is None and item.get("external_id") in (None, "")):
            raise ItemFailed("InvalidValue", "each item needs an id or an external_id")
        found = self.store.find(kind, item, by_email=False)
        if found is None:
            raise ItemFailed("RecordNotFound", f"no {kind[:-1]} with {_named(item)}")
        return "Updated", self.store.update(kind, found, item)

    def _destroy_many(self, req: Request) -> Response:
        kind = req.params["kind"]
        wanted = self._named_by_query(req)
        self.count_records(len(wanted))
        results: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(wanted):
                results.append(self._one(req, index, len(wanted), lambda i=item: self._destroy(kind, i)))
        return self._queue(req, f"bulk_delete_{kind}", results)

    def _destroy(self, kind: str, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        found = self.store.find(kind, item, by_email=False)
        if found is None:
            raise ItemFailed("RecordNotFound", f"no {kind[:-1]} with {_named(item)}")
        self.store.delete(kind, [found["id"]])
        return "Deleted", found

    def _one(self, req: Request, index: int, total: int, apply: Any) -> dict[str, Any]:
        if req.fails(index, total):
            return {"index": index, "status": "Failed", "error": "InjectedFault",
                    "details": "Injected partial failure (emulator fault)"}
        try:
            status, record = apply()
        except ItemFailed as exc:
            return {"index": index, "status": "Failed", "error": exc.error, "details": str(exc)}
        result = {"index": index, "id": record["id"], "status": status}
        if record.get("email"):
            result["email"] = record["email"]
        if record.get("external_id") is not None:
            result["external_id"] = record["external_id"]
        return result

    def _queue(self, req: Request, job_type: str, results: list[dict[str, Any]]) -> Response:
        with self._jobs_lock:
            job_id = f"{next(self._job_ids):032x}"
            self.jobs[job_id] = {"id": job_id, "job_type": job_type, "total": len(results), "results": results,
                                 "reads": 0}
        return Response.json({"job_status": self._view(self.jobs[job_id], req)})

    def _job_status(self, req: Request) -> Response:
        with self._jobs_lock:
            job = self.jobs.get(req.params["id"])
            if job is None:
                raise ApiError(404, "Not found", "RecordNotFound")
            job["reads"] += 1
            return Response.json({"job_status": self._view(job, req)})

    def _view(self, job: Mapping[str, Any], req: Request) -> dict[str, Any]:
        done = job["reads"] > self.job_polls  # the answer to the POST itself is always "queued"
        origin = f"http://{req.header('host') or self.host}"
        return {"id": job["id"], "url": f"{origin}/api/v2/job_statuses/{job['id']}.json", "job_type": job["job_type"],
                "total": job["total"], "progress": job["total"] if done else None,
                "status": "completed" if done else "queued", "message": "Completed at now" if done else None,
                "results": job["results"] if done else None}

    def _show(self, req: Request) -> Response:
        kind, singular = req.params["kind"], req.params["kind"][:-1]
        with self.lock:
            record = self.store.records[kind].get(int(req.params["id"]))
            if record is None:
                raise ApiError(404, "Not found", "RecordNotFound")
            return Response.json({singular: _copy(record)})

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if self.token is None:
            return None
        auth = request.header("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                given = ""
            if given == f"{self.email}/token:{self.token}":
                return None
        elif scheme.lower() == "bearer" and self.oauth_token is not None and value.strip() == self.oauth_token:
            return None
        return Response.json({"error": "Couldn't authenticate you"}, 401)

    def error_response(self, err: ApiError) -> Response:
        return Response.json({"error": err.code or "InvalidValue", "description": err.message, **err.extra}, err.status)

    def server_error(self, status: int) -> Response:
        return Response.json({"error": "ServiceUnavailable" if status == 503 else "InternalError",
                              "description": "Zendesk is temporarily unavailable"}, status)

    def not_found(self, method: str, path: str) -> Response:
        return Response.json({"error": "InvalidEndpoint", "description": "Not found"}, 404)

    def throttled_response(self, decision: Decision) -> Response:
        response = Response.json({"error": "APIRateLimitExceeded",
                                  "description": "Number of allowed API requests per minute exceeded"}, 429)
        response.headers["Retry-After"] = str(max(1, math.ceil(decision.reset)))
        response.headers.update(self.limit_headers(decision))
        return response

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        if decision.limit is None:
            return {}
        return {"X-Rate-Limit": str(decision.limit), "X-Rate-Limit-Remaining": str(decision.remaining)}


def _kind(name: str) -> str:
    if name not in ("users", "organizations"):
        raise KeyError(f"unknown Zendesk kind {name!r}; expected users or organizations")
    return name


def _copy(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in record.items()}


def _named(item: Mapping[str, Any]) -> str:
    return f"id {item['id']}" if item.get("id") is not None else f"external_id {item.get('external_id')!r}"
