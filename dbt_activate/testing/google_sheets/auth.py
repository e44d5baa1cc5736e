"""The OAuth token endpoint of ``GoogleSheetsEmulator``, and throwaway service accounts for tests.

Google's service-account flow (developers.google.com/identity/protocols/oauth2/service-account):
``POST /token`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``;
the JWT is RS256-signed by the account's key and claims ``iss`` (client_email), ``scope``, ``aud``
(the token URL), ``iat`` and ``exp`` (at most an hour later). The answer is
``{"access_token", "expires_in", "token_type": "Bearer"}``, or ``400 {"error": "invalid_grant",
"error_description": …}``. ``new_service_account`` makes a key pair with ``cryptography`` and the
key file's JSON, its ``token_uri`` pointing at the emulator.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from dbt_activate.testing.messages import Request, Response

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/spreadsheets"


def new_service_account(token_uri: str, email: str = "activate@test-project.iam.gserviceaccount.com"
                        ) -> tuple[dict[str, Any], str]:
    """A key file's JSON and the matching public key (PEM), with a fresh 2048-bit RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    info = {"type": "service_account", "project_id": "test-project", "private_key_id": secrets.token_hex(20),
            "private_key": private, "client_email": email, "client_id": str(secrets.randbelow(10**20)),
            "token_uri": token_uri}
    return info, public


def _grant_error(description: str, error: str = "invalid_grant") -> Response:
    return Response.json({"error": error, "error_description": description}, 400)


def exchange(request: Request, audience: str, keys: Mapping[str, str] | None) -> tuple[Response, str | None]:
    """Check a JWT-bearer grant; the token response and the new access token (None when refused).

    ``keys``: client_email -> public key PEM; ``None`` accepts any signature (for the command line).
    """
    from google.auth import jwt

    form = parse_qs(request.text())
    if form.get("grant_type", [""])[0] != GRANT_TYPE:
        return _grant_error("Invalid grant_type: expected " + GRANT_TYPE, "unsupported_grant_type"), None
    assertion = form.get("assertion", [""])[0]
    try:
        claims: Mapping[str, Any] = jwt.decode(assertion, verify=False)  # type: ignore[no-untyped-call]
    except ValueError:
        return _grant_error("Invalid JWT: malformed assertion"), None
    email = str(claims.get("iss") or "")
    if keys is not None:
        if email not in keys:
            return _grant_error("Invalid grant: account not found"), None
        try:
            jwt.decode(assertion, certs=keys[email], audience=audience,  # type: ignore[no-untyped-call]
                       clock_skew_in_seconds=10)
        except ValueError as exc:
            return _grant_error(f"Invalid JWT Signature. ({exc})"), None
    now = time.time()
    if claims.get("aud") != audience:
        return _grant_error(f"Invalid JWT: audience must be {audience}"), None
    if not isinstance(claims.get("exp"), int) or not isinstance(claims.get("iat"), int) or \
            claims["exp"] < now or claims["exp"] - claims["iat"] > 3600:
        return _grant_error("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                            "reasonable timeframe. Check your iat and exp values in the JWT claim."), None
    if SCOPE not in str(claims.get("scope") or "").split():
        return _grant_error(f"Invalid scope: the Sheets emulator wants {SCOPE}", "invalid_scope"), None
    token = "ya29.emu-" + secrets.token_urlsafe(24)
    body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
    return Response(200, json.dumps(body).encode(), "application/json; charset=utf-8"), token
