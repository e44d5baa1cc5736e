"""The Intercom calls a contacts sync makes, and how their answers map to the error tree, once.

One ``HttpSession`` carries every call, with ``Authorization: Bearer <token>`` and the
``Intercom-Version`` header. Intercom has no bulk write (contracts SUMMARY §6), so a batch is many
requests in flight, bounded by ``CONNECTIONS`` and paced by the run's rate limiter.

- 429 (``rate_limit_exceeded``): retryable, waiting until ``X-RateLimit-Reset`` (epoch seconds;
  developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting); the limiter is told.
  ``X-RateLimit-Remaining`` of other answers feeds the limiter, which stays under the vendor's count.
- 401/403 (by ``HttpSession``): fatal for the destination; later calls fail the same way unsent.
- 404 on PUT/DELETE/archive of a known id: ``None`` (a stale id; the caller searches again).
- 409 on create: ``Conflict`` carrying the existing contact's id when Intercom names it
  ("A contact matching those details already exists with id=…"), e.g. one not yet searchable.
- other 4xx: ``RecordFailed`` with the ``error.list`` messages, rejecting that record only.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from dbt_activate.delivery import HttpSession, body_snippet, current_limiter
from dbt_activate.destinations.api import REASON_LIMIT, clip_reason, json_object
from dbt_activate.destinations.record_ids import RecordFailed
from dbt_activate.errors import DestinationError, RetryableDestinationError

CONNECTIONS = 10  # requests of one destination in flight at once
_EXISTING_ID = re.compile(r"\bid=([0-9a-fA-F]+)")


class Conflict(RecordFailed):
    """A create collided with an existing contact; ``existing`` is its id when Intercom said it."""

    def __init__(self, message: str, existing: str | None) -> None:
        super().__init__(message)
        self.existing = existing


class IntercomApi:
    """The calls, over the destination's ``session`` (whose response hook is ``inspect``)."""

    def __init__(self, name: str, session: HttpSession) -> None:
        self.name = name
        self.session = session
        self.fatal: DestinationError | None = None
        self._slots: asyncio.Semaphore | None = None

    async def search(self, field: str, value: str, role: str) -> list[str]:
        """Ids of the contacts of ``role`` whose ``field`` equals ``value``."""
        query = {"operator": "AND", "value": [{"field": field, "operator": "=", "value": value},
                                              {"field": "role", "operator": "=", "value": role}]}
        response = await self._send("POST", "/contacts/search", {"query": query, "pagination": {"per_page": 50}})
        self._check(response)
        data = json_object(response).get("data")
        found: list[str] = []
        for contact in data if isinstance(data, list) else []:
            if not isinstance(contact, Mapping) or contact.get("id") is None:
                continue
            stored = contact.get(field)
            # Never update a contact that does not match. Only emails compare without case in
            # Intercom: external_id "ABC" is another contact than "abc".
            if stored is not None and not _same(field, str(stored), value):
                continue
            if str(contact["id"]) not in found:
                found.append(str(contact["id"]))
        return found

    async def create(self, body: Mapping[str, Any]) -> str | None:
        response = await self._send("POST", "/contacts", body)
        if response.status_code == 409:
            reason = self._reason(response)
            found = _EXISTING_ID.search(reason)
            raise Conflict(reason, found.group(1) if found else None)
        self._check(response)
        created = json_object(response).get("id")
        return None if created is None else str(created)

    async def update(self, contact_id: str, body: Mapping[str, Any]) -> bool:
        """PUT the contact; False when the id no longer exists."""
        return await self._on_contact("PUT", f"/contacts/{contact_id}", body)

    async def delete(self, contact_id: str, *, archive: bool) -> bool:
        if archive:
            return await self._on_contact("POST", f"/contacts/{contact_id}/archive", None)
        return await self._on_contact("DELETE", f"/contacts/{contact_id}", None)

    async def unarchive(self, contact_id: str) -> bool:
        return await self._on_contact("POST", f"/contacts/{contact_id}/unarchive", None)

    async def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        """Any other request (companies and attachments, ``companies.py``); its answer, unchecked."""
        return await self._send(method, path, body)

    def check(self, response: httpx.Response) -> None:
        """``RecordFailed`` for a 4xx, ``DestinationError`` for any other answer that is not a 2xx."""
        self._check(response)

    def reason(self, response: httpx.Response) -> str:
        return self._reason(response)

    def answer(self, response: httpx.Response) -> Mapping[str, Any]:
        """The JSON object of an answer ({} for anything else)."""
        return json_object(response)

    async def _on_contact(self, method: str, path: str, body: Mapping[str, Any] | None) -> bool:
        response = await self._send(method, path, body)
        if response.status_code in (404, 410):
            return False
        self._check(response)
        return True

    async def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> httpx.Response:
        if self.fatal is not None:
            raise self.fatal
        if self._slots is None:
            self._slots = asyncio.Semaphore(CONNECTIONS)
        async with self._slots:
            try:
                return await self.session.request(method, path, json=body)
            except DestinationError as exc:
                if not isinstance(exc, RetryableDestinationError):
                    self.fatal = self.fatal or exc
                raise

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if 400 <= status < 500:
            raise RecordFailed(f"Intercom answered HTTP {status}: {self._reason(response)}")
        if not 200 <= status < 300:
            raise DestinationError(self.session.redact(
                f"{self.name}: {response.request.method} {response.request.url.path} answered HTTP {status}: "
                f"{body_snippet(response)}"))

    def _reason(self, response: httpx.Response) -> str:
        """``code: message`` of each error of Intercom's ``{"type": "error.list", "errors": [...]}``."""
        errors = json_object(response).get("errors")
        parts = [f"{e.get('code')}: {e.get('message')}" if e.get("code") else str(e.get("message"))
                 for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []
        text = "; ".join(parts) if parts else body_snippet(response, REASON_LIMIT)
        return self.session.redact(clip_reason(text))

    def inspect(self, response: httpx.Response) -> None:
        """Response hook: Intercom's rate-limit headers, before ``HttpSession`` maps statuses."""
        headers, limiter = response.headers, current_limiter()
        reset = _number(headers.get("X-RateLimit-Reset"))
        wait = None if reset is None else max(0.0, reset - time.time())
        if response.status_code != 429:
            remaining = _number(headers.get("X-RateLimit-Remaining"))
            if limiter is not None and remaining is not None:
                limiter.observe(int(remaining), wait if wait else None)
            return
        if limiter is not None:
            limiter.throttled(wait)
        request = response.request
        raise RetryableDestinationError(self.session.redact(
            f"{self.name}: {request.method} {request.url.path} was throttled: HTTP 429"
            f"{'' if wait is None else f' (retry after {wait:.0f}s)'}: {self._reason(response)}"), retry_after=wait)


def _same(field: str, stored: str, wanted: str) -> bool:
    """Whether a search hit's ``field`` is the value searched for (emails ignore case)."""
    return stored.casefold() == wanted.casefold() if field == "email" else stored == wanted


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
