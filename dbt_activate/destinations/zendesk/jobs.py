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

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult, Operation
from dbt_activate.delivery import HttpSession, body_snippet
from dbt_activate.delivery.jobs import JobPolling, poll_job
from dbt_activate.destinations.api import REASON_LIMIT, clip_reason
from dbt_activate.errors import DestinationError, RetryableDestinationError

NOT_FOUND = "RecordNotFound"
_RUNNING = ("queued", "working")


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
        return clip_reason(reason)
    return f"HTTP {response.status_code}: {body_snippet(response, REASON_LIMIT)}"


async def wait_for(session: HttpSession, job: Mapping[str, Any], polling: JobPolling, *, what: str) -> list[Any]:
    """Poll the job (``delivery.jobs``) until it is done; its ``results``. A status read that keeps
    failing is retried until ``job_timeout``: the job was accepted, so letting the error escape would
    make delivery send the bulk request again and start a second job."""

    async def read() -> Mapping[str, Any]:
        response = await session.request("GET", f"/api/v2/job_statuses/{job['id']}.json")
        if not 200 <= response.status_code < 300:
            raise DestinationError(session.redact(
                f"{what}: reading Zendesk job {job['id']} answered {refusal(response)}; the batch is not confirmed"))
        return job_of(response, what)

    def finished(state: Mapping[str, Any]) -> bool:
        status = str(state.get("status") or "")
        if status not in (*_RUNNING, "completed"):
            raise RetryableDestinationError(session.redact(
                f"{what}: Zendesk job {state.get('id')} ended {status or 'without a status'}: "
                f"{state.get('message') or 'no message'}; the batch will be sent again"))
        return status == "completed"

    def still_running(state: Mapping[str, Any]) -> Exception:
        return RetryableDestinationError(
            f"{what}: Zendesk job {state.get('id')} still {state.get('status')} after {polling.timeout:g}s "
            "(job_timeout); the batch will be sent again")

    def unreadable(exc: RetryableDestinationError) -> Exception:
        return DestinationError(
            f"{what}: Zendesk job {job['id']} was accepted but its status could not be read within "
            f"job_timeout ({exc}); the batch is not confirmed and is sent again next run")

    done = await poll_job(read, finished, polling, on_timeout=still_running, on_read_failure=unreadable, first=job)
    results = done.get("results")
    return list(results) if isinstance(results, list) else []


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
        reason = clip_reason(f"{error}: {details}") if details else error
        if error == NOT_FOUND and operation is Operation.UPDATE:
            result.skipped[key] = f"no such Zendesk record ({reason})"
        elif error == NOT_FOUND and operation in (Operation.DELETE, Operation.CLEAR):
            continue
        else:
            result.rejected[key] = reason
