"""RateLimiter: the ceiling in every window, 429 pauses, vendor headers, concurrent acquirers."""

from __future__ import annotations

import asyncio
import time

import pytest

from dbt_activate.core.types import RateLimit
from dbt_activate.delivery import LimiterRegistry, RateLimiter
from dbt_activate.errors import ConfigError
from tests.support.delivery import FakeClock, SlidingWindowVendor


def _limiter(requests: int = 10, per_seconds: float = 1.0, headroom: float = 0.02) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(RateLimit(requests, per_seconds), headroom=headroom, clock=clock, sleep=clock.sleep), clock


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_a_full_window_goes_at_once_then_waits_for_the_oldest_to_age_out() -> None:
    limiter, clock = _limiter(10, 1.0)

    async def run() -> list[float]:
        starts = []
        for _ in range(25):
            await limiter.acquire()
            starts.append(clock.now)
        return starts

    starts = asyncio.run(run())
    assert starts[:10] == [1000.0] * 10
    assert starts[10] == pytest.approx(1001.02)  # the window plus 2% headroom for network jitter
    assert _max_in_any_window(starts, 1.0) == 10
    assert starts[-1] == pytest.approx(1002.04)


@pytest.mark.parametrize(("requests", "per_seconds"), [(100, 10.0), (7, 2.0), (1, 0.5)])
def test_concurrent_acquirers_never_exceed_a_vendor_window_and_keep_95_percent(
        requests: int, per_seconds: float) -> None:
    limiter, clock = _limiter(requests, per_seconds)
    vendor = SlidingWindowVendor(requests, per_seconds, clock)
    total = requests * 12

    async def worker(n: int) -> None:
        for _ in range(n):
            await limiter.acquire()
            assert vendor.arrive()[0]

    async def run() -> None:
        await asyncio.gather(*(worker(total // 8) for _ in range(8)))

    started = clock.now
    asyncio.run(run())
    assert vendor.throttled_times == []
    # `total` requests need (total/requests - 1) full windows after the first burst.
    ideal = (total / requests - 1) * per_seconds
    assert ideal / (clock.now - started) >= 0.95


def test_throttled_pauses_every_acquirer_until_retry_after() -> None:
    limiter, clock = _limiter(100, 10)

    async def stamp() -> float:
        await limiter.acquire()
        return clock.now

    async def run() -> list[float]:
        await limiter.acquire()
        limiter.throttled(3.0)
        return list(await asyncio.gather(*(stamp() for _ in range(5))))

    starts = asyncio.run(run())
    assert all(s == pytest.approx(1003.0) for s in starts)


def test_throttled_without_retry_after_pauses_one_window() -> None:
    limiter, clock = _limiter(100, 10, headroom=0.0)

    async def run() -> float:
        limiter.throttled(None)
        await limiter.acquire()
        return clock.now

    assert asyncio.run(run()) == pytest.approx(1010.0)


def test_a_shorter_throttle_never_shortens_a_longer_pause() -> None:
    limiter, clock = _limiter(100, 10)
    limiter.throttled(5)
    limiter.throttled(1)
    asyncio.run(limiter.acquire())
    assert clock.now == pytest.approx(1005.0)


async def _stamp(limiter: RateLimiter, clock: FakeClock) -> float:
    await limiter.acquire()
    return clock.now


def test_vendor_remaining_lower_than_ours_caps_the_rest_of_its_interval() -> None:
    limiter, clock = _limiter(100, 10)

    async def run() -> list[float]:
        first = await limiter.acquire()
        limiter.observe(3, 10.0, ticket=first)  # another process used 96 of the 100
        return [await _stamp(limiter, clock) for _ in range(5)]

    starts = asyncio.run(run())
    assert starts[:3] == [1000.0] * 3
    assert starts[3] == pytest.approx(1010.0)  # the vendor's interval is over
    assert starts[4] == pytest.approx(1010.0)


def test_observe_discounts_requests_started_after_the_reporting_one() -> None:
    limiter, clock = _limiter(100, 10)

    async def run() -> list[float]:
        first = await limiter.acquire()
        for _ in range(4):
            await limiter.acquire()
        # This response reports the state after `first`; the 4 later requests are not counted yet.
        limiter.observe(6, 10.0, ticket=first)
        return [await _stamp(limiter, clock) for _ in range(3)]

    starts = asyncio.run(run())
    assert starts[:2] == [1000.0, 1000.0]  # 6 - 4 unseen = 2 left
    assert starts[2] == pytest.approx(1010.0)


def test_observe_agreeing_with_our_own_count_changes_nothing() -> None:
    limiter, clock = _limiter(10, 1)

    async def run() -> list[float]:
        starts: list[float] = []
        for _ in range(10):
            ticket = await limiter.acquire()
            limiter.observe(10 - ticket, 1.0, ticket=ticket)
            starts.append(clock.now)
        return starts

    assert asyncio.run(run()) == [1000.0] * 10


def test_headers_and_429s_keep_us_under_a_vendor_shared_with_another_process() -> None:
    """100/10 s shared with another process that already spent 60: at most the first window sees 429s."""
    limiter, clock = _limiter(100, 10)
    vendor = SlidingWindowVendor(100, 10, clock)
    vendor.preload(60)

    async def request() -> None:
        while True:
            ticket = await limiter.acquire()
            ok, remaining, reset = vendor.arrive()
            limiter.observe(remaining, 10.0, ticket=ticket)
            if ok:
                return
            limiter.throttled(reset)

    async def worker() -> None:
        for _ in range(50):
            await request()

    async def run() -> None:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(4))), timeout=10)

    started = clock.now
    asyncio.run(run())
    assert len(vendor.accepted_times) == 200
    assert len(vendor.throttled_times) <= 1  # the headers alone usually avoid even that one
    assert all(t < started + 10.5 for t in vendor.throttled_times)


def test_real_time_concurrent_acquirers_respect_a_tiny_window() -> None:
    limiter = RateLimiter(RateLimit(5, 0.2))
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(3):
            await limiter.acquire()
            stamps.append(time.monotonic())

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(6)))

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started
    assert len(stamps) == 18
    assert _max_in_any_window(stamps, 0.2) <= 5
    assert 0.6 <= elapsed < 1.2  # 18 = 5 + 5 + 5 + 3: three full waits of ~0.204 s


def test_invalid_limits_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        RateLimiter(RateLimit(0, 10))
    with pytest.raises(ConfigError):
        RateLimiter(RateLimit(10, 0))


def test_registry_shares_one_limiter_per_account() -> None:
    registry = LimiterRegistry()
    hubspot = registry.get("hubspot", RateLimit(100, 10))
    assert hubspot is not None
    assert registry.get("hubspot", RateLimit(100, 10)) is hubspot
    assert registry.get("other", RateLimit(100, 10)) is not hubspot
    assert registry.get("files", None) is None


def _slow_first_request_run(use_slot: bool) -> SlidingWindowVendor:
    """One worker; the first request spends 0.3 s reaching the vendor (a new TLS connection)."""
    limiter, clock = _limiter(4, 1.0)
    vendor = SlidingWindowVendor(4, 1.0, clock)

    async def one(to_vendor: float) -> None:
        await clock.sleep(to_vendor)
        vendor.arrive()
        await clock.sleep(0.005)

    async def run() -> None:
        for i in range(12):
            to_vendor = 0.3 if i == 0 else 0.005
            if use_slot:
                async with limiter.slot():
                    await one(to_vendor)
            else:
                await limiter.acquire()
                await one(to_vendor)

    asyncio.run(run())
    return vendor


def test_slots_date_requests_by_their_latest_possible_arrival() -> None:
    # Dated by start, the slow first request still counts at the vendor when the 5th starts...
    assert len(_slow_first_request_run(use_slot=False).throttled_times) == 1
    # ... dated by its end minus the fastest round trip, it never does.
    vendor = _slow_first_request_run(use_slot=True)
    assert vendor.throttled_times == []
    assert len(vendor.accepted_times) == 12


def test_a_request_in_flight_holds_its_slot_until_it_ends() -> None:
    limiter, clock = _limiter(1, 1.0)
    starts: list[float] = []

    async def slow() -> None:
        async with limiter.slot():
            starts.append(clock.now)
            await clock.sleep(2.0)

    async def run() -> None:
        first = asyncio.create_task(slow())
        await asyncio.sleep(0)
        await limiter.acquire()
        starts.append(clock.now)
        await first

    asyncio.run(run())
    assert starts[0] == 1000.0
    assert starts[1] >= 1002.0  # not at 1001.02, while the first request could still be arriving


def test_slot_reports_the_end_even_when_the_request_fails() -> None:
    limiter, clock = _limiter(1, 1.0, headroom=0.0)

    async def run() -> float:
        with pytest.raises(RuntimeError):
            async with limiter.slot():
                await clock.sleep(0.1)
                raise RuntimeError("connection reset")
        await limiter.acquire()  # would wait forever if the failed request stayed in flight
        return clock.now

    assert asyncio.run(asyncio.wait_for(run(), timeout=2)) == pytest.approx(1001.0)
