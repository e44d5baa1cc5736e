"""Zendesk bulk jobs: read the ``job_status`` a bulk request returns, poll it, map its results.

Every bulk write (``create_or_update_many``, ``update_many``, ``destroy_many``) answers at once with a
queued ``job_status``; the work happens later. ``GET /api/v2/job_statuses/{id}`` reports ``queued``,
``working``, then ``completed`` with ``results`` (or ``failed``/``killed``)
[developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/]. Results come in
request order, one per item, with ``status`` ``Created``, ``Updated`` or ``Failed`` (``error``,
``details``) [contracts SUMMARY §6; support.zendesk.com community post 4408861015066]; an ``index``,
when present, is preferred over the position.

What a result means for its record:

==============  ==================================================================================
Created,        acknowledged
Updated, ...
Failed          rejected with ``"<error>: <details>"``; except ``RecordNotFound`` (the item names no
                record), which is skipped for update and acknowledged for delete and clear (the
                record is already as wanted)
no result       the job did not account for the record: ``DestinationError``, nothing is confirmed
==============  ==================================================================================

A job that ``failed``, or is still running after ``job_timeout``, raises
``RetryableDestinationError``: every bulk write here is idempotent (it names records by identity),
so sending the batch again is safe. A status read that is throttled (429) or fails (5xx, timeout)
is retried after ``Retry-After`` until ``job_timeout``, never by re-sending the bulk request; if it
still fails then, the batch is left unconfirmed (``DestinationError``) for the next run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult, Operation
from dbt_activate.delivery import HttpSession, body_snippet
from dbt_activate.errors import DestinationError, RetryableDestinationError

NOT_FOUND = "RecordNotFound"
_RUNNING = ("queued", "working")
_REASON_LIMIT = 300
_MAX_POLL_BACKOFF = 30.0


def job_of(response: httpx.Response, what: str) -> Mapping[str, Any]:
    """The ``job_status`` object of a 2xx bulk answer; anything else unreadable fails the batch."""
    try:
        body = response.json()
    except ValueError:
        body = None
    job = body.get("job_status") if isinstance(body, Mapping) else None
    if not isinstance(job, Mapping) or not job.get("id"):
        raise DestinationError(f"{what} answered HTTP {response.status_code} without a job_status: "
                               f"{body_snippet(response)}; the batch is not confirmed")
    return job


def found_external_ids(response: httpx.Response, what: str) -> set[str]:
    """The external ids (case-folded: Zendesk compares them case-insensitively) of a 2xx
    ``organizations/show_many`` answer ``{"organizations": [{"external_id": …}, …]}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    found = body.get("organizations") if isinstance(body, Mapping) else None
    if not isinstance(found, list):
        raise DestinationError(f"{what} answered HTTP {response.status_code} without organizations: "
                               f"{body_snippet(response)}; the batch is not confirmed")
    return {str(o["external_id"]).casefold() for o in found if isinstance(o, Mapping) and o.get("external_id")}


def refusal(response: httpx.Response) -> str:
    """Zendesk's reason for refusing a whole request: ``{"error", "description", "details"}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("error"):
        error = body["error"]
        text = error.get("title") or error.get("message") if isinstance(error, Mapping) else str(error)
        description = body.get("description") or ""
        details = body.get("details")
        reason = f"HTTP {response.status_code} {text}" + (f": {description}" if description else "")
        if details:
            reason += f" {details if isinstance(details, str) else json.dumps(details, default=str)}"
        return reason[:_REASON_LIMIT]
    return f"HTTP {response.status_code}: {body_snippet(response, _REASON_LIMIT)}"


async def wait_for(session: HttpSession, job: Mapping[str, Any], *, interval: float, timeout: float,
                   what: str) -> list[Any]:
    """Poll the job until it is done; its ``results``."""
    deadline = time.monotonic() + timeout
    while True:
        status = str(job.get("status") or "")
        if status == "completed":
            results = job.get("results")
            return list(results) if isinstance(results, list) else []
        if status not in _RUNNING:
            raise RetryableDestinationError(session.redact(
                f"{what}: Zendesk job {job.get('id')} ended {status or 'without a status'}: "
                f"{job.get('message') or 'no message'}; the batch will be sent again"))
        if time.monotonic() >= deadline:
            raise RetryableDestinationError(
                f"{what}: Zendesk job {job.get('id')} still {status} after {timeout:g}s (job_timeout); "
                "the batch will be sent again")
        await asyncio.sleep(interval)
        response = await _poll(session, job, deadline, interval=interval, what=what)
        if not 200 <= response.status_code < 300:
            raise DestinationError(session.redact(
                f"{what}: reading Zendesk job {job['id']} answered {refusal(response)}; the batch is not confirmed"))
        job = job_of(response, what)


async def _poll(session: HttpSession, job: Mapping[str, Any], deadline: float, *, interval: float,
                what: str) -> httpx.Response:
    """One read of the job's status. A throttled or failed read is read again (after ``Retry-After``)
    until ``deadline``: the job was accepted, so letting the error escape would make delivery send
    the bulk request again and start a second job."""
    backoff = max(interval, 1.0)
    while True:
        try:
            return await session.request("GET", f"/api/v2/job_statuses/{job['id']}.json")
        except RetryableDestinationError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DestinationError(
                    f"{what}: Zendesk job {job['id']} was accepted but its status could not be read within "
                    f"job_timeout ({exc}); the batch is not confirmed and is sent again next run") from exc
            # Retry-After when Zendesk gives one (429), else a growing pause so a failing server is not hammered.
            pause = exc.retry_after if exc.retry_after is not None else backoff
            backoff = min(backoff * 2, _MAX_POLL_BACKOFF)
            await asyncio.sleep(min(remaining, pause))


def read_results(results: Sequence[Any], keys: Sequence[str], operation: Operation, result: BatchResult,
                 *, what: str) -> None:
    """Map the job's per-item results to ``keys`` (the records in request order)."""
    by_key: dict[str, Mapping[str, Any]] = {}
    for position, entry in enumerate(results):
        if not isinstance(entry, Mapping):
            continue
        index = entry.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else position
        if 0 <= index < len(keys):
            by_key.setdefault(keys[index], entry)
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise DestinationError(f"{what}: the Zendesk job reported {len(results)} results for {len(keys)} records "
                               f"(none for record {missing[0]!r}); the batch is not confirmed")
    for key in keys:
        entry = by_key[key]
        if str(entry.get("status") or "").lower() != "failed" and entry.get("success") is not False:
            # The record's Zendesk id: what other syncs' references link to (a user's organization_id).
            if operation not in (Operation.DELETE, Operation.CLEAR) and entry.get("id") is not None:
                result.ids[key] = str(entry["id"])
            continue
        error = str(entry.get("error") or entry.get("errors") or "Failed")  # some job types say "errors"
        details = str(entry.get("details") or "")
        reason = f"{error}: {details}"[:_REASON_LIMIT] if details else error
        if error == NOT_FOUND and operation is Operation.UPDATE:
            result.skipped[key] = f"no such Zendesk record ({reason})"
        elif error == NOT_FOUND and operation in (Operation.DELETE, Operation.CLEAR):
            continue
        else:
            result.rejected[key] = reason
