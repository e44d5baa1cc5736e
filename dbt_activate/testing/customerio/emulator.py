"""Emulator of Customer.io's Track API v2 batch endpoint, ``POST /api/v2/batch``.

Follows the contract in ``shared/contracts/SUMMARY.md`` §6 and docs.customer.io/api/track/
(``/api/v2/batch``: "Your request must be smaller than 500kb"), docs.customer.io/journeys/invalid-api-requests
(the request-level 400 ``{"meta": {"error": "…"}}`` and the identify/track limits: 300 attributes per
call, attribute names up to 150 bytes, values up to 1000 bytes, event names up to 100 bytes, event
data up to 100,000 bytes), the 32 KB per-item limit [3P, the CDP batch page states it for its
batch], and the per-item error shape ``{"errors": [{"batch_index", "reason", "field", "message"}]}``
answered with 207 [3P: Customer.io's client in segmentio/action-destinations ``customerio/utils.ts``].

Emulated: HTTP Basic auth ``site_id:api_key`` (401 otherwise); a body over ``max_request_bytes``
(500 KB) is a 413 with ``meta.error``; each item is ``{"type": "person", "identifiers": {one of id,
email, cio_id}, "action": …}`` with actions ``identify`` (creates or updates the person; an
attribute sent as ``""`` or null is removed), ``event`` (``name`` required; ``id``, a ULID, drops a
duplicate of an event already received; an event for an unknown person creates nothing) and
``delete`` (an unknown person is fine). Invalid items are answered per item and the others applied;
the rolling window (``rate_limit=True`` = 100 requests/s, the fair-use limit) answers 429 with no
rate-limit headers, as documented.

The App API's ``GET /v1/customers/{identifier}/attributes?id_type=id|email|cio_id`` (Bearer
``app_api_key``; docs.customer.io/integrations/api/app/ "Get a person's attributes") answers a
person's ``identifiers`` (``cio_id``, ``id``, ``email``) or 404. A person identified by ``cio_id``
takes the ``id``/``email`` of its attributes as new identifiers ("If your request includes a cio_id,
we'll attempt to update that person, including any identifiers in the request"), except one another
person has: that identifier is left as it was and the request still answers 200 ("may return 200 OK
but produce an Attribute Update Failure", docs.customer.io/integrations/api/track/ identify), noted
in ``attribute_update_failures``.

Not emulated: objects and relationships, devices, merge, suppress, page/screen, the single-entity
``/api/v2/entity`` and the v1 endpoints, workspace settings that make email the identifier.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from dbt_activate.testing.limits import Decision, RateLimit
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

IDENTIFIERS = ("id", "email", "cio_id")
ACTIONS = ("identify", "event", "delete")


@dataclass
class Person:
    cio_id: str
    id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class CustomerIOEmulator(Emulator):
    """Customer.io Track API v2 batch. ``token`` is the API key; ``site_id`` the Basic auth user."""

    vendor = "customerio"
    default_rate_limit = RateLimit(100, 1.0)

    def __init__(self, token: str | None = "test-token", *, site_id: str = "test-site",
                 max_request_bytes: int = 500 * 1024, max_item_bytes: int = 32 * 1024,
                 app_api_key: str | None = None, **knobs: Any) -> None:
        super().__init__(token=token, **knobs)
        self.site_id, self.app_api_key = site_id, app_api_key
        self.max_request_bytes, self.max_item_bytes = max_request_bytes, max_item_bytes
        self.people: dict[str, Person] = {}  # cio_id -> person
        self.events: list[dict[str, Any]] = []  # {"identifiers", "name", "id", "timestamp", "attributes"}
        self.request_sizes: list[int] = []  # body bytes of every batch request received
        self._event_ids: set[str] = set()
        self.attribute_update_failures: list[tuple[str, str, str]] = []  # (cio_id, identifier, value refused)
        self._ids = itertools.count(1)
        self.route("POST", r"/api/v2/batch", self._batch, writes=True)
        self.route("GET", r"/v1/customers/(?P<identifier>[^/]+)/attributes", self._attributes, group="app")

    # -- accessors for tests -------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every person as ``{"cio_id", "id", **attributes}``, in creation order."""
        with self.lock:
            return [{"cio_id": p.cio_id, "id": p.id, **p.attributes} for p in self.people.values()]

    def person(self, identifier: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._find(identifier, value)
            return None if found is None else dict(found.attributes)

    def add_person(self, id: str, **attributes: Any) -> None:
        with self.lock:
            person = Person(f"c{next(self._ids):08x}", id=id, attributes=dict(attributes))
            self.people[person.cio_id] = person

    # -- /api/v2/batch -------------------------------------------------------------------------

    def _batch(self, req: Request) -> Response:
        with self.lock:
            self.request_sizes.append(len(req.body))
        if len(req.body) > self.max_request_bytes:
            raise ApiError(413, f"request body is {len(req.body)} bytes; it must be smaller than 500kb")
        body = req.json_object()
        items = body.get("batch")
        if not isinstance(items, list):
            raise ApiError(400, "batch must be an array")
        errors: list[dict[str, Any]] = []
        with self.lock:
            self.count_records(len(items))
            for index, item in enumerate(items):
                problem = (("invalid", "", "injected failure") if req.fails(index, len(items))
                           else self._apply(item))
                if problem is not None:
                    reason, field_name, message = problem
                    errors.append({"batch_index": index, "reason": reason, "field": field_name, "message": message})
        return Response.json({"errors": errors}, 207) if errors else Response.json({}, 200)

    def _apply(self, item: Any) -> tuple[str, str, str] | None:
        """Apply one item; (reason, field, message) when it is invalid."""
        if not isinstance(item, dict):
            return "invalid", "", "each batch item must be an object"
        size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.max_item_bytes:
            return "invalid", "", f"item is {size} bytes; each item must be smaller than 32kb"
        if item.get("type") != "person":
            return "invalid", "type", "type must be person"
        if item.get("action") not in ACTIONS:
            return "invalid", "action", f"action must be one of {', '.join(ACTIONS)}"
        identifiers = item.get("identifiers")
        given = ([(k, v) for k, v in identifiers.items() if k in IDENTIFIERS]
                 if isinstance(identifiers, dict) else [])
        if len(given) != 1 or len(identifiers or {}) != 1:
            return "required", "identifiers", "identifiers must hold exactly one of id, email or cio_id"
        kind, value = given[0]
        if not isinstance(value, str):
            return "invalid", "identifiers", f"{kind} attribute must be a string value"
        if not value:
            return "invalid", "identifiers", f"{kind} attribute cannot be an empty string"
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            return "invalid", "attributes", "attributes must be an object"
        if item["action"] == "event":
            return self._event(item, kind, value, attributes)
        if item["action"] == "delete":
            found = self._find(kind, value)
            if found is not None:
                del self.people[found.cio_id]
            return None
        return self._identify(kind, value, attributes)

    def _identify(self, kind: str, value: str, attributes: dict[str, Any]) -> tuple[str, str, str] | None:
        if len(attributes) > 300:
            return "invalid", "attributes", "cannot identify more than 300 attributes in one request"
        for name, attr in attributes.items():
            if len(name.encode()) > 150:
                return "invalid", "attributes", "attribute name cannot be longer than 150 bytes"
            if len(json.dumps(attr, ensure_ascii=False).encode()) > 1000:
                return "invalid", "attributes", f"value for attribute '{name}' cannot be longer than 1000 bytes"
        person = self._find(kind, value)
        if person is None:
            if kind == "cio_id":
                return "invalid", "identifiers", f"no person with cio_id {value}"
            person = Person(f"c{next(self._ids):08x}", id=value if kind == "id" else None)
            if kind == "email":
                person.attributes["email"] = value
            self.people[person.cio_id] = person
        for name, attr in attributes.items():
            if kind == "cio_id" and name in ("id", "email") and attr not in ("", None):
                # Found by cio_id, a person takes new identifiers, unless another person has them:
                # then that identifier is not changed and the request still answers 200 (an
                # "Attribute Update Failure" shown in the workspace only).
                other = self._find(name, str(attr))
                if other is not None and other is not person:
                    self.attribute_update_failures.append((person.cio_id, name, str(attr)))
                    continue
                if name == "id":
                    person.id = str(attr)
                    continue
            if attr in ("", None):
                person.attributes.pop(name, None)
            else:
                person.attributes[name] = attr
        return None

    # -- App API: GET /v1/customers/{identifier}/attributes --------------------------------------

    def _attributes(self, req: Request) -> Response:
        """A person's identifiers and attributes, found by ``id_type`` (id, email or cio_id); 404 if none."""
        id_type = req.arg("id_type") or "id"
        if id_type not in IDENTIFIERS:
            raise ApiError(400, f"id_type must be one of {', '.join(IDENTIFIERS)}")
        with self.lock:
            person = self._find(id_type, unquote(req.params["identifier"]))
            if person is None:
                raise ApiError(404, "Customer not found")
            identifiers = {"cio_id": person.cio_id, "id": person.id, "email": person.attributes.get("email")}
            return Response.json({"customer": {"id": person.id, "identifiers": identifiers,
                                               "attributes": dict(person.attributes)}})

    def _event(self, item: dict[str, Any], kind: str, value: str,
               attributes: dict[str, Any]) -> tuple[str, str, str] | None:
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            return "required", "name", "event name must not be blank"
        if len(name.encode()) > 100:
            return "invalid", "name", "event name cannot be longer than 100 bytes"
        if len(json.dumps(attributes, ensure_ascii=False).encode()) > 100_000:
            return "invalid", "attributes", "event data cannot be longer than 100000 bytes"
        event_id = item.get("id")
        if isinstance(event_id, str) and event_id:
            if event_id in self._event_ids:
                return None  # a duplicate of an event already received: dropped, not an error
            self._event_ids.add(event_id)
        self.events.append({"identifiers": {kind: value}, "name": name, "id": event_id,
                            "timestamp": item.get("timestamp"), "attributes": dict(attributes)})
        return None

    def _find(self, kind: str, value: str) -> Person | None:
        if kind == "cio_id":
            return self.people.get(value)
        if kind == "id":
            return next((p for p in self.people.values() if p.id == value), None)
        return next((p for p in self.people.values() if p.attributes.get("email") == value), None)

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith("/v1/"):  # the App API: a Bearer App API key
            if self.app_api_key is not None and request.header("Authorization") == f"Bearer {self.app_api_key}":
                return None
            return self.error_response(ApiError(401, "Unauthorized request"))
        if self.token is None:
            return None
        expected = "Basic " + base64.b64encode(f"{self.site_id}:{self.token}".encode()).decode("ascii")
        if request.header("Authorization") == expected:
            return None
        return self.error_response(ApiError(401, "Unauthorized request"))

    def error_response(self, err: ApiError) -> Response:
        return Response.json({"meta": {"error": err.message}}, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "internal server error"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"no route for {method} {path}"))

    def throttled_response(self, decision: Decision) -> Response:
        return self.error_response(ApiError(429, "rate limit exceeded"))
