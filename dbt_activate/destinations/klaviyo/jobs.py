"""Klaviyo profile bulk import jobs after submitting: polled until complete, their import errors read.

A job submitted by ``klaviyo`` (``POST /api/profile-bulk-import-jobs``, answered ``202``) is
processed by Klaviyo in the background (OpenAPI ``stable.json`` revision 2026-07-15;
developers.klaviyo.com/en/reference/bulk_import_profiles):

1. ``GET /api/profile-bulk-import-jobs/{id}`` every ``job_poll_interval`` until ``status`` is
   ``complete``, which gives its ``failed_count``; ``cancelled``, another HTTP status or
   ``job_timeout`` fail the batch (nothing is acknowledged);
2. when ``failed_count`` > 0, ``GET …/{id}/import-errors?page[size]=100`` and every ``links.next``
   page after it (followed as a path, so the API key only goes to the configured origin).

Reads are never left to the engine's retries: a 429 (with ``Retry-After``) or 5xx on a poll or an
import-errors read is read again, after ``Retry-After`` (else ``job_poll_interval``), until
``job_timeout``; then the last error goes up. Retrying the batch would submit its job again.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from dbt_activate.delivery import HttpSession, body_snippet
from dbt_activate.delivery.jobs import JobPolling, poll_job, read_job
from dbt_activate.destinations.api import json_object
from dbt_activate.destinations.klaviyo.results import json_objects
from dbt_activate.errors import DestinationError, Redactor

JOBS = "/api/profile-bulk-import-jobs"


@dataclass(frozen=True)
class ImportJobPoller:
    """Waits for the import jobs of destination ``name`` and reads their errors, within ``job_timeout``."""

    name: str
    redactor: Redactor
    polling: JobPolling

    async def wait(self, session: HttpSession, job_id: str) -> int:
        """Poll the job until it is complete; its ``failed_count``."""

        async def read() -> dict[str, Any]:
            response = await session.request("GET", f"{JOBS}/{job_id}")
            if response.status_code != 200:
                raise DestinationError(self.redactor(
                    f"{self.name}: polling import job {job_id} answered HTTP {response.status_code}: "
                    f"{body_snippet(response)}; the batch is not acknowledged"))
            attributes = _attributes(response)
            if attributes.get("status") == "cancelled":
                raise DestinationError(f"{self.name}: Klaviyo cancelled import job {job_id}; the batch is not "
                                       "acknowledged and goes with the next run")
            return attributes

        def still_running(attributes: dict[str, Any]) -> Exception:
            return DestinationError(f"{self.name}: import job {job_id} was still "
                                    f"{attributes.get('status') or 'unknown'} after {self.polling.timeout:g}s "
                                    "(job_timeout); the batch is not acknowledged")

        attributes = await poll_job(read, lambda a: a.get("status") == "complete", self.polling,
                                    on_timeout=still_running)
        return int(attributes.get("failed_count") or 0)

    async def import_errors(self, session: HttpSession, job_id: str) -> list[dict[str, Any]]:
        """Every page of the job's import errors."""
        errors: list[dict[str, Any]] = []
        url: str | None = f"{JOBS}/{job_id}/import-errors?page[size]=100"
        deadline = time.monotonic() + self.polling.timeout
        while url:
            response = await read_job(functools.partial(session.request, "GET", url), self.polling, deadline)
            if response.status_code != 200:
                raise DestinationError(self.redactor(
                    f"{self.name}: reading the errors of import job {job_id} answered HTTP {response.status_code}: "
                    f"{body_snippet(response)}; the batch is not acknowledged"))
            body = json_object(response)
            errors.extend(json_objects(body.get("data")))
            url = _same_origin_path(body.get("links"))
        return errors


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
