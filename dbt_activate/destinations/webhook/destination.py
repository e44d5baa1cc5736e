"""``webhook``: send batches of records as JSON to any HTTP endpoint.

Configuration (``destinations.yml``)::

    my_hook:
      type: webhook
      url: https://example.com/hooks/dbt        # required
      method: POST                              # POST (default) or PUT
      headers: {Authorization: "Bearer {{ env_var('HOOK_TOKEN') }}"}   # values are secrets
      batch_size: 100
      timeout: 30                               # seconds per request
      verify_tls: true                          # false is allowed, and warned about
      ca_bundle: /etc/ssl/private-ca.pem        # CA for a private certificate
      rate_limit: {requests: 10, per_seconds: 1}

Request (the public contract; every mode and operation is supported). One request per batch, with
``Content-Type: application/json`` and an ``Idempotency-Key`` header that is the same on every
retry of the same batch, so a receiver can ignore duplicates::

    {"sync": "chauffeurs__hook__persons", "object": "persons", "operation": "upsert",
     "run_id": "…",
     "records": [{"key": "42", "operation": "upsert",
                  "record": {"driver_id": 42, "email": "ada@example.com",
                             "signed_up": "2024-05-01", "score": 9.5}}]}

``operation`` is one of ``upsert|update|create|append|delete|clear``; for ``delete`` and ``clear``
``record`` holds only the identity fields. Values follow ``dbt_activate.delivery.encoding``: dates and
timestamps as ISO 8601 strings (a timestamp with a time zone in UTC, ``2024-05-01T12:00:00+00:00``,
whatever the warehouse session's zone; one without a time zone without an offset), decimals as
numbers when a 64-bit float holds them exactly and as strings otherwise, binary as base64. A
record with NaN or ±Infinity (or a type JSON cannot carry) is not sent: it is rejected on our side
with the field named in the reason.

Response:

- ``2xx``: every record is acknowledged, except those listed in an optional JSON body
  ``{"rejected": [{"key": "42", "reason": "…"}], "skipped": [{"key": "7", "reason": "…"}]}``
  (skipped: e.g. an ``update`` of a record the receiver does not have). Any other body is ignored.
- ``4xx`` other than 401/403/429: the whole batch is rejected, with the status and the start of the
  body as the reason; the rows are retried next run.
- ``401``/``403``: the sync fails (check the headers); ``429``, ``5xx``, timeouts and dropped
  connections are retried with backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from dbt_activate.core.types import Batch, BatchResult, SyncTarget
from dbt_activate.delivery import UnencodableValue, body_snippet, credential_values, encode_record
from dbt_activate.destinations.api import ApiDestination, clip_reason, header_values
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.errors import ConfigError, DestinationError

METHODS = ("POST", "PUT")


class WebhookDestination(ApiDestination):
    kind = "webhook"
    description = "POST or PUT batches of records as JSON to any HTTP endpoint."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("url", str, required=True, help="Endpoint that receives the batches (http or https)."),
        ConfigKey("method", str, default="POST", help="HTTP method: POST or PUT."),
        ConfigKey("headers", dict, default={}, secret=True,
                  help="Extra request headers, e.g. Authorization; their values are treated as secrets."),
    )
    batch_size = 100

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.url = self.settings.text("url")
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"url must start with http:// or https://, got scheme {scheme!r}",
                              location=f"{name}.url")
        self.method = self.settings.text("method").upper()
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}",
                              location=f"{name}.method")
        self.headers = header_values(self.settings.get('headers'), location=f"{name}.headers",
                                     problem="headers must be a mapping of header name to value")

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        return ""  # one URL, ``url``, which names the whole endpoint

    def secrets(self) -> list[str]:
        """Header values (and the token inside ``Bearer <token>``) and credentials inside the URL."""
        found = credential_values(self.config.get("headers") or {}, all_headers=True)
        found.extend(_url_secrets(str(self.config.get("url") or "")))
        return found

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        payload, sent = self._payload(target, batch, result)
        if not sent:
            return result
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        headers = {
            "Content-Type": "application/json",
            # Same body, same key: a retried batch carries the key of its first attempt.
            "Idempotency-Key": hashlib.sha256(body).hexdigest()[:32],
        }
        response = await self.session().request(self.method, self.url, content=body, headers=headers)
        self._read_response(response, sent, result)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        payload, _ = self._payload(target, batch, BatchResult())
        return {"method": self.method, "url": self.redactor(self.url), "body": payload}

    def session_headers(self) -> Mapping[str, str]:
        return self.headers

    def _payload(self, target: SyncTarget, batch: Batch,
                 result: BatchResult) -> tuple[dict[str, Any], set[str]]:
        """The request body and the keys it carries; records JSON cannot carry go to ``result``."""
        operation = batch.operation.value
        records: list[dict[str, Any]] = []
        for record in batch.records:
            try:
                values = encode_record(record.values)
            except UnencodableValue as exc:
                result.rejected[record.key] = str(exc)
                continue
            records.append({"key": record.key, "operation": operation, "record": values})
        payload = {"sync": target.sync_name, "object": target.object, "operation": operation,
                   "run_id": target.run_id, "records": records}
        return payload, {r["key"] for r in records}

    def _read_response(self, response: httpx.Response, sent: set[str], result: BatchResult) -> None:
        status = response.status_code
        if 200 <= status < 300:
            for field, listed in _listed_keys(self.name, response).items():
                outcome = result.rejected if field == "rejected" else result.skipped
                outcome.update({k: self.redactor(v) for k, v in listed.items() if k in sent})
            return
        reason = self.redactor(f"HTTP {status} {response.reason_phrase}: {body_snippet(response)}")
        if 400 <= status < 500:
            result.rejected.update(dict.fromkeys(sent, clip_reason(reason)))
            return
        # 1xx/3xx: nothing says whether the records arrived, so the batch is not acknowledged.
        raise DestinationError(f"{self.name}: {self.method} {self.redactor(self.url)} answered {reason}; "
                               "a webhook must answer 2xx (redirects are not followed: use the final URL)")


def _listed_keys(name: str, response: httpx.Response) -> dict[str, dict[str, str]]:
    """``{"rejected": {key: reason}, "skipped": {...}}`` from a 2xx body; empty for other bodies."""
    try:
        data = response.json()
    except ValueError:
        return {}  # "ok", an empty body, HTML: a plain acknowledgement
    if not isinstance(data, dict):
        return {}
    listed: dict[str, dict[str, str]] = {}
    for field in ("rejected", "skipped"):
        items = data.get(field)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, dict) and "key" in i for i in items):
            # We cannot tell which records were refused, so none may be marked as synced.
            raise DestinationError(
                f"{name}: the response field {field!r} must be a list of {{\"key\": ..., \"reason\": ...}} "
                "objects; the batch is not acknowledged")
        listed[field] = {str(i["key"]): clip_reason(str(i.get("reason") or f"{field} by the receiver"))
                         for i in items}
    return listed


def _url_secrets(url: str) -> list[str]:
    """Credentials that URLs carry: a password, query values, capability tokens in the path.

    Slack- or Zapier-style hook URLs are secrets in themselves (``/services/T0/B0/XXXXXXXX``), so
    long path segments that mix letters and digits are treated as tokens too.
    """
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    # Short values (`format=json`) are settings, not tokens; redacting them would garble messages.
    found.extend(v for _, v in parse_qsl(parts.query) if len(v) >= 8)
    for segment in parts.path.split("/"):
        if len(segment) >= 16 and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment):
            found.append(segment)
    return found
