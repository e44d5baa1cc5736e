"""Emulator of the Pipedrive API: persons, organizations and deals (v2), field definitions (v1).

Follows the contract in ``shared/contracts/SUMMARY.md`` §3: Pipedrive's OpenAPI documents copied to
``shared/contracts/pipedrive/`` (``openapi-v2.yaml``: bodies, responses, ``x-token-cost``;
``openapi-v1.yaml``: ``/personFields`` etc., bulk delete, the error shape) and the rate-limiting page
(pipedrive.readme.io/docs/core-api-concepts-rate-limiting: daily token budget, 2-second burst window
per token, search's own 10 per 2 s, ``x-ratelimit-*`` and ``x-daily-requests-left`` headers, 429).

Emulated: ``POST /api/v2/{persons|organizations|deals}``, ``PATCH|GET|DELETE …/{id}`` (one record per
request, soft delete), ``GET …`` (list, cursor paging, ``ids``), ``GET …/search`` (``term``, ``fields``,
``exact_match``), ``GET /api/v2/itemSearch/field`` (case-sensitive, ``match`` exact/beginning/middle),
``GET|POST /v1/{person|organization|deal}Fields``, ``GET|DELETE …Fields/{id}`` (custom fields with
40-character hash keys), ``DELETE /v1/{entity}?ids=`` (the only bulk write); auth by ``x-api-token``
header, ``api_token`` query parameter or OAuth bearer; the burst window (``rate_limit=True`` = 20
per 2 s, the Lite api_token figure; search 10 per 2 s) and the daily limit ``daily_limit`` under one of
Pipedrive's two limit models (``limit_model``, fixed at construction):

- ``"tokens"`` (the default; token-based limits, rolled out to every company by the end of 2025 per the
  rate-limiting page): a daily token budget, each request costing its ``x-token-cost``; every answer
  carries ``x-daily-ratelimit-token-limit`` and ``x-daily-ratelimit-token-remaining``, and a request
  over the budget gets a 429 whose ``x-daily-ratelimit-token-remaining`` is 0. The rate-limiting page
  does not name these headers; the live API sends them (Pipedrive staff in the developer community,
  2026-01-12; clients checked against Pipedrive sandboxes).
  The last request that starts within the budget is served even when it costs more than is left
  (``TokenBudget``): the page says requests are blocked "once this budget is exhausted".
- ``"legacy"``: the request-based fair-usage limit of POST/PUT requests per day
  (developers.pipedrive.com/changelog/post/daily-api-limit-for-postput-endpoints, 2019; PATCH, v2's
  update, counts as PUT), announced in ``x-daily-requests-left``, which counts those requests, not
  tokens (the rate-limiting page's header table); reads are not counted.

A 429 has Pipedrive's error shape with the same message whatever its cause: no document gives the daily
budget a body of its own, so the headers are the only signal a client may rely on.

A ``null`` for a v2 body property whose request schema is not ``nullable`` (``value``, ``currency``,
``owner_id``, ``org_id``, ``visible_to``, ``expected_close_date``…; only deals' ``probability``,
``lost_reason`` and ``close_time`` are nullable in ``openapi-v2.yaml``) is a 400 in Pipedrive's error
shape; ``custom_fields`` values may be ``null`` (that clears them).

Not emulated: products, leads, activities, notes, pipelines and stages (``stage_id`` is not checked),
followers, merges, filters, webhooks, ``include_fields``, ``updated_since`` filtering, v1 record writes,
field-level permissions, Cloudflare's 403 for clients that ignore 429s.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dbt_activate.testing.limits import Decision, Limits, RateLimit, RateLimitSpec
from dbt_activate.testing.messages import ApiError, Request, Response, as_int
from dbt_activate.testing.pipedrive.fields import STANDARD, FieldRegistry, PipedriveField, ok
from dbt_activate.testing.pipedrive.store import SEARCH_FIELDS, PipedriveStore, search_item, search_texts
from dbt_activate.testing.server import Emulator

V2 = r"/api/v2/(?P<entity>persons|organizations|deals)"
V1_FIELDS = r"/v1/(?P<fields>personFields|organizationFields|dealFields)"
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
SEARCH_LIMIT = RateLimit(10, 2.0)
LIMIT_MODELS = ("tokens", "legacy")
_LEGACY_COUNTED = ("POST", "PUT", "PATCH")


class PipedriveEmulator(Emulator):
    """Pipedrive company account. ``custom_fields`` declares custom fields per entity (``persons``,
    ``organizations``, ``deals``); their keys are ``field_key(entity, name)`` unless given."""

    vendor = "pipedrive"
    default_rate_limit = RateLimit(20, 2.0)

    def __init__(
        self,
        token: str | None = "test-token",
        *,
        custom_fields: Mapping[str, Iterable[PipedriveField]] | None = None,
        search_rate_limit: RateLimitSpec = None,
        limit_model: str = "tokens",
        **knobs: Any,
    ) -> None:
        if limit_model not in LIMIT_MODELS:
            raise ValueError(f"limit_model must be one of {LIMIT_MODELS}, got {limit_model!r}")
        self.limit_model = limit_model
        super().__init__(token=token, **knobs)
        if limit_model == "tokens":
            budget = TokenBudget()
            budget.set_window("default", self._limits.window("default"))
            budget.set_daily(self._limits.daily_limit)
            self._limits = budget
        self.store = PipedriveStore()
        # Requests that carried the API token in their URL (``api_token=``): accepted, as Pipedrive's v1
        # spec declares the parameter, but counted, since a token in a URL ends up in proxies' logs.
        self.tokens_in_urls = 0
        self.field_registry = FieldRegistry(self.lock, custom_fields or {})
        self.fields = self.field_registry.defs  # entity -> key -> FieldDef
        if search_rate_limit is None and self.rate_limit is not None:
            search_rate_limit = SEARCH_LIMIT  # Pipedrive's search burst limit applies whenever limits do
        self.set_group_limit("search", search_rate_limit)
        cost = self._daily_cost
        self.route("POST", V2, self._create, writes=True, cost=cost("POST", 5))
        self.route("GET", V2 + r"/search", self._search, group="search", cost=cost("GET", 20))
        self.route("GET", V2 + r"/(?P<id>\d+)", self._get, cost=cost("GET", 1))
        self.route("PATCH", V2 + r"/(?P<id>\d+)", self._update, writes=True, cost=cost("PATCH", 5))
        self.route("DELETE", V2 + r"/(?P<id>\d+)", self._delete, writes=True, cost=cost("DELETE", 3))
        self.route("GET", V2, self._list, cost=cost("GET", 10))
        self.route("GET", r"/api/v2/itemSearch/field", self._item_search, group="search", cost=cost("GET", 20))
        self.route("DELETE", r"/v1/(?P<entity>persons|organizations|deals)", self._bulk_delete, writes=True,
                   cost=cost("DELETE", 10))
        fields = self.field_registry
        self.route("GET", V1_FIELDS, fields.list_fields, cost=cost("GET", 20))
        self.route("GET", V1_FIELDS + r"/(?P<id>\d+)", fields.get_field, cost=cost("GET", 2))
        self.route("POST", V1_FIELDS, fields.add_field, cost=cost("POST", 10))
        self.route("DELETE", V1_FIELDS + r"/(?P<id>\d+)", fields.delete_field, cost=cost("DELETE", 6))

    def _daily_cost(self, method: str, tokens: int) -> int:
        """What a request takes from ``daily_limit``: its tokens, or one POST/PUT request (legacy)."""
        if self.limit_model == "tokens":
            return tokens
        return 1 if method in _LEGACY_COUNTED else 0

    # -- accessors for tests -------------------------------------------------------------------

    def records(self, entity: str) -> list[dict[str, Any]]:
        """Live (not deleted) records of ``entity`` as the v2 API returns them, in id order."""
        with self.lock:
            return [dict(r, custom_fields=dict(r["custom_fields"])) for r in self.store.live(_entity(entity))]

    def add_records(self, entity: str, bodies: Iterable[Mapping[str, Any]]) -> list[int]:
        """Seed records without HTTP (v2 bodies, validated); returns their ids."""
        entity = _entity(entity)
        with self.lock:
            return [self.store.create(entity, body, self.fields[entity])["id"] for body in bodies]

    def field_key(self, entity: str, name: str) -> str:
        """The key of the field called ``name`` (custom or built-in)."""
        return self.field_registry.key_of(_entity(entity), name)

    def clear(self) -> None:
        with self.lock:
            self.store.clear()

    # -- v2 records ------------------------------------------------------------------------------

    def _create(self, req: Request) -> Response:
        entity = req.params["entity"]
        self.count_records(1)
        _partial(req)
        with self.lock:
            return ok(dict(self.store.create(entity, req.json(), self.fields[entity])))

    def _update(self, req: Request) -> Response:
        entity = req.params["entity"]
        self.count_records(1)
        _partial(req)
        with self.lock:
            return ok(dict(self.store.update(entity, int(req.params["id"]), req.json(), self.fields[entity])))

    def _delete(self, req: Request) -> Response:
        self.count_records(1)
        _partial(req)
        with self.lock:
            self.store.delete(req.params["entity"], int(req.params["id"]))
        return ok({"id": int(req.params["id"])})

    def _get(self, req: Request) -> Response:
        with self.lock:
            return ok(dict(self.store.get(req.params["entity"], int(req.params["id"]))))

    def _list(self, req: Request) -> Response:
        entity, limit = req.params["entity"], _limit(req)
        try:
            after = int(base64.b64decode(req.arg("cursor") or "MA==").decode() or 0)
        except ValueError:
            raise ApiError(400, "Invalid cursor", "ERR_SCHEMA_VALIDATION_FAILED") from None
        ids = {as_int(i, "ids", 0) for i in (req.arg("ids") or "").split(",") if i.strip()}
        with self.lock:
            found = [dict(r) for r in self.store.live(entity) if r["id"] > after and (not ids or r["id"] in ids)]
        page = found[:limit]
        cursor = base64.b64encode(str(page[-1]["id"]).encode()).decode() if len(found) > limit else None
        return ok(page, {"next_cursor": cursor})

    def _search(self, req: Request) -> Response:
        entity = req.params["entity"]
        term, exact = req.arg("term") or "", req.arg("exact_match") == "true"
        if len(term) < (1 if exact else 2):
            raise ApiError(400, "Search term must be at least 2 characters long (1 with exact_match)",
                           "ERR_SCHEMA_VALIDATION_FAILED")
        fields = tuple(f for f in (req.arg("fields") or ",".join(SEARCH_FIELDS[entity])).split(",") if f)
        needle, hits = term.lower(), []
        with self.lock:
            for record in self.store.live(entity):
                texts = [t.lower() for t in search_texts(entity, record, fields, self.fields[entity])]
                if any(t == needle for t in texts):
                    hits.append(search_item(entity, record, 1.0, self.store))
                elif not exact and any(needle in t for t in texts):
                    hits.append(search_item(entity, record, 0.5, self.store))
        offset, limit = req.int_arg("cursor", 0), _limit(req)
        more = offset + limit < len(hits)
        return ok({"items": hits[offset:offset + limit]}, {"next_cursor": str(offset + limit) if more else None})

    def _item_search(self, req: Request) -> Response:
        kinds = {"person": "persons", "organization": "organizations", "deal": "deals"}
        entity = kinds.get(req.arg("entity_type") or "")
        key, term, match = req.arg("field") or "", req.arg("term") or "", req.arg("match") or "exact"
        if entity is None or key not in self.fields[entity] or not term:
            raise ApiError(400, "entity_type, a known field key and term are required", "ERR_SCHEMA_VALIDATION_FAILED")
        tests: dict[str, Callable[[str, str], bool]] = {
            "exact": lambda text, wanted: text == wanted,
            "beginning": lambda text, wanted: text.startswith(wanted),
            "middle": lambda text, wanted: wanted in text,
        }
        test = tests.get(match)
        if test is None:
            raise ApiError(400, "match must be exact, beginning or middle", "ERR_SCHEMA_VALIDATION_FAILED")
        label = "title" if entity == "deals" else "name"
        with self.lock:
            found = [{"id": r["id"], label: r[label]} for r in self.store.live(entity)
                     if any(test(text, term) for text in _field_texts(r, key))]
        return ok(found[: _limit(req)], {"next_cursor": None})

    def _bulk_delete(self, req: Request) -> Response:
        entity = req.params["entity"]
        ids = [as_int(i, "ids", 0) for i in (req.arg("ids") or "").split(",") if i.strip()]
        self.count_records(len(ids))
        _partial(req)
        with self.lock:
            for record_id in ids:
                self.store.delete(entity, record_id)
        return ok({"id": ids})

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.arg("api_token") is not None:
            with self.lock:
                self.tokens_in_urls += 1
        given = request.header("x-api-token") or request.arg("api_token") or self.bearer_token(request)
        if self.token is None or given == self.token:
            return None
        return self.error_response(ApiError(401, "unauthorized access", "UNAUTHORIZED", errorCode=401))

    def error_response(self, err: ApiError) -> Response:
        body = {"success": False, "error": err.message, "error_info": ERROR_INFO, "data": None,
                "additional_data": None, **err.extra}
        return Response.json(body, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "Service temporarily unavailable" if status == 503
                                            else "Internal server error", "INTERNAL_ERROR"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"Unknown method {method} {path}", "NOT_FOUND"))

    def throttled_response(self, decision: Decision) -> Response:
        response = self.error_response(ApiError(429, "Request over limit", "RATE_LIMIT", errorCode=429))
        response.headers.update(self.limit_headers(decision))
        return response

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        headers: dict[str, str] = {}
        if decision.limit is not None:
            headers["x-ratelimit-limit"] = str(decision.limit)
            headers["x-ratelimit-remaining"] = str(decision.remaining)
            headers["x-ratelimit-reset"] = str(math.ceil(decision.reset))
        if decision.daily_limit is not None and self.limit_model == "tokens":
            headers["x-daily-ratelimit-token-limit"] = str(decision.daily_limit)
            headers["x-daily-ratelimit-token-remaining"] = str(decision.daily_remaining)
        elif decision.daily_limit is not None:
            headers["x-daily-requests-left"] = str(decision.daily_remaining)
        return headers


class TokenBudget(Limits):
    """The daily token budget: requests are blocked once it is exhausted (the rate-limiting page), so
    the last request that starts within the budget is served even when it costs more than is left,
    and every later one gets a 429 with ``x-daily-ratelimit-token-remaining: 0``."""

    def check(self, group: str = "default", cost: int = 1) -> Decision:
        limit = self.daily_limit
        if limit is not None and 0 < limit - self.daily_used < cost:
            cost = limit - self.daily_used  # the overdraft of the last request
        return super().check(group, cost)


def _partial(req: Request) -> None:
    if req.fails(0, 1):
        raise ApiError(400, "Injected partial failure (emulator fault)", "INJECTED_FAULT")


def _limit(req: Request) -> int:
    limit = req.int_arg("limit", 100)
    if not 1 <= limit <= 500:
        raise ApiError(400, "limit must be between 1 and 500", "ERR_SCHEMA_VALIDATION_FAILED")
    return limit


def _entity(name: str) -> str:
    if name not in STANDARD:
        raise KeyError(f"unknown Pipedrive entity {name!r}; expected one of {sorted(STANDARD)}")
    return name


def _field_texts(record: Mapping[str, Any], key: str) -> list[str]:
    if key in ("email", "phone"):
        return [item["value"] for item in record.get(key + "s") or []]
    value = record["custom_fields"].get(key, record.get(key))
    return [] if value is None else [str(value)]
