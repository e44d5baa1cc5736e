"""Graph API answers -> outcomes (pure): errors, throttling, and the usage headers.

Errors are ``{"error": {"message", "type", "code", "error_subcode", "error_user_title",
"error_user_msg", "is_transient", "fbtrace_id"}}`` (developers.facebook.com/docs/graph-api/guides/error-handling).
What each means here:

==========================================  ============================================================
``code`` 4, 17, 32, 613 (and 80000-80014,   throttled (developers.facebook.com/docs/graph-api/overview/
the business use case limits)               rate-limiting): ``RetryableDestinationError`` after the
                                            ``estimated_time_to_regain_access`` of
                                            ``X-Business-Use-Case-Usage`` (minutes); the shared rate
                                            limiter pauses every batch that long
``code`` 190, 102 (access token), 10, 200   ``DestinationError``: the token or its permissions; the
(permission)                                sync stops
``code`` 100 (invalid parameter)            the request's events or users are refused (``Conversions
                                            API``: one invalid event rejects the whole request)
5xx, ``is_transient``                       retried
==========================================  ============================================================

``X-Business-Use-Case-Usage`` (``{"<business id>": [{"type", "call_count", "total_cputime",
"total_time", "estimated_time_to_regain_access"}]}``) and ``X-App-Usage`` (``{"call_count",
"total_cputime", "total_time"}``) give the percentage of the hourly allowance used: from
``SLOW_DOWN_AT`` % on, the limiter pauses one window before the next request, so the sync slows down
before Meta throttles it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from dbt_activate.delivery import body_snippet, current_limiter
from dbt_activate.destinations.api import clip_reason
from dbt_activate.errors import DestinationError, Redactor, RetryableDestinationError

THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
AUTH_CODES = frozenset({190, 102, 10, 200})
INVALID_PARAMETER = 100
SLOW_DOWN_AT = 90


def error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def code_of(error: Mapping[str, Any]) -> int | None:
    try:
        return int(error["code"])
    except (KeyError, TypeError, ValueError):
        return None


def reason(error: Mapping[str, Any], response: httpx.Response, redactor: Redactor) -> str:
    """Meta's words for a refusal: the user-facing title and message when it gives them."""
    if not error:
        return redactor(f"HTTP {response.status_code}: {body_snippet(response)}")
    title = error.get("error_user_title")
    message = error.get("error_user_msg") or error.get("message") or "no message"
    text = f"#{error.get('code')}" + (f"/{error['error_subcode']}" if error.get("error_subcode") else "")
    text = redactor(f"{text} {title}: {message}" if title else f"{text} {message}")
    return clip_reason(text)


def usage(headers: httpx.Headers) -> tuple[int, float | None]:
    """The highest percentage used in the usage headers, and Meta's wait in seconds, if it gave one."""
    highest, wait = 0, None
    for name in ("X-Business-Use-Case-Usage", "X-Ad-Account-Usage", "X-App-Usage"):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        entries: list[Any] = [data] if name != "X-Business-Use-Case-Usage" else [
            e for v in (data.values() if isinstance(data, dict) else []) for e in (v if isinstance(v, list) else [])]
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            for key in ("call_count", "total_cputime", "total_time", "acc_id_util_pct"):
                if isinstance(entry.get(key), (int, float)):
                    highest = max(highest, int(entry[key]))
            minutes = entry.get("estimated_time_to_regain_access")
            if isinstance(minutes, (int, float)) and minutes > 0:
                wait = max(wait or 0.0, float(minutes) * 60)
    return highest, wait


def check_response(name: str, response: httpx.Response, redactor: Redactor) -> None:
    """The session's response hook: throttling (codes and usage headers) and token errors, in Meta's words."""
    used, wait = usage(response.headers)
    limiter = current_limiter()
    error = error_of(response)
    code = code_of(error)
    if code in THROTTLE_CODES:
        pause = wait if wait is not None else (limiter.window if limiter is not None else None)
        why = reason(error, response, redactor)
        raise RetryableDestinationError(redactor(f"{name}: Meta is throttling requests ({why})"), retry_after=pause)
    if limiter is not None and used >= SLOW_DOWN_AT:
        limiter.throttled(wait)  # close to the hourly allowance: one window (or Meta's wait) before the next
    if code in AUTH_CODES or response.status_code in (401, 403):
        raise DestinationError(redactor(
            f"{name}: Meta refused the access token ({reason(error, response, redactor)}); check access_token in "
            "destinations.yml: a system user token with ads_management (and access to the pixel or audience)"))
    if error.get("is_transient") is True and response.status_code < 500:
        raise RetryableDestinationError(redactor(f"{name}: a passing Meta error ({reason(error, response, redactor)})"))
