"""Bulk API 2.0 ingest jobs for large upserts: create, upload CSV, UploadComplete, poll, read results.

1. ``POST /jobs/ingest`` ``{"object", "operation": "upsert", "externalIdFieldName", "contentType":
   "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}``;
2. ``PUT /jobs/ingest/{id}/batches`` with the CSV (header row first; the external id is a column);
3. ``PATCH /jobs/ingest/{id}`` ``{"state": "UploadComplete"}``, without which nothing is processed;
4. ``GET /jobs/ingest/{id}`` with growing pauses (``delivery.jobs``) until ``JobComplete``, ``Failed`` or ``Aborted``;
5. ``failedResults/`` (``sf__Id, sf__Error`` + the original columns: rejected records, mapped back by
   the external id) and ``unprocessedrecords/`` (the original columns: never tried).

``submit`` and ``finish`` are separate so a retried batch resumes polling the job it already
submitted instead of sending the rows a second time. Polls and result reads finish work already
started, so the quota reserve lets them through (``new_work=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from dbt_activate.delivery import JSONValue
from dbt_activate.delivery.jobs import JobPolling, poll_job
from dbt_activate.destinations.salesforce.api import SalesforceApi, error_text
from dbt_activate.destinations.salesforce.results import bulk_reason, csv_rows, lookup_key
from dbt_activate.destinations.salesforce.values import csv_cell
from dbt_activate.errors import DestinationError, RetryableDestinationError

TERMINAL = ("JobComplete", "Failed", "Aborted")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class BulkUpload:
    """The CSV of one job and how its rows map back to record keys."""

    external_id: str
    body: bytes
    keys: Mapping[str, tuple[str, ...]]  # lookup_key(external id cell text) -> record keys
    rows: int


@dataclass
class BulkOutcome:
    state: str
    error_message: str = ""
    rejected: dict[str, str] = field(default_factory=dict)  # key -> reason
    unprocessed: set[str] = field(default_factory=set)
    ids: dict[str, str] = field(default_factory=dict)  # key -> sf__Id of a row written (BatchResult.ids)


def job_request(sobject: str, external_id: str) -> dict[str, str]:
    return {"object": sobject, "operation": "upsert", "externalIdFieldName": external_id, "contentType": "CSV",
            "lineEnding": "LF", "columnDelimiter": "COMMA"}


def build_upload(external_id: str, records: Sequence[tuple[str, Mapping[str, JSONValue]]]) -> BulkUpload:
    """CSV with the external id first, then every other field in first-seen order."""
    columns = [external_id]
    for _, values in records:
        columns.extend(name for name in values if name not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    keys: dict[str, list[str]] = {}
    for key, values in records:
        # A missing field is an empty cell (left unchanged); an explicit null is #N/A (emptied).
        row = [csv_cell(values[name]) if name in values else "" for name in columns]
        writer.writerow(row)
        # Result CSVs repeat the uploaded cells verbatim, so rows map back by the cell's text.
        keys.setdefault(lookup_key(row[0]), []).append(key)
    return BulkUpload(external_id, out.getvalue().encode(), {k: tuple(v) for k, v in keys.items()}, len(records))


class BulkUpsert:
    """Runs ingest jobs through ``api``; ``polling`` paces the reads of a job and bounds the wait for
    it (then: retry later)."""

    def __init__(self, api: SalesforceApi, *, polling: JobPolling, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.polling = api, polling
        self._sleep, self._clock = sleep, clock

    def _job_path(self, job_id: str, suffix: str = "") -> str:
        return f"{self.api.data}/jobs/ingest/{quote(job_id, safe='')}{suffix}"

    async def submit(self, sobject: str, upload: BulkUpload) -> str:
        """Create the job, upload the CSV and close it; returns the job id."""
        created = await self.api.request("POST", f"{self.api.data}/jobs/ingest",
                                         json=job_request(sobject, upload.external_id))
        info = self.api.json_of(created, "creating a Bulk API job")
        job_id = str(info.get("id") or "") if isinstance(info, dict) else ""
        if not job_id:
            raise DestinationError(f"{self.api.name}: the Bulk API job was created without an id")
        try:
            uploaded = await self.api.request("PUT", self._job_path(job_id, "/batches"), content=upload.body,
                                              headers={"Content-Type": "text/csv"})
            if not 200 <= uploaded.status_code < 300:
                raise DestinationError(self.api.redact(
                    f"{self.api.name}: uploading to Bulk API job {job_id} failed: {error_text(uploaded)}"))
            closed = await self.api.request("PATCH", self._job_path(job_id), json={"state": "UploadComplete"})
            self.api.json_of(closed, f"closing Bulk API job {job_id}")
        except Exception:
            await self._abort(job_id)
            raise
        return job_id

    async def finish(self, job_id: str, upload: BulkUpload) -> BulkOutcome:
        """Wait for the job, then map failed and unprocessed rows back to record keys."""
        info = await self._wait(job_id)
        outcome = BulkOutcome(str(info.get("state")), str(info.get("errorMessage") or ""))
        failed = await self._rows(job_id, "/failedResults/", upload)
        for error, keys in failed:
            outcome.rejected.update(dict.fromkeys(keys, bulk_reason(error)))
        # The Ids of the rows written: what other syncs' references link to (one request per job).
        for record_id, keys in await self._rows(job_id, "/successfulResults/", upload, column="sf__id"):
            outcome.ids.update(dict.fromkeys(keys, record_id))
        unprocessed = await self._rows(job_id, "/unprocessedrecords/", upload)
        for _, keys in unprocessed:
            outcome.unprocessed.update(keys)
        processed = _count(info.get("numberRecordsProcessed"))
        if outcome.state == "JobComplete" and (processed + len(unprocessed) != upload.rows
                                               or _count(info.get("numberRecordsFailed")) != len(failed)):
            # Rows nobody reported on may or may not be saved: the batch cannot be acknowledged.
            raise DestinationError(
                f"{self.api.name}: Bulk API job {job_id} reported {processed} processed rows "
                f"({len(failed)} failed) and {len(unprocessed)} unprocessed for {upload.rows} uploaded; the "
                "results do not account for every row")
        return outcome

    async def _wait(self, job_id: str) -> dict[str, Any]:
        """Poll the job (``delivery.jobs``), with the pauses of ``polling``."""

        async def read() -> dict[str, Any]:
            response = await self.api.request("GET", self._job_path(job_id), new_work=False)
            info = self.api.json_of(response, f"reading Bulk API job {job_id}")
            if not isinstance(info, dict):
                raise DestinationError(f"{self.api.name}: unreadable Bulk API job info for {job_id}")
            return info

        def still_running(info: dict[str, Any]) -> Exception:
            return RetryableDestinationError(
                f"{self.api.name}: Bulk API job {job_id} is still {info.get('state')} after "
                f"{self.polling.timeout:g}s (job_timeout); the retry resumes waiting for the same job")

        return await poll_job(read, lambda info: info.get("state") in TERMINAL, self.polling, on_timeout=still_running,
                              sleep=self._sleep, clock=self._clock)

    async def _rows(self, job_id: str, suffix: str, upload: BulkUpload, *, column: str = "sf__error"
                    ) -> list[tuple[str, tuple[str, ...]]]:
        """(the ``column`` cell, sf__Error by default, or "", record keys) per row of a result CSV."""
        response = await self.api.request("GET", self._job_path(job_id, suffix), new_work=False,
                                          headers={"Accept": "text/csv"})
        if not 200 <= response.status_code < 300:
            raise DestinationError(self.api.redact(
                f"{self.api.name}: reading {suffix.strip('/')} of Bulk API job {job_id} failed: "
                f"{error_text(response)}"))
        header, rows = csv_rows(response.text)
        lowered = [h.strip().lower() for h in header]
        if not rows:
            return []
        if upload.external_id.lower() not in lowered:
            raise DestinationError(f"{self.api.name}: {suffix.strip('/')} of Bulk API job {job_id} has no "
                                   f"{upload.external_id} column; its rows cannot be matched to records")
        at = lowered.index(upload.external_id.lower())
        errors = lowered.index(column) if column in lowered else None
        found = []
        for row in rows:
            cell = row[at] if at < len(row) else ""
            keys = upload.keys.get(lookup_key(cell))
            if not keys:
                raise DestinationError(f"{self.api.name}: Bulk API job {job_id} reported a row for "
                                       f"{upload.external_id}={cell!r}, which this batch did not upload")
            found.append((row[errors] if errors is not None and errors < len(row) else "", keys))
        return found

    async def _abort(self, job_id: str) -> None:
        """Best effort: an open job that will never be closed is aborted so it does not linger."""
        with contextlib.suppress(DestinationError):
            await self.api.request("PATCH", self._job_path(job_id), json={"state": "Aborted"}, new_work=False)


def _count(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
