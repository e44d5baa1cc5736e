"""A Customer Match offline user data job, from creation to completion.

The life cycle (``protos/…/services/offline_user_data_job_service.proto``;
developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match/get-started,
"Upload customer data"):

1. ``POST /v25/customers/{customer_id}/offlineUserDataJobs:create`` with ``{"job": {"type":
   "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {"userList": …, "consent": …}}}``
   -> ``{"resourceName": "customers/…/offlineUserDataJobs/…"}``;
2. ``POST /v25/{resourceName}:addOperations`` with ``{"operations": [{"create": UserData} |
   {"remove": UserData}], "enablePartialFailure": true}``, at most 100,000 identifiers per request
   (10,000 recommended: ``operations_per_request``); a ``partialFailureError`` names refused
   operations by ``{"fieldName": "operations", "index": i}``;
3. ``POST /v25/{resourceName}:run`` -> a long-running ``google.longrunning.Operation`` (``name``);
4. ``GET /v25/{operation name}`` (customers.operations.get) every ``job_poll_interval`` until
   ``done``; an ``error`` in it means the job FAILED and nothing of it is acknowledged.

Step 4 is the shared poller (``delivery.jobs``): a poll is read again after a 429/5xx
(``Retry-After``, else a pause doubling from ``job_poll_interval``) until ``job_timeout``, never by
running the job again. Google processes a job in up to several hours for large lists; what it
matched shows later in the list's size, not in the job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from dbt_activate.delivery.jobs import Clock, JobPolling, Sleep, poll_job
from dbt_activate.destinations.api import json_object
from dbt_activate.destinations.google_ads.results import partial_failures, status_reason, unexpected
from dbt_activate.errors import DestinationError, Redactor

Send = Callable[[str, str, Mapping[str, Any] | None], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class JobSettings:
    version: str
    customer_id: str
    operations_per_request: int
    polling: JobPolling
    consent: Mapping[str, str] | None = None


class CustomerMatchJob:
    """Runs one job of ``operations`` on ``user_list``; ``send(method, path, body)`` makes each request
    (``sleep`` and ``clock`` pace its polls: a fake clock in tests)."""

    def __init__(self, name: str, settings: JobSettings, send: Send, redactor: Redactor, *,
                 sleep: Sleep = asyncio.sleep, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.settings = settings
        self._send = send
        self.redactor = redactor
        self._sleep, self._clock = sleep, clock

    def create_body(self, user_list: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"userList": user_list}
        if self.settings.consent:
            metadata["consent"] = dict(self.settings.consent)
        return {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}}

    def create_path(self) -> str:
        return f"/{self.settings.version}/customers/{self.settings.customer_id}/offlineUserDataJobs:create"

    async def run(self, user_list: str, operations: Sequence[Mapping[str, Any]]) -> tuple[dict[int, str], str]:
        """Create, fill, run and wait for a job; the refused operations by index, and the job's name."""
        response = await self._send("POST", self.create_path(), self.create_body(user_list))
        job = str(json_object(response).get("resourceName") or "")
        if response.status_code != 200 or not job:
            raise unexpected(self.name, response, "creating the offline user data job", self.redactor)
        refused: dict[int, str] = {}
        size = self.settings.operations_per_request
        for start in range(0, len(operations), size):
            chunk = list(operations[start:start + size])
            response = await self._send("POST", f"/{self.settings.version}/{job}:addOperations",
                                        {"operations": chunk, "enablePartialFailure": True})
            if response.status_code != 200:
                raise unexpected(self.name, response, f"adding operations to {job}", self.redactor)
            by_index, unnamed = partial_failures(json_object(response), "operations", self.redactor)
            if unnamed:
                raise DestinationError(f"{self.name}: Google refused operations of {job} without naming them "
                                       f"({unnamed}); the batch is not acknowledged")
            refused.update({start + i: why for i, (_, why) in by_index.items()})
        if len(refused) == len(operations):
            return refused, job  # nothing left to run: Google refuses to run an empty job
        response = await self._send("POST", f"/{self.settings.version}/{job}:run", {})
        operation = str(json_object(response).get("name") or "")
        if response.status_code != 200 or not operation:
            raise unexpected(self.name, response, f"running {job}", self.redactor)
        await self._wait(job, operation)
        return refused, job

    async def _wait(self, job: str, operation: str) -> None:
        """Poll the job's operation (``delivery.jobs``) until it is ``done``; a FAILED job raises."""

        async def read() -> Mapping[str, Any]:
            response = await self._send("GET", f"/{self.settings.version}/{operation}", None)
            if response.status_code != 200:
                raise unexpected(self.name, response, f"polling {operation}", self.redactor)
            return json_object(response)

        def still_running(state: Mapping[str, Any]) -> Exception:
            return DestinationError(f"{self.name}: job {job} was still running after "
                                    f"{self.settings.polling.timeout:g}s (job_timeout); the batch is not "
                                    "acknowledged and goes with the next run (adding and removing members again "
                                    "is harmless)")

        body = await poll_job(read, lambda state: bool(state.get("done")), self.settings.polling,
                              on_timeout=still_running, sleep=self._sleep, clock=self._clock)
        error = body.get("error")
        if isinstance(error, dict):
            raise DestinationError(f"{self.name}: Google Ads job {job} failed: {status_reason(error, self.redactor)}; "
                                   "the batch is not acknowledged and goes with the next run")
