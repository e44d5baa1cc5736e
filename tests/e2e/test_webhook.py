"""WebhookDestination against WebhookReceiver over real HTTP on 127.0.0.1, through deliver()."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, Mode, Operation, RateLimit, Record
from dbt_activate.delivery import LimiterRegistry, RateLimiter, RetryPolicy, deliver
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.errors import DestinationError, RetryableDestinationError
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.support.delivery import batch, target

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

SECRET = "hook-secret-5f4dcc3b5aa765d61d83"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
T = TypeVar("T")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(required_headers={"X-Hook-Secret": SECRET}) as hook:
        yield hook
    assert hook.errors == []  # no handler bug was answered as a 500


def _destination(url: str, **config: Any) -> WebhookDestination:
    return WebhookDestination("hook", {"type": "webhook", "url": url,
                                       "headers": {"X-Hook-Secret": SECRET}, "timeout": 5, **config})


def _run(destination: WebhookDestination, work: Callable[[], Awaitable[T]]) -> T:
    async def run() -> T:
        await destination.open(target())
        try:
            return await work()
        finally:
            await destination.close()

    return asyncio.run(run())


def _deliver(destination: WebhookDestination, batches: Sequence[Batch], *, policy: RetryPolicy = FAST,
             limiter: RateLimiter | None = None,
             retries: list[tuple[int, BaseException, float]] | None = None) -> list[BatchResult]:
    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        if retries is not None:
            retries.append((attempt, error, delay))

    async def work() -> list[BatchResult]:
        return [await deliver(destination, target(), b, limiter=limiter, policy=policy, on_retry=on_retry)
                for b in batches]

    return _run(destination, work)


def test_records_arrive_and_rejected_keys_come_back_with_reasons(receiver: WebhookReceiver) -> None:
    receiver.reject_keys = {"2": "email bounced"}
    [result] = _deliver(_destination(receiver.url), [batch(["1", "2", "3"])])
    assert result.rejected == {"2": "email bounced"}
    assert result.skipped == {}
    assert set(receiver.records) == {"1", "3"}
    assert receiver.records["3"] == {"id": 3, "email": "u3@example.com"}
    [payload] = receiver.payloads()
    assert payload["sync"] == "people__hook__contacts"
    assert payload["run_id"] == "run-1"


def test_every_operation_round_trips(receiver: WebhookReceiver) -> None:
    def records(*pairs: tuple[str, dict[str, Any]]) -> list[Record]:
        return [Record(k, v) for k, v in pairs]

    batches = [
        Batch(Operation.CREATE, records(("1", {"id": 1, "name": "Ada"}), ("2", {"id": 2, "name": "Bob"}))),
        Batch(Operation.CREATE, records(("1", {"id": 1, "name": "Ada again"}))),
        Batch(Operation.UPDATE, records(("2", {"id": 2, "name": "Bobby"}), ("9", {"id": 9, "name": "?"}))),
        Batch(Operation.UPSERT, records(("3", {"id": 3, "name": "Cy"}))),
        Batch(Operation.CLEAR, records(("3", {"id": 3}))),
        Batch(Operation.DELETE, records(("1", {"id": 1}))),
        Batch(Operation.APPEND, records(("e1", {"event": "signed_up"}), ("e2", {"event": "paid"}))),
    ]
    results = _deliver(_destination(receiver.url), batches)
    assert results[1].skipped == {"1": "record exists"}
    assert results[2].skipped == {"9": "no such record"}
    assert receiver.records == {"2": {"id": 2, "name": "Bobby"}, "3": {"id": 3, "name": None}}
    assert receiver.events == [{"event": "signed_up"}, {"event": "paid"}]


def test_a_500_is_retried_with_the_same_idempotency_key(receiver: WebhookReceiver) -> None:
    receiver.fail_next(500, body="database is restarting")
    retries: list[tuple[int, BaseException, float]] = []
    [result] = _deliver(_destination(receiver.url), [batch(["1"])], retries=retries)
    assert result == BatchResult()
    assert [r.status for r in receiver.requests] == [500, 200]
    keys = {r.header("Idempotency-Key") for r in receiver.requests}
    assert len(keys) == 1
    assert len(retries) == 1
    assert "HTTP 500" in str(retries[0][1])
    assert "database is restarting" in str(retries[0][1])
    assert set(receiver.records) == {"1"}


def test_a_429_waits_for_retry_after_and_pauses_the_shared_limiter(receiver: WebhookReceiver) -> None:
    receiver.fail_next(429, retry_after=0.4)
    limiter = RateLimiter(RateLimit(50, 1))
    retries: list[tuple[int, BaseException, float]] = []
    started = time.monotonic()
    [result] = _deliver(_destination(receiver.url), [batch(["1"])], limiter=limiter, retries=retries)
    elapsed = time.monotonic() - started
    assert result == BatchResult()
    assert [r.status for r in receiver.requests] == [429, 200]
    assert retries[0][2] >= 0.4
    assert isinstance(retries[0][1], RetryableDestinationError)
    assert retries[0][1].retry_after == pytest.approx(0.4)
    assert elapsed >= 0.4


@pytest.mark.slow
def test_a_dropped_connection_is_retried(receiver: WebhookReceiver) -> None:
    receiver.drop_next()
    retries: list[tuple[int, BaseException, float]] = []
    [result] = _deliver(_destination(receiver.url), [batch(["1", "2"])], retries=retries)
    assert result == BatchResult()
    assert receiver.counters.faults == 1
    assert "connection failed or dropped" in str(retries[0][1])
    assert set(receiver.records) == {"1", "2"}


@pytest.mark.slow
def test_a_timeout_is_retried(receiver: WebhookReceiver) -> None:
    receiver.inject("timeout", seconds=2.0)
    retries: list[tuple[int, BaseException, float]] = []
    [result] = _deliver(_destination(receiver.url, timeout=0.3), [batch(["1"])], retries=retries)
    assert result == BatchResult()
    assert "timed out after 0.3s" in str(retries[0][1])


@pytest.mark.slow
def test_secret_header_values_never_appear_in_errors(receiver: WebhookReceiver) -> None:
    receiver.fail_next(503, n=4, body=f"upstream rejected X-Hook-Secret={SECRET}")
    retries: list[tuple[int, BaseException, float]] = []
    with pytest.raises(RetryableDestinationError) as caught:
        _deliver(_destination(receiver.url), [batch(["1"])], retries=retries)
    assert len(receiver.requests) == 4  # max_attempts
    for error in [caught.value, *(r[1] for r in retries)]:
        assert SECRET not in str(error)
        assert "X-Hook-Secret=***" in str(error)


@pytest.mark.slow
def test_wrong_credentials_fail_the_sync_at_once(receiver: WebhookReceiver) -> None:
    receiver.required_headers = {"X-Hook-Secret": "something-else"}
    with pytest.raises(DestinationError) as caught:
        _deliver(_destination(receiver.url), [batch(["1"])])
    assert not isinstance(caught.value, RetryableDestinationError)
    assert "HTTP 401" in str(caught.value)
    assert "check the credentials" in str(caught.value)
    assert receiver.counters.requests == 1


@pytest.mark.slow
def test_a_refusal_echoing_the_secret_is_redacted(receiver: WebhookReceiver) -> None:
    receiver.fail_next(403, body=f"{SECRET} is not a valid secret")
    with pytest.raises(DestinationError) as caught:
        _deliver(_destination(receiver.url), [batch(["1"])])
    assert not isinstance(caught.value, RetryableDestinationError)
    assert "check the credentials" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert len(receiver.requests) == 1


@pytest.mark.slow
def test_nan_rows_are_rejected_locally_and_the_batch_still_goes(receiver: WebhookReceiver) -> None:
    the_batch = Batch(Operation.UPSERT, [Record("1", {"id": 1, "score": 0.5}),
                                         Record("2", {"id": 2, "score": float("nan")})])
    [result] = _deliver(_destination(receiver.url), [the_batch])
    assert list(result.rejected) == ["2"]
    assert set(receiver.records) == {"1"}


@pytest.mark.slow
def test_the_receiver_answers_malformed_payloads_with_400(receiver: WebhookReceiver) -> None:
    response = httpx.post(receiver.url, content=b'{"records": "nope"}', headers={"X-Hook-Secret": SECRET})
    assert response.status_code == 400
    assert "records" in response.json()["message"]


@pytest.mark.slow
def test_concurrent_batches_under_a_vendor_rate_limit_get_no_429() -> None:
    """The receiver enforces 20 requests per rolling 0.5 s; the limiter is set to the same."""
    with WebhookReceiver(rate_limit=(20, 0.5)) as hook:
        destination = _destination(hook.url, batch_size=1, max_concurrency=4)
        limiter = LimiterRegistry().get("hook", RateLimit(20, 0.5))
        batches = [batch([str(i)]) for i in range(60)]

        async def work() -> list[BatchResult]:
            queue = list(batches)
            results: list[BatchResult] = []

            async def worker() -> None:
                while queue:
                    results.append(await deliver(destination, target(Mode.UPSERT), queue.pop(),
                                                 limiter=limiter, policy=FAST))

            await asyncio.gather(*(worker() for _ in range(4)))
            return results

        started = time.monotonic()
        results = _run(destination, work)
        elapsed = time.monotonic() - started
        assert len(results) == 60
        assert hook.counters.throttled == 0
        assert len(hook.records) == 60
        # 60 requests = 3 windows' worth: two waits of ~0.51 s, then the last burst.
        assert 1.0 <= elapsed < 2.0


@pytest.mark.slow
def test_serve_runs_a_receiver_on_the_given_port() -> None:
    import threading

    from dbt_activate.testing.webhook.emulator import serve

    found: list[WebhookReceiver] = []
    ready = threading.Event()

    def on_ready(r: WebhookReceiver) -> None:
        found.append(r)
        ready.set()

    thread = threading.Thread(target=serve, args=(0,), kwargs={"ready": on_ready}, daemon=True)
    thread.start()
    assert ready.wait(5)
    body = json.dumps({"sync": "s", "object": "o", "operation": "append", "run_id": "",
                       "records": [{"key": "1", "operation": "append", "record": {"a": 1}}]})
    response = httpx.post(found[0].url, content=body)
    assert response.json() == {"accepted": 1, "rejected": [], "skipped": []}
    found[0].stop()
