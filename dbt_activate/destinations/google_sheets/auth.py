"""Service-account access tokens for Google APIs: a JWT signed with the account's key, exchanged.

Google's server-to-server OAuth flow (developers.google.com/identity/protocols/oauth2/service-account):
sign ``{"iss": client_email, "scope": …, "aud": token_uri, "iat", "exp"}`` with RS256 and the
account's private key (google-auth's ``crypt.RSASigner`` and ``jwt.encode``), POST it to the
``token_uri`` of the key file as ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``, and
send the ``access_token`` that comes back as a Bearer token until shortly before it expires. The
exchange goes through the destination's ``HttpSession``, so it is rate-limited, redacted and mapped
to the error tree like every other request; a refused grant is a ``DestinationError`` (retrying
cannot fix a wrong key). The ``token_uri`` is whatever the key file says, which is how tests point
it at the emulator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.auth import crypt, jwt

from dbt_activate.destinations.oauth import BearerToken
from dbt_activate.errors import ConfigError

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_LIFETIME = 3600  # seconds; Google's maximum for a self-signed assertion


def load_service_account(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The key file's JSON from ``credentials_json`` (text or mapping) or ``credentials_file``."""
    raw = config.get("credentials_json")
    path = config.get("credentials_file")
    if raw in (None, "") and not path:
        raise ConfigError("give credentials_file (path to a service-account key file) or credentials_json",
                          location=name)
    if raw not in (None, "") and path:
        raise ConfigError("give credentials_file or credentials_json, not both", location=name)
    where = f"{name}.credentials_json"
    if path:
        where = f"{name}.credentials_file"
        try:
            raw = Path(str(path)).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path!r}: {exc.strerror or exc}", location=where) from None
    info: Any = raw
    if isinstance(raw, str):
        try:
            info = json.loads(raw)
        except ValueError:
            raise ConfigError("is not JSON: expected a service-account key file's content", location=where) from None
    if not isinstance(info, Mapping):
        raise ConfigError("must be a service-account key (a JSON object)", location=where)
    missing = [k for k in ("client_email", "private_key") if not info.get(k)]
    if missing or info.get("type", "service_account") != "service_account":
        raise ConfigError(f"is not a service-account key (type service_account with client_email and "
                          f"private_key); missing: {', '.join(missing) or 'type'}", location=where)
    return dict(info)


class ServiceAccountToken(BearerToken):
    """Mints and caches the access token of one service account."""

    def __init__(self, name: str, info: Mapping[str, Any], scope: str = SCOPE) -> None:
        super().__init__(name, str(info.get("token_uri") or DEFAULT_TOKEN_URI), _LIFETIME)
        self.email = str(info["client_email"])
        self.token_uri = self.token_url
        self.scope = scope
        try:
            self._signer = crypt.RSASigner.from_service_account_info(dict(info))  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"the private_key of {self.email} cannot be loaded ({type(exc).__name__})",
                              location=f"{name}.credentials") from None

    def assertion(self, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        payload = {"iss": self.email, "scope": self.scope, "aud": self.token_uri,
                   "iat": issued, "exp": issued + _LIFETIME}
        signed: bytes = jwt.encode(self._signer, payload)  # type: ignore[no-untyped-call]
        return signed.decode("ascii")

    def form(self) -> bytes:
        return f"grant_type={GRANT_TYPE.replace(':', '%3A')}&assertion={self.assertion()}".encode("ascii")

    def refused(self, why: str) -> str:
        return (f"{self.name}: the token endpoint refused the service account {self.email}: {why}; check the key "
                "file, that the account exists and that its key was not deleted")
