"""``poll_job``: wait for a vendor's asynchronous job (Klaviyo bulk imports, Zendesk job statuses,
Salesforce Bulk API ingest jobs, Google Ads Customer Match jobs) the same way for every vendor.

A job is the vendor's once it is accepted: the batch that submitted it must not be sent again just
because a status read was throttled. So:

- one pair of knobs, ``JobPolling(interval, timeout)``, set in destinations.yml as ``job_poll_interval``
  and ``job_timeout`` by every such vendor (``destinations.jobs.job_keys``): reads are ``interval``
  seconds apart (growing by ``backoff`` up to ``max_interval``, for jobs that take minutes);
- one meaning of timeout: the seconds from the first read until the job must have finished. A job
  still running then raises what the vendor's ``on_timeout`` returns (the vendor knows whether
  sending the batch again is safe); a failed read is read again within the same deadline.
- a read that fails with ``RetryableDestinationError`` (429, 5xx, a dropped connection) is read
  again after ``Retry-After``, else a pause doubling from ``interval`` up to ``max_interval``; past
  the deadline it goes up through ``on_read_failure`` (by default as it is).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from dbt_activate.errors import RetryableDestinationError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
_LEAST_PAUSE = 0.01  # seconds between two reads of a job's status, whatever the interval


@dataclass(frozen=True)
class JobPolling:
    """How to wait for a job: ``interval`` seconds between reads, at most ``timeout`` seconds."""

    interval: float
    timeout: float
    backoff: float = 1.0  # each pause is the last one times this, up to max_interval
    max_interval: float = 30.0


async def read_job(read: Callable[[], Awaitable[T]], polling: JobPolling, deadline: float, *,
                   on_read_failure: Callable[[RetryableDestinationError], Exception] | None = None,
                   sleep: Sleep = asyncio.sleep, clock: Clock = time.monotonic) -> T:
    """One read of a job (its status, a page of its results), read again while the vendor throttles
    or fails it, until ``deadline`` (a ``clock()`` time)."""
    pause = max(polling.interval, 0.05)
    while True:
        try:
            return await read()
        except RetryableDestinationError as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                if on_read_failure is None:
                    raise
                raise on_read_failure(exc) from exc
            wait = exc.retry_after if exc.retry_after is not None else pause
            pause = min(pause * 2, max(polling.max_interval, polling.interval))
            await sleep(min(remaining, wait))


async def poll_job(read: Callable[[], Awaitable[T]], finished: Callable[[T], bool], polling: JobPolling, *,
                   on_timeout: Callable[[T], Exception],
                   on_read_failure: Callable[[RetryableDestinationError], Exception] | None = None,
                   first: T | None = None, sleep: Sleep = asyncio.sleep, clock: Clock = time.monotonic) -> T:
    """Read the job until ``finished`` says so; what the last read returned.

    ``first`` is a state already known (the answer that submitted the job): it is looked at before
    the first pause. A job not finished ``polling.timeout`` seconds after the first read (or after
    ``first``) raises ``on_timeout(last state)``.
    """
    deadline = clock() + polling.timeout
    state = first
    # Never a busy loop against the vendor's API (its quota), even with an interval of 0.
    pause = max(polling.interval, _LEAST_PAUSE)
    while True:
        if state is not None:
            if finished(state):
                return state
            if clock() >= deadline:
                raise on_timeout(state)
        await sleep(pause)
        state = await read_job(read, polling, deadline, on_read_failure=on_read_failure, sleep=sleep, clock=clock)
        pause = min(pause * polling.backoff, max(polling.max_interval, polling.interval, _LEAST_PAUSE))
