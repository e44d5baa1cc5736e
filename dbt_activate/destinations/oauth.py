"""OAuth 2.0 bearer tokens minted at a token endpoint and cached until a few minutes before expiry.

Google Ads (a refresh token) and Google Sheets (a service account's signed assertion) differ only
in the form they post and the words of a refusal; the exchange goes through the destination's
``HttpSession`` (rate-limited, redacted, mapped to the error tree), and a refused grant is a
``DestinationError``: retrying cannot fix a revoked token or a deleted key.
"""

from __future__ import annotations

import abc
import time
from typing import Any

from dbt_activate.delivery import HttpSession, body_snippet
from dbt_activate.destinations.api import json_object
from dbt_activate.errors import DestinationError

REFRESH_MARGIN = 300  # seconds before expiry when a new token is fetched


async def fetch_token(session: HttpSession, url: str, form: bytes) -> tuple[dict[str, Any] | None, str]:
    """POST a form-encoded OAuth 2 token request: the answer when it carries an ``access_token``,
    else None and why (the endpoint's ``error: error_description``, else its status and body)."""
    response = await session.request("POST", url, content=form,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    data = json_object(response)
    if response.status_code == 200 and data.get("access_token"):
        return data, ""
    detail = (f"{data.get('error')}: {data.get('error_description') or ''}".strip() if data.get("error")
              else body_snippet(response))
    return None, f"HTTP {response.status_code} {detail}"


class BearerToken(abc.ABC):
    """The access token of one credential, minted on demand (``form``) and cached."""

    def __init__(self, name: str, token_url: str, lifetime: float) -> None:
        self.name = name
        self.token_url = token_url
        self.lifetime = lifetime  # when the endpoint does not say (expires_in)
        self._token: str | None = None
        self._expires = 0.0

    @abc.abstractmethod
    def form(self) -> bytes:
        """The form-encoded grant posted to ``token_url``."""

    @abc.abstractmethod
    def refused(self, why: str) -> str:
        """The error message when the endpoint refuses the grant (``why`` is its answer)."""

    def forget(self) -> None:
        """Drop the cached token (the API answered 401: it was revoked or expired early)."""
        self._token = None

    async def header(self, session: HttpSession) -> dict[str, str]:
        """``Authorization: Bearer …`` with a token valid for at least a few more minutes."""
        if self._token is None or time.monotonic() >= self._expires - REFRESH_MARGIN:
            data, why = await fetch_token(session, self.token_url, self.form())
            if data is None:
                raise DestinationError(session.redact(self.refused(why)))
            self._token = str(data["access_token"])
            session.redactor.add([self._token])
            self._expires = time.monotonic() + float(data.get("expires_in") or self.lifetime)
        return {"Authorization": f"Bearer {self._token}"}
