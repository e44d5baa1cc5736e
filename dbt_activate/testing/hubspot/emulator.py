"""Emulator of the HubSpot CRM v3 objects API (contacts, companies, deals, custom objects).

Follows the contract in ``shared/contracts/SUMMARY.md`` §1, itself from HubSpot's CRM v3 OpenAPI
documents (HubSpot/HubSpot-public-api-spec-collection, ``PublicApiSpecs/CRM/*/Rollouts/424/v3``,
snapshot 99893791; proprietary, read in place, not copied), the objects guide
(developers.hubspot.com/docs/api-reference/crm-objects-v3/guide), the usage guidelines
(developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines) and the timestamp FAQ.

Emulated: ``POST /crm/v3/objects/{objectType}/batch/{create|read|update|upsert|archive}`` (also
under the dated ``/crm/objects/2026-03/…`` paths), ``POST …/search``, ``GET …/{objectType}`` (list),
``GET …/{objectType}/{id}``, ``GET /crm/v3/properties/{objectType}[/{name}]``; at most 100 inputs
per batch; ``idProperty`` per input or as a query parameter; upsert and update refused whole (400
``VALIDATION_ERROR`` naming the property and value, 409 ``OBJECT_ALREADY_EXISTS``) for one invalid
or conflicting input, as HubSpot does (sources in ``batch.py``); other per-record errors as a 207 with
``errors[]`` of StandardError (``context.ids`` holds the input's ``id``, ``context.objectWriteTraceId``
its trace id), 400 (409 for conflicts) when every input failed; the rolling 10-second window
(``rate_limit=True`` = 100/10 s) and the daily limit with ``X-HubSpot-RateLimit-*`` headers and the
429 body with ``policyName``; search exempt from the 10-second window (its own ``search_rate_limit``).

Associations: the v4 batch read, associate/default and archive endpoints (``associations.py``).

Not emulated: association labels, property history, single-record create/update/delete endpoints,
GDPR delete, merge, pipelines (``dealstage`` is a plain enumeration), lifecycle-stage ordering,
the 10,000-result search cap, search indexing delay, OAuth, ``hapikey``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dbt_activate.testing.hubspot.associations import HubSpotAssociations
from dbt_activate.testing.hubspot.batch import HubSpotBatch
from dbt_activate.testing.hubspot.schema import STANDARD_OBJECTS, HubSpotObject, HubSpotProperty
from dbt_activate.testing.hubspot.store import HubSpotRecord, HubSpotStore, matches
from dbt_activate.testing.limits import Decision, RateLimit, RateLimitSpec
from dbt_activate.testing.messages import ApiError, Request, Response, as_int
from dbt_activate.testing.server import Emulator

_OBJECTS = r"/crm/(?:v3/objects|objects/\d{4}-\d{2})/(?P<type>[^/]+)"
DEFAULT_READ = {"contacts": ("email", "firstname", "lastname"), "companies": ("name", "domain"),
                "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage")}
_STATUS = {"VALIDATION_ERROR": 400, "INVALID_AUTHENTICATION": 401, "OBJECT_NOT_FOUND": 404, "CONFLICT": 409,
           "OBJECT_ALREADY_EXISTS": 409}


class HubSpotEmulator(Emulator):
    """HubSpot CRM v3. ``properties`` adds properties per object (name or type id);
    ``custom_objects`` declares custom object types (``type_id`` ``2-…``)."""

    vendor = "hubspot"
    default_rate_limit = RateLimit(100, 10.0)

    def __init__(
        self,
        token: str | None = "test-token",
        *,
        properties: Mapping[str, Iterable[HubSpotProperty]] | None = None,
        custom_objects: Iterable[HubSpotObject] = (),
        portal_id: int = 1234567,
        search_rate_limit: RateLimitSpec = None,
        **knobs: Any,
    ) -> None:
        super().__init__(token=token, **knobs)
        self.portal_id = portal_id
        extra = dict(properties or {})
        self.objects: dict[str, HubSpotObject] = {}
        for obj in (*STANDARD_OBJECTS, *custom_objects):
            added = [*extra.pop(obj.name, ()), *extra.pop(obj.type_id, ())]
            self.objects[obj.type_id] = obj.with_properties(added) if added else obj
        if extra:
            raise ValueError(f"properties given for unknown object types: {sorted(extra)}")
        self.store = HubSpotStore()
        self.batch = HubSpotBatch(self)
        self.set_group_limit("search", RateLimit(5, 1.0) if search_rate_limit is True else search_rate_limit)
        self.route("POST", _OBJECTS + r"/batch/(?P<op>create|update|upsert|archive)", self.batch.write, writes=True)
        self.route("POST", _OBJECTS + r"/batch/read", self.batch.read)
        self.route("POST", _OBJECTS + r"/search", self._search, group="search")
        self.route("GET", _OBJECTS, self._list)
        self.route("GET", _OBJECTS + r"/(?P<id>[^/]+)", self._get)
        self.route("GET", r"/crm/v3/properties/(?P<type>[^/]+)", self._properties)
        self.route("GET", r"/crm/v3/properties/(?P<type>[^/]+)/(?P<name>[^/]+)", self._property)
        self.associations = HubSpotAssociations(self)
        self.associations.register()

    # -- accessors for tests -------------------------------------------------------------------

    def object_type(self, name: str) -> HubSpotObject:
        """The object type by name (``contacts``), type id (``0-1``) or ``p{portal}_{name}``."""
        for obj in self.objects.values():
            if name in (obj.name, obj.type_id, f"p{self.portal_id}_{obj.name}"):
                return obj
        raise ApiError(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")

    def records(self, object_type: str, archived: bool = False) -> list[dict[str, Any]]:
        """``[{"id", "properties", "createdAt", "updatedAt", "archived"}]`` in id order;
        ``properties`` holds only the values set (cleared ones are absent)."""
        obj = self.object_type(object_type)
        with self.lock:
            return [{"id": r.id, "properties": dict(r.properties), "createdAt": r.created_at,
                     "updatedAt": r.updated_at, "archived": r.archived}
                    for r in sorted(self.store.live(obj, archived), key=lambda r: int(r.id))]

    def add_records(self, object_type: str, rows: Iterable[Mapping[str, str]]) -> list[str]:
        """Seed records without HTTP (values are trusted); returns their ids."""
        obj = self.object_type(object_type)
        with self.lock:
            return [self.store.create(obj, {k: str(v) for k, v in row.items()}).id for row in rows]

    def clear(self) -> None:
        with self.lock:
            self.store.clear()

    # -- reads ---------------------------------------------------------------------------------

    def read_names(self, obj: HubSpotObject, requested: Iterable[str] | None) -> list[str]:
        names = [n for n in (requested or ()) if n]
        return names or list(DEFAULT_READ.get(obj.name, ()))

    def _list(self, req: Request) -> Response:
        obj = self.object_type(req.params["type"])
        limit = req.int_arg("limit", 10)
        if not 1 <= limit <= 100:
            raise ApiError(400, "limit must be between 1 and 100", "VALIDATION_ERROR")
        after = req.int_arg("after", 0)
        names = self.read_names(obj, ",".join(req.query.get("properties", [])).split(","))
        with self.lock:
            live = sorted((r for r in self.store.live(obj, req.arg("archived") == "true") if int(r.id) > after),
                          key=lambda r: int(r.id))
            page = [r.view(names) for r in live[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(live) > limit:
            cursor = page[-1]["id"]
            body["paging"] = {"next": {"after": cursor, "link": f"{self.base_url}{req.path}?after={cursor}"}}
        return Response.json(body)

    def _get(self, req: Request) -> Response:
        obj = self.object_type(req.params["type"])
        with self.lock:
            found = self.store.find(obj, req.arg("idProperty"), req.params["id"])
            if found is None:
                raise ApiError(404, "resource not found", "OBJECT_NOT_FOUND")
            return Response.json(found.view(self.read_names(obj, (req.arg("properties") or "").split(","))))

    def _search(self, req: Request) -> Response:
        obj = self.object_type(req.params["type"])
        body = req.json_object()
        limit, offset = as_int(body.get("limit"), "limit", 10), as_int(body.get("after"), "after", 0)
        groups = body.get("filterGroups") or []
        if not 1 <= limit <= 200 or len(groups) > 6:
            raise ApiError(400, "limit must be 1..200 and filterGroups at most 6", "VALIDATION_ERROR")
        with self.lock:
            found = [r for r in self.store.live(obj) if matches(r, groups)]
            found.sort(key=lambda r: int(r.id))
            for sort in reversed(body.get("sorts") or []):
                if isinstance(sort, dict):
                    name, descending = str(sort.get("propertyName", "")), sort.get("direction") == "DESCENDING"
                else:  # the short form: "createdate" or "-createdate"
                    name, descending = str(sort).lstrip("-"), str(sort).startswith("-")
                found.sort(key=_by_property(name), reverse=descending)
            page = [r.view(self.read_names(obj, body.get("properties"))) for r in found[offset:offset + limit]]
        out: dict[str, Any] = {"total": len(found), "results": page}
        if offset + limit < len(found):
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return Response.json(out)

    def _properties(self, req: Request) -> Response:
        obj = self.object_type(req.params["type"])
        return Response.json({"results": [p.definition() for p in obj.by_name.values()]})

    def _property(self, req: Request) -> Response:
        prop = self.object_type(req.params["type"]).by_name.get(req.params["name"])
        if prop is None:
            raise ApiError(404, f"Unable to find property {req.params['name']}", "OBJECT_NOT_FOUND")
        return Response.json(prop.definition())

    # -- vendor shapes -------------------------------------------------------------------------

    def error_response(self, err: ApiError) -> Response:
        category = err.code if err.code in _STATUS else ("RATE_LIMITS" if err.status == 429 else err.code)
        body = {"status": "error", "message": err.message, "correlationId": str(uuid.uuid4()),
                "category": category or "VALIDATION_ERROR", **err.extra}
        return Response.json(body, err.status)

    def authenticate(self, request: Request) -> Response | None:
        if self.token is None or self.bearer_token(request) == self.token:
            return None
        message = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                   "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
        return self.error_response(ApiError(401, message, "INVALID_AUTHENTICATION"))

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "internal error", "INTERNAL_ERROR"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"Unable to find a route for {method} {path}", "OBJECT_NOT_FOUND"))

    def throttled_response(self, decision: Decision) -> Response:
        policy = {"daily": "DAILY", "window": "SECONDLY" if decision.group == "search" else "TEN_SECONDLY_ROLLING"}
        name = policy[decision.policy or "window"]
        body = {"status": "error", "message": f"You have reached your {name.lower()} limit.", "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": name, "requestId": str(uuid.uuid4())}
        return Response.json(body, 429, self.limit_headers(decision))

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        headers: dict[str, str] = {}
        if decision.limit is not None and decision.group == "default":
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int((decision.interval or 0) * 1000))
            headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
            headers["X-HubSpot-RateLimit-Remaining"] = str(decision.remaining)
        if decision.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(decision.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(decision.daily_remaining)
        return headers


def _by_property(name: str) -> Callable[[HubSpotRecord], str]:
    return lambda record: record.properties.get(name) or ""
