"""Klaviyo profile bulk import jobs after submitting: polled until complete, their import errors read.

A job submitted by ``klaviyo`` (``POST /api/profile-bulk-import-jobs``, answered ``202``) is
processed by Klaviyo in the background (OpenAPI ``stable.json`` revision 2026-07-15;
developers.klaviyo.com/en/reference/bulk_import_profiles):

1. ``GET /api/profile-bulk-import-jobs/{id}`` every ``poll_interval`` until ``status`` is
   ``complete``, which gives its ``failed_count``; ``cancelled``, another HTTP status or
   ``poll_timeout`` fail the batch (nothing is acknowledged);
2. when ``failed_count`` > 0, ``GET …/{id}/import-errors?page[size]=100`` and every ``links.next``
   page after it (followed as a path, so the API key only goes to the configured origin).

Reads are never left to the engine's retries: a 429 (with ``Retry-After``) or 5xx on a poll or an
import-errors read is read again, after ``Retry-After`` (else ``poll_interval``), until
``poll_timeout``; then the last error goes up. Retrying the batch would submit its job again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from dbt_activate.delivery import HttpSession, body_snippet
from dbt_activate.destinations.klaviyo.results import json_object, json_objects
from dbt_activate.errors import DestinationError, Redactor, RetryableDestinationError

JOBS = "/api/profile-bulk-import-jobs"


@dataclass(frozen=True)
class ImportJobPoller:
    """Waits for the import jobs of destination ``name`` and reads their errors, within ``poll_timeout``."""

    name: str
    redactor: Redactor
    poll_interval: float
    poll_timeout: float

    async def wait(self, session: HttpSession, job_id: str) -> int:
        """Poll the job until it is complete; its ``failed_count``."""
        deadline = time.monotonic() + self.poll_timeout
        while True:
            await asyncio.sleep(self.poll_interval)
            response = await self._read(session, f"{JOBS}/{job_id}", deadline)
            attributes = _attributes(response)
            status = str(attributes.get("status") or "")
            if response.status_code != 200:
                raise DestinationError(self.redactor(
                    f"{self.name}: polling import job {job_id} answered HTTP {response.status_code}: "
                    f"{body_snippet(response)}; the batch is not acknowledged"))
            if status == "complete":
                return int(attributes.get("failed_count") or 0)
            if status == "cancelled":
                raise DestinationError(f"{self.name}: Klaviyo cancelled import job {job_id}; the batch is not "
                                       "acknowledged and goes with the next run")
            if time.monotonic() >= deadline:
                raise DestinationError(f"{self.name}: import job {job_id} was still {status or 'unknown'} after "
                                       f"{self.poll_timeout:g}s (poll_timeout); the batch is not acknowledged")

    async def import_errors(self, session: HttpSession, job_id: str) -> list[dict[str, Any]]:
        """Every page of the job's import errors."""
        errors: list[dict[str, Any]] = []
        url: str | None = f"{JOBS}/{job_id}/import-errors?page[size]=100"
        deadline = time.monotonic() + self.poll_timeout
        while url:
            response = await self._read(session, url, deadline)
            if response.status_code != 200:
                raise DestinationError(self.redactor(
                    f"{self.name}: reading the errors of import job {job_id} answered HTTP {response.status_code}: "
                    f"{body_snippet(response)}; the batch is not acknowledged"))
            body = json_object(response)
            errors.extend(json_objects(body.get("data")))
            url = _same_origin_path(body.get("links"))
        return errors

    async def _read(self, session: HttpSession, url: str, deadline: float) -> httpx.Response:
        """GET a job or its errors; a throttled or failed read is read again, not the job resubmitted.

        The job is Klaviyo's: a 429 or 5xx on a poll says nothing about it. Letting the engine retry
        the batch would submit the job again (and poll it again), multiplying the requests that were
        throttled, so reads wait (``Retry-After``, else ``poll_interval``) and repeat until
        ``poll_timeout``; then the last error goes up.
        """
        while True:
            try:
                return await session.request("GET", url)
            except RetryableDestinationError as exc:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(max(exc.retry_after or 0.0, self.poll_interval, 0.05))


def _same_origin_path(links: Any) -> str | None:
    """``links.next`` as a path and query: the key is only ever sent to the configured origin."""
    nxt = links.get("next") if isinstance(links, dict) else None
    if not nxt:
        return None
    parts = urlsplit(str(nxt))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _attributes(response: httpx.Response) -> dict[str, Any]:
    data = json_object(response).get("data")
    attributes = data.get("attributes") if isinstance(data, dict) else None
    return attributes if isinstance(attributes, dict) else {}
