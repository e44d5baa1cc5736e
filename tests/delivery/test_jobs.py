"""``poll_job``: one poller for every vendor's asynchronous jobs, on a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from dbt_activate.delivery.jobs import JobPolling, poll_job, read_job
from dbt_activate.errors import DestinationError, RetryableDestinationError


class FakeTime:
    """A clock that only moves when the poller sleeps; records every pause."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class Job:
    """A job that answers the given states (or raises the given errors) one read after another."""

    def __init__(self, answers: list[str | Exception]) -> None:
        self._answers: Iterator[str | Exception] = iter(answers)
        self.reads = 0

    async def read(self) -> str:
        self.reads += 1
        answer = next(self._answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


def timed_out(state: str) -> Exception:
    return DestinationError(f"still {state}")


def run(job: Job, polling: JobPolling, time: FakeTime, **options: object) -> str:
    return asyncio.run(poll_job(job.read, lambda s: s == "done", polling, on_timeout=timed_out,
                                sleep=time.sleep, clock=time.clock, **options))  # type: ignore[arg-type]


def test_reads_until_finished_pausing_the_interval_between_reads() -> None:
    time, job = FakeTime(), Job(["running", "running", "done"])
    assert run(job, JobPolling(interval=2.0, timeout=60.0), time) == "done"
    assert job.reads == 3
    assert time.pauses == [2.0, 2.0, 2.0]


def test_an_interval_of_zero_still_pauses_between_reads_so_the_vendor_is_never_polled_in_a_busy_loop() -> None:
    time, job = FakeTime(), Job(["running"] * 5 + ["done"])
    assert run(job, JobPolling(interval=0.0, timeout=60.0, backoff=2.0), time) == "done"
    assert len(time.pauses) == 6 and min(time.pauses) >= 0.01


def test_backoff_grows_the_pause_up_to_max_interval() -> None:
    time, job = FakeTime(), Job(["running"] * 5 + ["done"])
    run(job, JobPolling(interval=0.25, timeout=600.0, backoff=2.0, max_interval=1.0), time)
    assert time.pauses == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]


def test_a_known_first_state_is_looked_at_before_any_pause() -> None:
    time, job = FakeTime(), Job([])
    assert run(job, JobPolling(interval=5.0, timeout=60.0), time, first="done") == "done"
    assert (job.reads, time.pauses) == (0, [])


def test_timeout_counts_from_the_first_read_and_raises_what_the_vendor_says() -> None:
    time, job = FakeTime(), Job(["queued"] * 100)
    with pytest.raises(DestinationError, match="still queued"):
        run(job, JobPolling(interval=10.0, timeout=30.0), time)
    assert job.reads == 3  # reads at 10, 20 and 30 s; at 30 s the deadline has passed
    assert time.now == 30.0


def test_a_throttled_read_is_read_again_after_retry_after_not_raised() -> None:
    time = FakeTime()
    job = Job(["running", RetryableDestinationError("429", retry_after=7.0), "done"])
    assert run(job, JobPolling(interval=1.0, timeout=60.0), time) == "done"
    assert job.reads == 3
    assert time.pauses == [1.0, 1.0, 7.0]


def test_a_failing_read_backs_off_doubling_without_retry_after() -> None:
    time = FakeTime()
    job = Job([RetryableDestinationError("502"), RetryableDestinationError("502"),
               RetryableDestinationError("502"), "done"])
    asyncio.run(read_job(job.read, JobPolling(interval=1.0, timeout=60.0, max_interval=3.0), 60.0,
                         sleep=time.sleep, clock=time.clock))
    assert time.pauses == [1.0, 2.0, 3.0]


def test_a_read_still_failing_at_the_deadline_goes_up_through_on_read_failure() -> None:
    time = FakeTime()
    job = Job([RetryableDestinationError("503")] * 100)

    def unconfirmed(exc: RetryableDestinationError) -> Exception:
        return DestinationError(f"status unreadable: {exc}")

    with pytest.raises(DestinationError, match="status unreadable: 503") as raised:
        run(job, JobPolling(interval=1.0, timeout=10.0), time, on_read_failure=unconfirmed)
    assert not isinstance(raised.value, RetryableDestinationError)
    assert time.now == pytest.approx(10.0)


def test_without_on_read_failure_the_last_read_error_goes_up_as_it_is() -> None:
    time = FakeTime()
    job = Job([RetryableDestinationError("429", retry_after=4.0)] * 100)
    with pytest.raises(RetryableDestinationError, match="429"):
        run(job, JobPolling(interval=1.0, timeout=10.0), time)


@pytest.mark.parametrize("module", ["klaviyo.jobs", "zendesk.jobs", "salesforce.bulk", "google_ads.jobs"])
def test_every_vendor_whose_batches_become_jobs_waits_through_this_poller(module: str) -> None:
    import importlib

    vendor = importlib.import_module(f"dbt_activate.destinations.{module}")
    assert vendor.poll_job is poll_job
