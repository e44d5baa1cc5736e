"""OAuth 2.0 for the Google Ads API: a refresh token exchanged for short-lived access tokens.

Google's installed-app / web-server flow (developers.google.com/identity/protocols/oauth2/web-server,
"Refreshing an access token"; developers.google.com/google-ads/api/docs/oauth/overview):
``POST https://oauth2.googleapis.com/token`` with the form ``grant_type=refresh_token``,
``client_id``, ``client_secret`` and ``refresh_token``; the answer is ``{"access_token",
"expires_in", "scope", "token_type": "Bearer"}``, or ``400 {"error": "invalid_grant",
"error_description": "Token has been expired or revoked."}``. The access token is sent as
``Authorization: Bearer`` until five minutes before it expires. The exchange goes through the
destination's ``HttpSession`` (rate-limited, redacted, mapped to the error tree); a refused grant
is a ``DestinationError``: retrying cannot fix a revoked token.
"""

from __future__ import annotations

from urllib.parse import urlencode

from dbt_activate.destinations.oauth import BearerToken

TOKEN_URL = "https://oauth2.googleapis.com/token"
_DEFAULT_LIFETIME = 3600


class RefreshTokenAuth(BearerToken):
    """The access tokens of one OAuth client and refresh token, minted on demand and cached."""

    def __init__(self, name: str, client_id: str, client_secret: str, refresh_token: str,
                 token_url: str = TOKEN_URL) -> None:
        super().__init__(name, token_url, _DEFAULT_LIFETIME)
        self._form = urlencode({"grant_type": "refresh_token", "client_id": client_id,
                                "client_secret": client_secret, "refresh_token": refresh_token}).encode("ascii")

    def form(self) -> bytes:
        return self._form

    def refused(self, why: str) -> str:
        return (f"{self.name}: Google's token endpoint refused the refresh token: {why}; create a new refresh "
                "token for this OAuth client (client_id, client_secret, refresh_token in destinations.yml)")
