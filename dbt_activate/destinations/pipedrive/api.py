"""The Pipedrive calls a sync makes and how their answers read: v2 records and search, v1 fields.

One ``HttpSession`` carries every call, authenticated by the ``x-api-token`` header only: Pipedrive
takes the token in that header "for all requests", v1 included
(pipedrive.readme.io/docs/core-api-concepts-authentication), and a token in a URL ends up in proxies'
logs. Record writes are one record per request (the v2 API has no batch write), so a batch is many
requests in flight at once, bounded by ``CONNECTIONS`` and paced by the run's rate limiter. Search has
a tighter limit of its own, 10 requests per 2 s per token
(pipedrive.readme.io/docs/core-api-concepts-rate-limiting, "Rate limiting for Search API"), so
searches also pass a second limiter.

Answers map to the error tree here, once:

- 429 with the daily budget spent (``daily_budget_spent``): ``QuotaExhaustedError``; every later call
  of this destination fails the same way without being sent;
- other 429: retryable, waiting ``Retry-After`` or else ``x-ratelimit-reset`` (seconds left in the
  2-second window), and the limiter is told; ``x-ratelimit-remaining`` of other answers feeds it too;
- 401/403 (by ``HttpSession``): fatal for the destination, like the quota;
- 404 on PATCH/DELETE of a known id: ``False`` (a stale id; the caller searches again);
- other 4xx: ``RecordFailed`` with Pipedrive's ``error`` message, which rejects that record only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from dbt_activate.core.types import RateLimit
from dbt_activate.delivery import HttpSession, JSONValue, RateLimiter, body_snippet, current_limiter, parse_retry_after
from dbt_activate.destinations.api import REASON_LIMIT, clip_reason, json_object
from dbt_activate.destinations.record_ids import RecordFailed
from dbt_activate.errors import DestinationError, QuotaExhaustedError, RetryableDestinationError

CONNECTIONS = 16  # requests of one destination in flight at once (and the connection pool's size)
SEARCH_LIMIT = RateLimit(10, 2.0)
PAGE = 500  # the documented maximum `limit` of list endpoints
# The daily budget headers of the two limit models (see ``daily_budget_spent``).
DAILY_TOKENS_LEFT = "x-daily-ratelimit-token-remaining"
DAILY_REQUESTS_LEFT = "x-daily-requests-left"
_COUNTED_BY_LEGACY = ("POST", "PUT", "PATCH")  # the writes the legacy daily limit counts


@dataclass(frozen=True)
class SearchSpec:
    """How to find a record by its match field: an endpoint, its parameters, what to double-check."""

    path: str  # relative to the v2 prefix
    params: Mapping[str, str]
    term_param: str = "term"
    verify: str | None = None  # item property that must equal the term (case-insensitively)


class PipedriveApi:
    """The calls, over the destination's ``session`` (whose response hook is ``inspect``)."""

    def __init__(self, name: str, session: HttpSession, v1_prefix: str) -> None:
        self.name = name
        self.v1, self.v2 = v1_prefix, "/api/v2"
        self.session = session
        self.search_limiter = RateLimiter(SEARCH_LIMIT)
        self.fatal: DestinationError | None = None  # quota spent or credentials refused: stop sending
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0

    # -- records --------------------------------------------------------------------------------

    async def create(self, entity: str, body: Mapping[str, JSONValue]) -> str | None:
        """POST a record; its new id (None if the answer did not say, though it was accepted)."""
        response = await self._send("POST", f"{self.v2}/{entity}", json=body)
        self._check(response)
        data = _data(response)
        return str(data["id"]) if isinstance(data, Mapping) and data.get("id") is not None else None

    async def update(self, entity: str, record_id: str, body: Mapping[str, JSONValue]) -> bool:
        """PATCH a record; False when the id no longer exists."""
        response = await self._send("PATCH", f"{self.v2}/{entity}/{record_id}", json=body)
        if response.status_code in (404, 410):
            return False
        self._check(response)
        return True

    async def delete(self, entity: str, record_id: str) -> bool:
        """DELETE a record (Pipedrive keeps it 30 days as deleted); False when it was already gone."""
        response = await self._send("DELETE", f"{self.v2}/{entity}/{record_id}")
        if response.status_code in (404, 410):
            return False
        self._check(response)
        return True

    async def search(self, spec: SearchSpec, term: str) -> list[str]:
        """Ids of the records whose match field equals ``term`` (exact match)."""
        params = {**spec.params, spec.term_param: term, "limit": "10"}
        async with self.search_limiter.slot():
            response = await self._send("GET", f"{self.v2}{spec.path}", params=params)
        self._check(response)
        data = _data(response)
        items = data.get("items") if isinstance(data, Mapping) else data
        found: list[str] = []
        for entry in items if isinstance(items, list) else []:
            item = entry.get("item", entry) if isinstance(entry, Mapping) else None
            if not isinstance(item, Mapping) or item.get("id") is None:
                continue
            if spec.verify is not None and spec.verify in item and not _equals(item[spec.verify], term):
                continue  # a looser hit than asked for: never update a record that does not match
            if str(item["id"]) not in found:
                found.append(str(item["id"]))
        return found

    async def fields(self, fields_path: str) -> list[dict[str, Any]]:
        """Every field definition of ``/v1/{fields_path}`` (custom and built-in), all pages."""
        found: list[dict[str, Any]] = []
        start = 0
        while True:
            response = await self._send("GET", f"{self.v1}/{fields_path}",
                                        params={"start": str(start), "limit": str(PAGE)})
            if not 200 <= response.status_code < 300:
                raise DestinationError(self.session.redact(
                    f"{self.name}: cannot read {fields_path}: HTTP {response.status_code}: {_reason(response)}"))
            body = json_object(response)
            page = body.get("data")
            if isinstance(page, list):
                found.extend(d for d in page if isinstance(d, dict))
            more = body.get("additional_data")
            pagination = more.get("pagination") if isinstance(more, Mapping) else None
            if not (isinstance(pagination, Mapping) and pagination.get("more_items_in_collection")):
                return found
            start = int(pagination.get("next_start") or start + PAGE)

    # -- transport ------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, *, json: Any = None,
                    params: Mapping[str, str] | None = None) -> httpx.Response:
        if self.fatal is not None:
            raise self.fatal
        if self._slots is None:
            self._slots = asyncio.Semaphore(CONNECTIONS)
        async with self._slots:
            self._in_flight += 1
            try:
                return await self.session.request(method, path, json=json, params=params)
            except DestinationError as exc:
                if not isinstance(exc, RetryableDestinationError):
                    self.fatal = self.fatal or exc
                raise
            finally:
                self._in_flight -= 1

    def _check(self, response: httpx.Response) -> None:
        """Per-record refusals become ``RecordFailed``; answers we cannot read fail the batch."""
        status = response.status_code
        if 400 <= status < 500:
            raise RecordFailed(self.session.redact(f"Pipedrive answered HTTP {status}: {_reason(response)}"))
        if not 200 <= status < 300:
            raise DestinationError(self.session.redact(
                f"{self.name}: {response.request.method} {response.request.url.path} answered HTTP {status} "
                f"{response.reason_phrase}: {body_snippet(response)}"))

    def inspect(self, response: httpx.Response) -> None:
        """Response hook: throttling and the daily budget, before ``HttpSession`` maps statuses."""
        headers, request = response.headers, response.request
        searching = request.url.path.endswith("/search") or "/itemSearch/" in request.url.path
        limiter = self.search_limiter if searching else current_limiter()
        reset = _number(headers.get("x-ratelimit-reset"))
        if response.status_code != 429:
            remaining = _number(headers.get("x-ratelimit-remaining"))
            if limiter is not None and remaining is not None and not searching:
                # Requests still in flight may not be counted by Pipedrive yet: count them as spent.
                limiter.observe(max(0, int(remaining) - (self._in_flight - 1)), reset)
            return
        where = f"{self.name}: {request.method} {request.url.path}"
        if daily_budget_spent(request.method, headers):
            self.fatal = QuotaExhaustedError(self.session.redact(
                f"{where}: the daily API token budget of this Pipedrive company is spent ({_reason(response)}); "
                "the rows not sent stay pending and go out with the next run, after the budget resets"))
            raise self.fatal
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is None:
            retry_after = reset if reset is not None else SEARCH_LIMIT.per_seconds
        if limiter is not None:
            limiter.throttled(retry_after)
        raise RetryableDestinationError(self.session.redact(
            f"{where} was throttled: HTTP 429 (retry after {retry_after:g}s): {_reason(response)}"),
            retry_after=retry_after)


def _data(response: httpx.Response) -> Any:
    return json_object(response).get("data")


def _reason(response: httpx.Response) -> str:
    """Pipedrive's ``error`` message (``{"success": false, "error": "...", ...}``), else the body."""
    error = json_object(response).get("error")
    if isinstance(error, str) and error:
        return clip_reason(error)
    return body_snippet(response, REASON_LIMIT)


def daily_budget_spent(method: str, headers: httpx.Headers) -> bool:
    """Whether a 429 says the company's daily budget is spent (retrying today is pointless), not the
    2-second burst window.

    Token-based limits (pipedrive.readme.io/docs/core-api-concepts-rate-limiting, "Token-Based Rate
    Limiting": a daily token budget per company; when it is exhausted further requests are blocked until
    it resets): the 429 carries ``x-daily-ratelimit-token-remaining``, the tokens left today, at 0. That
    page does not name the header; the live API sends it (with ``x-daily-ratelimit-token-limit``), as
    Pipedrive staff described in the developer community (2026-01-12, noting that it can be missing for a
    few requests after a long idle time) and as clients checked against Pipedrive sandboxes.

    Legacy limits (the same page before token-based limits, and the changelog "Daily API limit for
    POST/PUT endpoints", 2019): ``x-daily-requests-left`` counts the POST/PUT *requests* left today, not
    tokens, so it only says something about a write, and only at 0. A missing header is no signal.
    """
    tokens_left = _number(headers.get(DAILY_TOKENS_LEFT))
    if tokens_left is not None:
        return tokens_left <= 0
    requests_left = _number(headers.get(DAILY_REQUESTS_LEFT))
    return requests_left is not None and requests_left <= 0 and method in _COUNTED_BY_LEGACY


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _equals(found: Any, term: str) -> bool:
    values: Sequence[Any] = found if isinstance(found, list) else [found]
    wanted = term.casefold()
    return any(str(v.get("value") if isinstance(v, Mapping) else v).casefold() == wanted for v in values)
