"""Emulator of Slack incoming webhooks (``POST https://hooks.slack.com/services/T…/B…/…``).

Follows ``shared/contracts/SUMMARY.md`` §7, from api.slack.com/messaging/webhooks (payload and
error strings) and api.slack.com/docs/rate-limits (1 message per second per webhook, short bursts
allowed, ``429`` with ``Retry-After`` in seconds).

Emulated: ``POST /services/{team}/{bot}/{token}`` for the webhooks created with ``webhook()`` (the
first one exists from the start: ``url``; ``/services/T00000000/B00000000/<token>`` when ``token`` is
given); a JSON body
(``Content-Type: application/json``) or a form field ``payload=<json>``; ``200`` with the
plain-text body ``ok``; errors as plain text with Slack's status: ``400 invalid_payload`` (not a
JSON object), ``400 no_text`` (neither text nor blocks), ``400 invalid_blocks`` (blocks not a list
of objects with a ``type``, or more than 50), ``404 no_service`` (unknown or revoked webhook),
``410 channel_is_archived`` (``archive()``); text over 40,000 characters is stored truncated, as
Slack does. ``rate_limit=True`` is one message per second; throttled requests get ``429`` with
``Retry-After`` and the body ``rate_limited``.

Not emulated: the Web API (``chat.postMessage``), attachments' fields, mrkdwn rendering, threads,
``response_url``s, the workspace-wide limit.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from dbt_activate.testing.limits import Decision, RateLimit
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

MAX_TEXT = 40_000
MAX_BLOCKS = 50
_STATUS = {"invalid_payload": 400, "no_text": 400, "invalid_blocks": 400, "no_service": 404,
           "channel_is_archived": 410, "invalid_token": 403}


@dataclass(frozen=True)
class SlackMessage:
    """One message a webhook accepted."""

    webhook: str  # the webhook's path, /services/T…/B…/…
    text: str
    blocks: list[dict[str, Any]] | None
    payload: dict[str, Any]


class SlackEmulator(Emulator):
    """Slack incoming webhooks; see the module docstring."""

    vendor = "slack"
    default_rate_limit = RateLimit(1, 1.0)

    def __init__(self, *, token: str | None = None, **knobs: Any) -> None:
        """``token``: the last path segment of the first webhook (random when not given)."""
        super().__init__(token=None, **knobs)  # no header credential: the URL is the secret
        self.webhooks: set[str] = set()
        self.archived: set[str] = set()
        self.messages: list[SlackMessage] = []
        self.first_hook = self._new_hook(token)
        self.route("POST", r"/services/[^/]+/[^/]+/[^/]+", self._post, writes=True, auth=False)

    @property
    def url(self) -> str:
        """The first webhook's URL."""
        return self.base_url + self.first_hook

    def webhook(self) -> str:
        """A new webhook's URL."""
        return self.base_url + self._new_hook()

    def revoke(self, url: str) -> None:
        with self.lock:
            self.webhooks.discard(url.removeprefix(self.base_url))

    def archive(self, url: str) -> None:
        """The webhook's channel is archived: posts answer ``410 channel_is_archived``."""
        with self.lock:
            self.archived.add(url.removeprefix(self.base_url))

    def texts(self) -> list[str]:
        with self.lock:
            return [m.text for m in self.messages]

    # -- vendor shapes -------------------------------------------------------------------------

    def error_response(self, err: ApiError) -> Response:
        return Response.text(err.code or err.message, err.status, "text/html")

    def server_error(self, status: int) -> Response:
        return Response.text("rollup_error" if status == 500 else "service_unavailable", status, "text/html")

    def not_found(self, method: str, path: str) -> Response:
        return Response.text("no_service", 404, "text/html")

    def throttled_response(self, decision: Decision) -> Response:
        response = Response.text("rate_limited", 429, "text/html")
        response.headers["Retry-After"] = str(max(1, int(decision.reset + 0.999)))
        return response

    # -- routes --------------------------------------------------------------------------------

    def _post(self, request: Request) -> Response:
        with self.lock:
            if request.path not in self.webhooks:
                raise _error("no_service")
            if request.path in self.archived:
                raise _error("channel_is_archived")
        payload = _payload(request)
        text = payload.get("text")
        blocks = payload.get("blocks")
        if blocks is not None and not (isinstance(blocks, list) and len(blocks) <= MAX_BLOCKS and all(
                isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)):
            raise _error("invalid_blocks")
        if not (isinstance(text, str) and text.strip()) and not blocks:
            raise _error("no_text")
        message = SlackMessage(request.path, str(text or "")[:MAX_TEXT], blocks, payload)
        with self.lock:
            self.count_records(1)
            self.messages.append(message)
        return Response.text("ok", 200, "text/html")

    def _new_hook(self, token: str | None = None) -> str:
        # A given token makes the URL predictable for the command line: /services/T00000000/B00000000/<token>.
        team, bot = ("00000000", "00000000") if token else (secrets.token_hex(4).upper(), secrets.token_hex(4).upper())
        path = f"/services/T{team}/B{bot}/{token or secrets.token_urlsafe(18)}"
        with self.lock:
            self.webhooks.add(path)
        return path


def _error(code: str) -> ApiError:
    return ApiError(_STATUS[code], code, code)


def _payload(request: Request) -> dict[str, Any]:
    body = request.text()
    if (request.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
        body = parse_qs(body).get("payload", [""])[0]
    try:
        payload = json.loads(body)
    except ValueError:
        raise _error("invalid_payload") from None
    if not isinstance(payload, dict):
        raise _error("invalid_payload")
    return payload


def serve(port: int, host: str = "127.0.0.1", *,
          ready: Callable[[SlackEmulator], None] | None = None, **options: Any) -> None:
    with SlackEmulator(host=host, port=port, **options) as emulator:
        if ready is not None:
            ready(emulator)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
