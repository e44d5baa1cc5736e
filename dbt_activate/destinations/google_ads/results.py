"""Google Ads API answers -> per-row results and errors (pure: a response in, outcomes out).

Errors are the REST form of ``google.rpc.Status`` (``protos/google/rpc/status.proto``)::

    {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
               "status": "RESOURCE_EXHAUSTED",
               "details": [{"@type": "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure",
                            "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
                                        "message": "Too many requests. Retry in 40591 seconds.",
                                        "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER",
                                            "rateName": "Number of operations for basic access",
                                            "retryDelay": "40591s"}}}],
                            "requestId": "xN_KaZRHZuU6Rlgt3cM2uQ"}]}}

(that body verbatim in github.com/PipedreamHQ/pipedream/issues/21554; the quotas are at
developers.google.com/google-ads/api/docs/best-practices/quotas). What each means here:

================================  =================================================================
429 with a ``retryDelay`` of at   ``QuotaExhaustedError``: a daily operations quota (15,000 a day
least ``DAILY_DELAY`` seconds     with basic access) is used up; the sync stops and the rest goes
                                  with the next run
other 429 (short-term rate)       ``RetryableDestinationError`` after ``retryDelay``; the shared
                                  rate limiter pauses every batch that long
401, 403                          ``DestinationError`` naming Google's error code (an OAuth token,
                                  developer token or ``login-customer-id`` problem): the sync stops
5xx                               retried by the engine (``HttpSession``)
any other 4xx                     every row of the request is rejected with Google's message
================================  =================================================================

With ``partialFailure``/``enablePartialFailure`` a 200 carries ``partialFailureError``: its
``GoogleAdsFailure`` errors name the failed operation by ``location.fieldPathElements``
(``{"fieldName": "conversions", "index": 3}``); only those rows are rejected, with Google's code and
message (developers.google.com/google-ads/api/docs/best-practices/partial-failures).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from dbt_activate.delivery import body_snippet
from dbt_activate.destinations.api import clip_reason, json_object
from dbt_activate.errors import DestinationError, QuotaExhaustedError, Redactor, RetryableDestinationError

DAILY_DELAY = 900.0  # seconds: a retryDelay this long is no short-term rate limit (RetryPolicy.max_retry_after)
_SECONDS = re.compile(r"([0-9.]+)s")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def failures(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``GoogleAdsFailure.errors`` inside a ``google.rpc.Status`` (the error, or a partial failure)."""
    found: list[dict[str, Any]] = []
    for detail in _dicts(status.get("details")):
        if str(detail.get("@type", "")).endswith("GoogleAdsFailure"):
            found.extend(_dicts(detail.get("errors")))
    return found


def error_code(error: Mapping[str, Any]) -> str:
    """``{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}}`` -> ``RESOURCE_EXHAUSTED``."""
    codes = error.get("errorCode")
    if isinstance(codes, dict):
        for value in codes.values():
            return str(value)
    return ""


def reason(error: Mapping[str, Any], redactor: Redactor) -> str:
    code = error_code(error)
    message = str(error.get("message") or "no message")
    text = redactor(f"{code}: {message}" if code else message)
    return clip_reason(text)


def status_reason(status: Mapping[str, Any], redactor: Redactor) -> str:
    """One line for a whole-request error: the first Google Ads error, else the rpc status."""
    errors = failures(status)
    if errors:
        return reason(errors[0], redactor) + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    return redactor(f"{status.get('status') or status.get('code') or 'error'}: {status.get('message') or ''}").strip()


def retry_delay(errors: Sequence[Mapping[str, Any]]) -> float | None:
    for error in errors:
        details = error.get("details")
        quota = details.get("quotaErrorDetails") if isinstance(details, dict) else None
        found = _SECONDS.fullmatch(str(quota.get("retryDelay") or "")) if isinstance(quota, dict) else None
        if found:
            return float(found.group(1))
    return None


def check_response(name: str, response: httpx.Response, redactor: Redactor) -> None:
    """The session's response hook: quota, throttling and credential errors in Google's words."""
    status = response.status_code
    if status not in (401, 403, 429):
        return
    body = json_object(response).get("error")
    error = body if isinstance(body, dict) else {}
    errors = failures(error)
    what = status_reason(error, redactor) if error else body_snippet(response)
    if status == 429:
        delay = retry_delay(errors)
        if delay is not None and delay >= DAILY_DELAY:
            raise QuotaExhaustedError(redactor(
                f"{name}: a Google Ads API quota is used up ({what}); the sync stopped and its unsent rows go "
                f"with the next run, once the quota has room again (in about {delay / 3600:.1f} h)"))
        raise RetryableDestinationError(redactor(f"{name}: Google Ads is throttling requests ({what})"),
                                        retry_after=delay)
    raise DestinationError(redactor(
        f"{name}: Google Ads refused the credentials: HTTP {status} {what}; check developer_token, the OAuth "
        "client and refresh token, customer_id and login_customer_id (the manager account) in destinations.yml"))


def partial_failures(body: Mapping[str, Any], field: str, redactor: Redactor
                     ) -> tuple[dict[int, tuple[str, str]], str]:
    """Row index -> (error code, reason) of a 200's ``partialFailureError``; and the reason of an error
    naming no row."""
    status = body.get("partialFailureError")
    if not isinstance(status, dict):
        return {}, ""
    by_index: dict[int, tuple[str, str]] = {}
    unnamed = ""
    for error in failures(status):
        index = _operation_index(error, field)
        if index is None:
            unnamed = unnamed or reason(error, redactor)
        else:
            by_index.setdefault(index, (error_code(error), reason(error, redactor)))
    if not by_index and not unnamed and status.get("message"):
        unnamed = redactor(str(status["message"]))
    return by_index, unnamed


def _operation_index(error: Mapping[str, Any], field: str) -> int | None:
    location = error.get("location")
    elements = location.get("fieldPathElements") if isinstance(location, dict) else None
    for element in _dicts(elements):
        if element.get("fieldName") == field and isinstance(element.get("index"), int):
            return int(element["index"])
    return None


def request_refused(name: str, response: httpx.Response, redactor: Redactor) -> str:
    """The reason for every row of a request refused whole (a 4xx other than 401/403/429)."""
    body = json_object(response).get("error")
    if isinstance(body, dict):
        return f"HTTP {response.status_code} {status_reason(body, redactor)}"
    return redactor(f"HTTP {response.status_code}: {body_snippet(response)}")


def unexpected(name: str, response: httpx.Response, what: str, redactor: Redactor) -> DestinationError:
    return DestinationError(redactor(f"{name}: {what} answered HTTP {response.status_code}: "
                                     f"{body_snippet(response)}; the batch is not acknowledged"))
