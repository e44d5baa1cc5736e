"""Small readers of HTTP responses shared by the session and the destinations (pure, no IO)."""

from __future__ import annotations

import math
import time
from datetime import timezone
from email.utils import parsedate_to_datetime

import httpx

SNIPPET_LIMIT = 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Returns None when the header is missing or unreadable, 0 for a date in the past.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; read a date without a zone as GMT too
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def body_snippet(response: httpx.Response, limit: int = SNIPPET_LIMIT) -> str:
    """The start of a response body on one line, for error messages (redact before use)."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError, httpx.ResponseNotRead):
        return "<unreadable body>"
    text = " ".join(text.split())
    if not text:
        return "<empty body>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
