"""Salesforce OAuth 2.0: which grant the config allows, the token request and its answer, one shared token.

Two ways to authenticate, from ``destinations.yml``:

- ``access_token`` (with ``instance_url``): a bearer token obtained elsewhere, used as is;
- a connected app: ``client_id`` with ``refresh_token`` (refresh-token grant; ``client_secret`` when the
  app requires it) or with ``client_secret`` alone (client-credentials grant, against the org's My
  Domain as ``login_url``). ``POST {login_url}/services/oauth2/token`` answers the bearer token and
  the org's ``instance_url``.

A token expires without notice: the API answers 401 ``INVALID_SESSION_ID``. The connected app then
gets a new one, once: concurrent requests that met the same expired token share one renewal
(``TokenHolder.renew`` compares token generations), and a token refused right after renewal fails
the sync instead of looping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from dbt_activate.delivery import body_snippet
from dbt_activate.errors import DestinationError

TOKEN_PATH = "/services/oauth2/token"


@dataclass(frozen=True)
class OAuthClient:
    login_url: str
    client_id: str
    client_secret: str | None = None
    refresh_token: str | None = None

    @property
    def grant(self) -> str:
        return "refresh_token" if self.refresh_token else "client_credentials"

    @property
    def token_url(self) -> str:
        return self.login_url.rstrip("/") + TOKEN_PATH

    def form(self) -> bytes:
        """The ``application/x-www-form-urlencoded`` body of the token request."""
        fields = {"grant_type": self.grant, "client_id": self.client_id}
        if self.client_secret:
            fields["client_secret"] = self.client_secret
        if self.refresh_token:
            fields["refresh_token"] = self.refresh_token
        return urlencode(fields).encode()


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str | None  # None for a configured access_token: instance_url comes from the config


def read_token(name: str, response: httpx.Response, redact: Callable[[str], str]) -> Token:
    """The token in a token-endpoint response, or a ``DestinationError`` that says what to fix."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 200 and isinstance(data, dict) and data.get("access_token"):
        instance = data.get("instance_url")
        return Token(str(data["access_token"]), str(instance) if instance else None)
    if isinstance(data, dict) and data.get("error"):
        detail = f"{data['error']}: {data.get('error_description') or ''}".rstrip(": ")
    else:
        detail = f"HTTP {response.status_code}: {body_snippet(response)}"
    raise DestinationError(redact(
        f"{name}: Salesforce refused the OAuth token request ({detail}); check client_id, client_secret, "
        "refresh_token and login_url in destinations.yml (client credentials need the org's My Domain "
        "as login_url)"))


Fetch = Callable[[], Awaitable[Token]]


class TokenHolder:
    """The bearer token of one destination; ``generation`` counts renewals."""

    def __init__(self, name: str, static: str | None, client: OAuthClient | None) -> None:
        self.name = name
        self.client = client
        self.token: Token | None = Token(static, None) if static else None
        self.generation = 0
        self._lock: asyncio.Lock | None = None  # made in the run's event loop

    @property
    def can_renew(self) -> bool:
        return self.client is not None

    async def get(self, fetch: Fetch) -> tuple[Token, int]:
        """The current token (fetched on first use) and its generation."""
        if self.token is None:
            async with self._locked():
                if self.token is None:
                    self.token = await fetch()
                    self.generation += 1
        return self.token, self.generation

    async def renew(self, seen: int, fetch: Fetch) -> tuple[Token, int]:
        """A new token after generation ``seen`` was refused; shared by concurrent callers."""
        if self.client is None:
            raise DestinationError(
                f"{self.name}: Salesforce refused the access token (401 INVALID_SESSION_ID: expired or "
                "revoked); set a new access_token, or configure client_id with refresh_token or "
                "client_secret so dbt-activate can renew it")
        async with self._locked():
            if self.generation == seen:
                self.token = await fetch()
                self.generation += 1
            assert self.token is not None
            return self.token, self.generation

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock
