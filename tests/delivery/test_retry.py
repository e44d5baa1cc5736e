"""RetryPolicy and deliver(): what is retried, how long it waits, what is raised."""

from __future__ import annotations

import asyncio

import pytest

from dbt_activate.core.types import BatchResult, RateLimit
from dbt_activate.delivery import RateLimiter, RetryPolicy, current_limiter, deliver
from dbt_activate.errors import (
    ConfigError,
    DestinationError,
    QuotaExhaustedError,
    RetryableDestinationError,
)
from tests.support.delivery import FakeClock, ScriptedDestination, batch, target

NO_JITTER = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=5.0, jitter=False)


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)])
def test_backoff_doubles_up_to_max_delay(attempt: int, expected: float) -> None:
    assert NO_JITTER.backoff(attempt) == expected


def test_full_jitter_is_uniform_between_zero_and_the_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=True)
    assert policy.backoff(3, rng=lambda: 0.0) == 0.0
    assert policy.backoff(3, rng=lambda: 0.5) == 2.0
    samples = [policy.backoff(4) for _ in range(500)]
    assert all(0.0 <= s <= 8.0 for s in samples)
    assert len({round(s, 6) for s in samples}) > 400  # actually spread, not a constant


def test_retry_after_is_a_floor_on_the_delay() -> None:
    assert NO_JITTER.delay(1, retry_after=7.5) == 7.5
    assert NO_JITTER.delay(3, retry_after=0.5) == 4.0


def test_gives_up_after_max_attempts_or_an_unreasonable_retry_after() -> None:
    policy = RetryPolicy(max_attempts=3, max_retry_after=60)
    assert not policy.gives_up(2)
    assert policy.gives_up(3)
    assert policy.gives_up(1, retry_after=3600)
    assert not policy.gives_up(1, retry_after=60)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1}, {"max_delay": -0.1}])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_deliver_returns_the_destination_result_on_first_success() -> None:
    result = BatchResult(rejected={"2": "bad email"})
    destination = ScriptedDestination(result=result)
    got = asyncio.run(deliver(destination, target(), batch(), limiter=None, policy=NO_JITTER))
    assert got is result
    assert destination.calls == 1


def test_deliver_retries_retryable_errors_with_backoff_and_reports_each_retry() -> None:
    clock = FakeClock()
    errors = [RetryableDestinationError("HTTP 503"), RetryableDestinationError("timed out")]
    destination = ScriptedDestination(errors=list(errors))
    retries: list[tuple[int, BaseException, float]] = []

    got = asyncio.run(deliver(destination, target(), batch(), limiter=None, policy=NO_JITTER,
                              on_retry=lambda a, e, d: retries.append((a, e, d)), sleep=clock.sleep))

    assert got.rejected == {}
    assert destination.calls == 3
    assert retries == [(1, errors[0], 1.0), (2, errors[1], 2.0)]
    assert clock.sleeps == [1.0, 2.0]


def test_deliver_raises_the_last_retryable_error_when_attempts_run_out() -> None:
    clock = FakeClock()
    errors = [RetryableDestinationError(f"HTTP 500 #{i}") for i in range(3)]
    destination = ScriptedDestination(errors=list(errors))
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, jitter=False)
    with pytest.raises(RetryableDestinationError) as caught:
        asyncio.run(deliver(destination, target(), batch(), limiter=None, policy=policy, sleep=clock.sleep))
    assert caught.value is errors[2]
    assert destination.calls == 3
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("error", [
    DestinationError("HTTP 401: check the credentials"),
    QuotaExhaustedError("daily limit reached"),
    ValueError("a bug in the destination"),
])
def test_deliver_never_retries_other_errors(error: BaseException) -> None:
    destination = ScriptedDestination(errors=[error])
    with pytest.raises(type(error)):
        asyncio.run(deliver(destination, target(), batch(), limiter=None, policy=NO_JITTER))
    assert destination.calls == 1


def test_deliver_honours_retry_after_and_pauses_the_shared_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(100, 10), clock=clock, sleep=clock.sleep)
    destination = ScriptedDestination(errors=[RetryableDestinationError("429", retry_after=30)])

    asyncio.run(deliver(destination, target(), batch(), limiter=limiter, policy=NO_JITTER, sleep=clock.sleep))

    assert clock.sleeps == [30]  # max(backoff 1.0, Retry-After 30)
    # Other syncs sharing the limiter were paused as well: the pause ran until start + 30.
    assert limiter._paused_until == pytest.approx(1030.0)


def test_deliver_does_not_wait_for_an_unreasonable_retry_after() -> None:
    clock = FakeClock()
    error = RetryableDestinationError("429", retry_after=7200)
    destination = ScriptedDestination(errors=[error])
    with pytest.raises(RetryableDestinationError):
        asyncio.run(deliver(destination, target(), batch(), limiter=None,
                            policy=RetryPolicy(max_retry_after=900), sleep=clock.sleep))
    assert clock.sleeps == []


def test_deliver_makes_the_limiter_current_only_while_writing() -> None:
    limiter = RateLimiter(RateLimit(10, 1))
    destination = ScriptedDestination(errors=[RetryableDestinationError("x")])
    asyncio.run(deliver(destination, target(), batch(), limiter=limiter,
                        policy=RetryPolicy(base_delay=0.0, jitter=False)))
    assert destination.seen_limiters == [limiter, limiter]
    assert current_limiter() is None
