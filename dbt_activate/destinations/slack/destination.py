"""``slack``: announce new rows in a Slack channel through an incoming webhook.

Configuration (``destinations.yml``); ``text`` and ``blocks`` are Jinja templates this destination
renders per message (deferred keys: destinations.yml renders ``env_var()`` everywhere else)::

    sales_slack:
      type: slack
      webhook_url: "{{ env_var('SLACK_SALES_WEBHOOK') }}"   # https://hooks.slack.com/services/T…/B…/… (secret)
      message: row                                          # row (default): one message per record
                                                            # digest: one message per batch
      text: ":tada: *{{ row.account_name }}* converted ({{ row.plan }}, ${{ row.arr }})"
      blocks:                                               # optional Block Kit, strings are templates
        - type: section
          text: {type: mrkdwn, text: "*{{ row.account_name }}* converted"}

A sync's ``mode`` must be ``create`` (a message for each row new to the model or segment: "tell
sales when an account converts") or ``append`` (also for each changed row); other modes are refused
before anything runs, naming the sync. ``object`` is free text for the templates (``{{ object }}``).
Template variables and escaping are in ``slack_message``.

Contract (contracts SUMMARY §7; api.slack.com/messaging/webhooks, api.slack.com/docs/rate-limits):
``POST`` the webhook URL with ``{"text": …, "blocks": […]}``; Slack answers ``200 ok``, or a 4xx
whose plain-text body names the error. ``400`` (``invalid_payload``, ``no_text``, ``invalid_blocks``,
``too_many_attachments``…) rejects the record (or the digest's records) with that reason; ``403``
(``invalid_token``, ``action_prohibited``), ``404`` (``no_service``, ``channel_not_found``) and
``410`` (``channel_is_archived``) fail the sync: the webhook itself is broken. Slack allows one
message per second per webhook with short bursts (the default ``rate_limit``); a ``429`` is retried
after its ``Retry-After``. A template that renders nothing rejects its record locally (``no_text``).

Idempotency: webhooks have no idempotency key. Within a run, a retried batch does not post again
the messages Slack already acknowledged; a message whose answer was lost (a timeout) may be posted
twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from dbt_activate.core.types import Batch, BatchResult, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.delivery import JSON_HEADERS, body_snippet
from dbt_activate.destinations.api import ApiDestination, clip_reason
from dbt_activate.destinations.base import ConfigKey, skip_all
from dbt_activate.destinations.slack.message import Templates, digest_context, row_context
from dbt_activate.errors import ConfigError, DestinationError

MESSAGES = ("row", "digest")
MAX_BATCH = 100  # rows per digest: beyond that a message is a wall nobody reads
_SENT = (Operation.CREATE, Operation.APPEND)
_BROKEN = {403, 404, 410}  # the webhook, its channel or its app is gone: no message can be posted


class SlackDestination(ApiDestination):
    kind = "slack"
    description = "Post a Slack message per new row (or a digest per batch) through an incoming webhook."
    deferred_keys = ("text", "blocks")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("webhook_url", str, required=True, secret=True,
                  help="The incoming webhook URL (https://hooks.slack.com/services/...); it is a secret."),
        ConfigKey("message", str, default="row",
                  help="row: one message per record (default); digest: one message per batch of records."),
        ConfigKey("text", str,
                  help="Jinja template of the message text (row, key, rows, count, sync, object)."),
        ConfigKey("blocks", list, help="Optional Block Kit blocks; their strings are templates like text."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": f"Records per batch, 1-{MAX_BATCH}: rows per digest, or messages sent in a row.",
        "rate_limit": ", Slack's limit per webhook.",
    }
    modes = frozenset({Mode.CREATE, Mode.APPEND})
    max_batch_size = MAX_BATCH
    batch_size = 50
    max_concurrency = 1  # messages arrive in order
    rate_limit = RateLimit(1, 1.0)

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.url = self.settings.text("webhook_url")
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ConfigError("webhook_url must be an https:// URL (http:// for a local emulator)",
                              location=f"{name}.webhook_url")
        self.message = self.settings.text("message")
        if self.message not in MESSAGES:
            raise ConfigError(f"message must be one of {', '.join(MESSAGES)}, got {self.message!r}",
                              location=f"{name}.message")
        blocks = self.settings.get("blocks")
        if blocks is not None and not (isinstance(blocks, list) and all(isinstance(b, Mapping) for b in blocks)):
            raise ConfigError("blocks must be a list of Block Kit blocks (mappings)", location=f"{name}.blocks")
        self.templates = Templates(name, self.settings.get("text"), blocks, digest=self.message == "digest")
        self._posted: set[str] = set()  # messages Slack acknowledged in this run, by content hash

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        return ""  # one URL, ``webhook_url``, which is a secret

    def secrets(self) -> list[str]:
        """The URL and its token segments (``/services/T…/B…/<token>``), which can surface alone."""
        url = str(self.config.get("webhook_url") or "")
        found = [url] if url else []
        found.extend(s for s in urlsplit(url).path.split("/") if len(s) >= 8)
        return found

    def check_target(self, target: SyncTarget) -> None:
        if target.mode not in self.modes:
            raise ConfigError(f"mode {target.mode.value!r} is not supported by destination {self.name!r} (slack): "
                              "a message announces a new row, so use mode create (rows new to the model) or "
                              "append (new and changed rows)", location=f"sync {target.sync_name}")

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if batch.operation not in _SENT:
            # Mirror deletes and clears have nothing to announce; the modes keep them from coming.
            return skip_all(batch, f"slack does not {batch.operation.value} messages")
        result = BatchResult()
        for keys, payload in self._messages(target, batch, result):
            await self._post(keys, payload, result)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        if batch.operation not in _SENT:
            return {"skipped": f"slack does not {batch.operation.value} messages"}
        messages = [payload for _, payload in self._messages(target, batch, BatchResult())]
        return {"method": "POST", "url": self.redactor(self.url), "messages": messages}

    def estimate_requests(self, operation: Operation, records: int) -> int:
        if operation not in _SENT:
            return 0
        return records if self.message == "row" else super().estimate_requests(operation, records)

    # -- messages --------------------------------------------------------------------------------

    def _messages(self, target: SyncTarget, batch: Batch,
                  result: BatchResult) -> list[tuple[list[str], dict[str, Any]]]:
        """(record keys, webhook payload) per message; records whose template fails go to ``result``."""
        op = batch.operation.value
        if self.message == "digest":
            records = list(batch.records)
            try:
                payload = self.templates.render(digest_context(target.sync_name, target.object, op,
                                                               [r.values for r in records]))
            except ValueError as exc:
                result.rejected.update(dict.fromkeys((r.key for r in records), clip_reason(str(exc))))
                return []
            return [([r.key for r in records], payload)]
        messages = []
        for record in batch.records:
            try:
                messages.append(([record.key], self._render_row(target, op, record)))
            except ValueError as exc:
                result.rejected[record.key] = clip_reason(str(exc))
        return messages

    def _render_row(self, target: SyncTarget, op: str, record: Record) -> dict[str, Any]:
        return self.templates.render(row_context(target.sync_name, target.object, op, record.key, record.values))

    async def _post(self, keys: list[str], payload: dict[str, Any], result: BatchResult) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        fingerprint = hashlib.sha256(body + "\0".join(keys).encode()).hexdigest()
        if fingerprint in self._posted:
            return  # acknowledged before this batch was retried: posting it again would repeat it
        response = await self.session().request("POST", self.url, content=body, headers=JSON_HEADERS)
        status = response.status_code
        if 200 <= status < 300:
            self._posted.add(fingerprint)
            return
        error = self.redactor(body_snippet(response)).strip()
        if status in _BROKEN:
            raise DestinationError(f"{self.name}: Slack answered HTTP {status} {error or response.reason_phrase}: "
                                   "the webhook, its channel or its app is gone; create a new incoming webhook "
                                   "and update webhook_url")
        if 400 <= status < 500:
            result.rejected.update(dict.fromkeys(keys, clip_reason(f"Slack refused the message: {error or status}")))
            return
        raise DestinationError(f"{self.name}: Slack answered HTTP {status} {error}; the message was not acknowledged")
