"""One Salesforce org over HTTP: authenticated requests, the daily API allocation, SOQL queries.

Every request goes through one ``HttpSession`` (pooling, the run's rate limiter if one is
configured, 5xx/timeouts -> retryable). On top of it, Salesforce's own signals:

- ``Sforce-Limit-Info: api-usage=N/M`` comes with every response: N requests of the org's rolling
  24-hour allocation M are used. Salesforce has no per-second limit and never answers 429, so this
  is the only pacing signal. Once N reaches ``max_api_usage`` x M no new work is started: the sync
  stops with ``QuotaExhaustedError`` and keeps the unsent rows for the next run (the allocation is
  shared with every other integration of the org, hence the reserve);
- 403 ``REQUEST_LIMIT_EXCEEDED``: "TotalRequests Limit exceeded" means the allocation is used up
  (``QuotaExhaustedError``); any other (too many concurrent long-running requests) passes, so it
  is retried;
- 401 ``INVALID_SESSION_ID``: the token expired; it is renewed once (``salesforce_auth``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from dbt_activate.delivery import HttpSession, body_snippet
from dbt_activate.destinations.salesforce.auth import TOKEN_PATH, Token, TokenHolder, read_token
from dbt_activate.errors import DestinationError, QuotaExhaustedError, RetryableDestinationError
from dbt_activate.version import __version__

_USAGE = re.compile(r"(?:^|[\s,;])api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class ApiUsage:
    used: int
    allocation: int

    @classmethod
    def parse(cls, header: str | None) -> ApiUsage | None:
        """``api-usage=N/M`` out of ``Sforce-Limit-Info`` (``per-app-api-usage`` is not the org's)."""
        found = _USAGE.search(header or "")
        return cls(int(found[1]), int(found[2])) if found else None


class _SessionExpired(DestinationError):
    """A 401 from the data API: the bearer token is no longer valid."""


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """REST error bodies: ``[{"message", "errorCode", "fields"?}]`` (an object alone is accepted too)."""
    try:
        data = response.json()
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    return [i for i in items if isinstance(i, dict) and ("errorCode" in i or "message" in i)]


def error_text(response: httpx.Response) -> str:
    """``HTTP 400 CODE: message`` for an error response, for rejection reasons and error messages."""
    found = errors_of(response)
    if not found:
        return f"HTTP {response.status_code}: {body_snippet(response)}"
    return f"HTTP {response.status_code} " + "; ".join(
        f"{e.get('errorCode') or 'ERROR'}: {e.get('message') or ''}".rstrip(": ") for e in found)


class SalesforceApi:
    """Authenticated requests to one org. ``instance_url`` None: the OAuth token's is used."""

    def __init__(self, name: str, *, instance_url: str | None, api_version: str, tokens: TokenHolder,
                 secrets: list[str], timeout: float, max_connections: int, max_api_usage: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.instance_url = instance_url.rstrip("/") if instance_url else None
        self.data = f"/services/data/{api_version}"
        self.tokens = tokens
        self.max_api_usage = max_api_usage
        self.usage: ApiUsage | None = None
        self.session = HttpSession(name, headers={"User-Agent": f"dbt-activate/{__version__}",
                                                  "Accept": "application/json"},
                                   secrets=secrets, timeout=timeout, max_connections=max_connections,
                                   response_hook=self._inspect, transport=transport)

    def redact(self, text: str) -> str:
        return self.session.redact(text)

    async def request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                      params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                      new_work: bool = True) -> httpx.Response:
        """Send to ``path`` (under the instance URL, or absolute). ``new_work=False`` for requests that
        only finish work already started (polling a Bulk job), which the quota reserve lets through."""
        if new_work:
            self._check_quota()
        token, generation = await self.tokens.get(self._fetch_token)
        try:
            return await self._send(token, method, path, json, content, params, headers)
        except _SessionExpired:
            token, generation = await self.tokens.renew(generation, self._fetch_token)
        try:
            return await self._send(token, method, path, json, content, params, headers)
        except _SessionExpired as exc:
            raise DestinationError(self.redact(
                f"{self.name}: Salesforce refused a freshly issued token ({exc}); check that the connected "
                "app's user may use the API")) from exc

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record a SOQL query returns, following ``nextRecordsUrl``."""
        records: list[dict[str, Any]] = []
        response = await self.request("GET", f"{self.data}/query", params={"q": soql})
        while True:
            data = self.json_of(response, "a SOQL query")
            if not isinstance(data, dict) or not isinstance(data.get("records"), list):
                raise DestinationError(self.redact(f"{self.name}: unreadable query result: {body_snippet(response)}"))
            records.extend(r for r in data["records"] if isinstance(r, dict))
            following = data.get("nextRecordsUrl")
            if data.get("done", True) or not following:
                return records
            response = await self.request("GET", str(following))

    def json_of(self, response: httpx.Response, what: str) -> Any:
        """The JSON body of a 2xx response; any other answer fails the batch with Salesforce's reason."""
        if not 200 <= response.status_code < 300:
            raise DestinationError(self.redact(f"{self.name}: {what} failed: {error_text(response)}"))
        try:
            return response.json()
        except ValueError as exc:
            raise DestinationError(self.redact(
                f"{self.name}: {what} answered a body that is not JSON: {body_snippet(response)}")) from exc

    async def aclose(self) -> None:
        await self.session.aclose()

    # -- internals ---------------------------------------------------------------------------------

    async def _send(self, token: Token, method: str, path: str, json: Any, content: bytes | None,
                    params: Mapping[str, str] | None, headers: Mapping[str, str] | None) -> httpx.Response:
        base = self.instance_url or token.instance_url
        if path.startswith("/"):
            if not base:
                raise DestinationError(f"{self.name}: no instance_url: set it in destinations.yml")
            path = base + path
        return await self.session.request(method, path, json=json, content=content, params=params,
                                          headers={**(headers or {}), "Authorization": f"Bearer {token.access_token}"})

    async def _fetch_token(self) -> Token:
        client = self.tokens.client
        if client is None:
            raise DestinationError(f"{self.name}: no access_token and no OAuth client configured")
        response = await self.session.request(
            "POST", client.token_url, content=client.form(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        token = read_token(self.name, response, self.redact)
        self.session.redactor.add([token.access_token])
        return token

    def _check_quota(self) -> None:
        usage = self.usage
        if usage is not None and usage.allocation > 0 and usage.used >= self.max_api_usage * usage.allocation:
            raise QuotaExhaustedError(
                f"{self.name}: the org has used {usage.used} of its {usage.allocation} daily API requests "
                f"(Sforce-Limit-Info), at or above max_api_usage {self.max_api_usage:g}; the sync stopped and "
                "the rows not yet sent go out with the next run")

    def _inspect(self, response: httpx.Response) -> None:
        """Response hook: read the API usage, and map 401 and REQUEST_LIMIT_EXCEEDED precisely."""
        usage = ApiUsage.parse(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.usage = usage
        status = response.status_code
        if status == 401 and response.request.url.path != TOKEN_PATH:
            raise _SessionExpired(self.redact(error_text(response)))
        if status != 403:
            return
        found = errors_of(response)
        if not any(e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED" for e in found):
            return
        text = self.redact(error_text(response))
        daily = "TotalRequests" in text or (usage is not None and usage.used >= usage.allocation)
        if daily:
            raise QuotaExhaustedError(
                f"{self.name}: the org's daily API allocation is used up ({text}); the sync stopped and the "
                "rows not yet sent go out with the next run, or when the rolling 24-hour window frees requests")
        raise RetryableDestinationError(f"{self.name}: Salesforce limits concurrent requests ({text})")
