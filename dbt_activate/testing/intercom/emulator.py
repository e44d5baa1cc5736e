"""Emulator of the Intercom REST API: contacts, one per request.

Follows ``shared/contracts/SUMMARY.md`` §6 (Intercom), itself read from Intercom's OpenAPI
description (intercom/Intercom-OpenAPI ``descriptions/2.14/api.intercom.io.yaml``) and
developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting: no bulk write; errors
``{"type": "error.list", "request_id", "errors": [{"code", "message"}]}``; ``Authorization: Bearer``
plus an ``Intercom-Version`` header; 10,000 calls per minute per app spread over 10-second windows
(``rate_limit=True`` = 1,666 per 10 s); a 429 with code ``rate_limit_exceeded`` and
``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (epoch seconds) headers, also sent on every answer.

Emulated: ``POST /contacts`` (users unique by external_id and email: 409 ``conflict`` naming the
existing id), ``GET|PUT|DELETE /contacts/{id}``, ``POST /contacts/{id}/archive`` and ``/unarchive``,
``GET /contacts/find_by_external_id/{external_id}``, ``POST /contacts/search`` (``=``/``!=`` filters
nested in ``AND``/``OR``, at most 15 per group; ``per_page`` up to 150, one page), custom data
attributes declared with ``attributes={name: string|integer|float|boolean|date}`` (an unknown one
is a 400, as in Intercom). The versions received are counted in ``versions``; a version that is
not ``1.x``, ``2.x`` or ``Unstable`` is a 400 ``intercom_version_invalid`` [R]. Search sees new
contacts at once unless ``search_lag=True``, which hides contacts created through the API from
search (Intercom documents that they can take minutes to become searchable).

Companies and attaching contacts to them: ``companies.py``.

Not emulated: tags, notes, segments, conversations, data attribute creation, merges,
the per-workspace 25,000/min limit, search by dates, ``starting_after`` pagination, regional hosts.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import Counter
from typing import Any

from dbt_activate.testing.intercom.companies import IntercomCompanies
from dbt_activate.testing.intercom.store import IntercomStore, invalid
from dbt_activate.testing.limits import Decision, RateLimit
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

CONTACT = r"/contacts/(?P<id>[0-9a-f]+)"
_VERSION = re.compile(r"^(?:[12]\.\d+|Unstable)$")


class IntercomEmulator(Emulator):
    """An Intercom workspace with one app's access token. See the module docstring for the knobs."""

    vendor = "intercom"
    default_rate_limit = RateLimit(1666, 10.0)

    def __init__(self, token: str | None = "test-token", *, attributes: dict[str, str] | None = None,
                 search_lag: bool = False, **knobs: Any) -> None:
        super().__init__(token=token, **knobs)
        self.store = IntercomStore(attributes or {})
        self.search_lag = search_lag
        self.versions: Counter[str] = Counter()
        self._unsearchable: set[str] = set()
        self.route("POST", r"/contacts", self._create, writes=True)
        self.route("POST", r"/contacts/search", self._search)
        self.route("GET", r"/contacts/find_by_external_id/(?P<external_id>[^/]+)", self._find)
        self.route("GET", CONTACT, self._get)
        self.route("PUT", CONTACT, self._update, writes=True)
        self.route("DELETE", CONTACT, self._delete, writes=True)
        self.route("POST", CONTACT + r"/archive", self._archive, writes=True)
        self.route("POST", CONTACT + r"/unarchive", self._unarchive, writes=True)
        self.companies = IntercomCompanies(self)  # companies and contact attachments (companies.py)

    # -- accessors for tests -------------------------------------------------------------------

    def records(self, archived: bool = False) -> list[dict[str, Any]]:
        """Contacts as the API shows them (archived ones only when asked), in creation order."""
        with self.lock:
            return [_copy(c) for c in self.store.contacts.values() if archived or not c["archived"]]

    def add_records(self, bodies: list[dict[str, Any]]) -> list[str]:
        """Seed contacts without HTTP (validated like POST /contacts); returns their ids."""
        with self.lock:
            return [self.store.create(body)["id"] for body in bodies]

    def clear(self) -> None:
        with self.lock:
            self.store.clear()

    # -- contacts --------------------------------------------------------------------------------

    def _create(self, req: Request) -> Response:
        self.count_records(1)
        _partial(req)
        with self.lock:
            contact = self.store.create(req.json_object())
            if self.search_lag:
                self._unsearchable.add(contact["id"])
            return Response.json(_copy(contact))

    def _update(self, req: Request) -> Response:
        self.count_records(1)
        _partial(req)
        with self.lock:
            return Response.json(_copy(self.store.update(req.params["id"], req.json_object())))

    def _get(self, req: Request) -> Response:
        with self.lock:
            return Response.json(_copy(self.store.get(req.params["id"])))

    def _find(self, req: Request) -> Response:
        with self.lock:
            for contact in self.store.live():
                if contact["role"] == "user" and contact.get("external_id") == req.params["external_id"]:
                    return Response.json(_copy(contact))
        raise ApiError(404, "User Not Found", "not_found")

    def _delete(self, req: Request) -> Response:
        self.count_records(1)
        _partial(req)
        with self.lock:
            contact = self.store.get(req.params["id"])
            del self.store.contacts[contact["id"]]
            self.companies.attached = {pair for pair in self.companies.attached if pair[0] != contact["id"]}
        return Response.json({"id": contact["id"], "external_id": contact["external_id"], "type": "contact",
                              "deleted": True})

    def _archive(self, req: Request, archived: bool = True) -> Response:
        self.count_records(1)
        _partial(req)
        with self.lock:
            contact = self.store.get(req.params["id"])
            contact["archived"] = archived
        return Response.json({"id": contact["id"], "external_id": contact["external_id"], "type": "contact",
                              "archived": archived})

    def _unarchive(self, req: Request) -> Response:
        return self._archive(req, archived=False)

    def _search(self, req: Request) -> Response:
        body = req.json_object()
        pagination = body.get("pagination") or {}
        per_page = pagination.get("per_page", 50) if isinstance(pagination, dict) else 50
        if not isinstance(per_page, int) or not 1 <= per_page <= 150:
            raise invalid("per_page must be between 1 and 150")
        if "query" not in body:
            raise invalid("query is required", "parameter_not_found")
        with self.lock:
            found = [_copy(c) for c in self.store.search(body["query"]) if c["id"] not in self._unsearchable]
        total_pages = max(1, math.ceil(len(found) / per_page))
        pages = {"type": "pages", "page": 1, "per_page": per_page, "total_pages": total_pages}
        return Response.json({"type": "list", "data": found[:per_page], "total_count": len(found), "pages": pages})

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        version = request.header("Intercom-Version")
        if version is not None:
            with self.lock:
                self.versions[version] += 1
            if not _VERSION.match(version):
                return self.error_response(ApiError(400, "The requested version could not be found",
                                                    "intercom_version_invalid"))
        if self.token is None or self.bearer_token(request) == self.token:
            return None
        return self.error_response(ApiError(401, "Access Token Invalid", "unauthorized"))

    def error_response(self, err: ApiError) -> Response:
        return Response.json({"type": "error.list", "request_id": uuid.uuid4().hex[:20],
                              "errors": [{"code": err.code or "server_error", "message": err.message}]}, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "Server Error", "server_error"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"Resource Not Found: {method} {path}", "not_found"))

    def throttled_response(self, decision: Decision) -> Response:
        response = self.error_response(ApiError(429, "Too many requests", "rate_limit_exceeded"))
        response.headers.update(self.limit_headers(decision))
        return response

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        if decision.limit is None:
            return {}
        return {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining),
                "X-RateLimit-Reset": str(math.ceil(time.time() + decision.reset))}


def _partial(req: Request) -> None:
    if req.fails(0, 1):
        raise invalid("Injected partial failure (emulator fault)")


def _copy(contact: dict[str, Any]) -> dict[str, Any]:
    return {**contact, "custom_attributes": dict(contact["custom_attributes"])}
