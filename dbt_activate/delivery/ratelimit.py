"""Client-side rate limiting: stay under a vendor's request ceiling instead of bouncing off it.

``RateLimiter`` is a sliding-window log: a request may start only when fewer than ``requests`` of
ours can still be inside the vendor's last ``per_seconds``. Unlike a token bucket, which allows a
full burst on top of a full refill (up to twice the ceiling inside one window), this never exceeds
the ceiling in *any* window, so a vendor counting fixed windows, sliding windows or a bucket of
the same size does not answer 429 once our history covers a window, while we send at the ceiling.

The vendor counts a request when it *arrives*, somewhere between our start and the response.
Starts alone would be optimistic whenever an early request arrived late (the first requests of a
run open connections and TLS sessions and take several times longer than later ones), and the
responses would cost the whole latency of every request. So requests made in ``slot()`` report
when they finished, and a finished request is dated ``end - fastest round trip seen``: the latest
it can have arrived, give or take the one-way jitter that ``headroom`` (2% of the window) covers.
A window is then lost only to the *variance* of the latency. ``acquire()`` alone dates a request by
its start.

One limiter serves every sync that uses the same destination account in a run, and every
concurrent task of those syncs: taking a slot is serialised by a FIFO lock, so waiters are served
in order and the log is never raced. Two signals from the vendor tighten it further:

- ``throttled(retry_after)`` after a 429 pauses every user of the limiter until then;
- ``observe(remaining, interval_seconds)`` feeds vendor headers (e.g. HubSpot's
  ``X-HubSpot-RateLimit-Remaining`` / ``-Interval-Milliseconds``): when the vendor has fewer requests
  left than we think (another process shares the account), no more than that are sent before the
  vendor's interval is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from dbt_activate.core.types import RateLimit
from dbt_activate.errors import ConfigError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Request:
    start: float
    tracked: bool  # made in slot(): its end will be reported
    end: float | None = None


class RateLimiter:
    """Async sliding-window limiter for one destination account.

    ``clock`` and ``sleep`` are injectable so tests can run hours of vendor time in milliseconds.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        headroom: float = 0.02,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit.requests < 1 or limit.per_seconds <= 0:
            raise ConfigError(f"rate_limit must allow at least 1 request per positive interval, got {limit}")
        if not 0 <= headroom < 1:
            raise ConfigError(f"rate limiter headroom must be in [0, 1), got {headroom}")
        self.limit = limit
        self.window = limit.per_seconds * (1 + headroom)
        self._clock = clock
        self._sleep = sleep
        self._requests: dict[int, _Request] = {}  # by ticket; only those that may still count
        self._issued = 0  # tickets handed out so far
        self._fastest = math.inf  # shortest round trip of a finished request
        self._paused_until = -math.inf
        # The vendor's own count, when lower than ours: at most `_budget` more before `_budget_until`.
        self._budget: int | None = None
        self._budget_until = -math.inf
        # Created lazily so they belong to the event loop of the run, not to whoever built us.
        self._lock: asyncio.Lock | None = None
        self._finished: asyncio.Event | None = None

    async def acquire(self) -> int:
        """Wait until one more request may start; return its ticket (1, 2, 3, ... in start order).

        Pass the ticket to ``observe`` with the vendor headers of that request's response.
        """
        return await self._take(tracked=False)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """``async with limiter.slot() as ticket:`` around one request: acquire, then report its end."""
        ticket = await self._take(tracked=True)
        try:
            yield ticket
        finally:
            self._finish(ticket)

    def throttled(self, retry_after: float | None = None) -> None:
        """The vendor answered 429: pause every user until ``retry_after`` seconds from now.

        Without a ``Retry-After`` the pause is one whole window, after which any vendor window
        (fixed, sliding or bucket) has room again.
        """
        pause = self.window if retry_after is None else max(0.0, retry_after)
        self._paused_until = max(self._paused_until, self._clock() + pause)

    def observe(self, remaining: int, interval_seconds: float | None = None, *,
                ticket: int | None = None) -> None:
        """Take the vendor's count of requests left in its current interval.

        ``ticket`` is what ``acquire()``/``slot()`` gave the request whose response carried the
        header: requests started after it may not be counted by the vendor yet, so they are taken
        off ``remaining``. Without it the count is taken as of now.
        """
        now = self._clock()
        interval = self.limit.per_seconds if interval_seconds is None else interval_seconds
        unseen = 0 if ticket is None else max(0, self._issued - ticket)
        vendor_left = max(0, remaining - unseen)
        counted, _ = self._counted(now)
        if vendor_left >= self.limit.requests - counted:
            # Our own log is at least as strict; an earlier, tighter count is out of date.
            self._budget = None
            return
        # We do not know where the vendor's interval started: assume it just did, the safe side.
        self._budget = vendor_left
        self._budget_until = now + interval

    async def _take(self, *, tracked: bool) -> int:
        if self._lock is None or self._finished is None:
            self._lock, self._finished = asyncio.Lock(), asyncio.Event()
        async with self._lock:
            # Re-check after every wait: throttled()/observe()/finished requests change the answer.
            while True:
                self._finished.clear()  # before looking, so a request finishing meanwhile wakes us
                now = self._clock()
                wait = self._wait(now)
                if wait is None:
                    await self._finished.wait()
                elif wait > 0:
                    await self._sleep(wait)
                else:
                    break
            self._issued += 1
            self._requests[self._issued] = _Request(now, tracked)
            if self._budget is not None:
                self._budget -= 1
            return self._issued

    def _finish(self, ticket: int) -> None:
        request = self._requests.get(ticket)
        if request is not None:
            request.end = self._clock()
            self._fastest = min(self._fastest, request.end - request.start)
        if self._finished is not None:
            self._finished.set()

    def _counted(self, now: float) -> tuple[int, list[float]]:
        """(requests that may be in the vendor's window ending now, arrival bounds of finished ones).

        Forgets requests that can no longer count: even their latest possible arrival is out.
        """
        horizon = now - self.window
        in_flight, arrivals = 0, []
        for ticket, request in list(self._requests.items()):
            if not request.tracked:
                latest = request.start
            elif request.end is None:
                in_flight += 1
                continue
            else:
                if request.end <= horizon:
                    del self._requests[ticket]
                    continue
                latest = max(request.start, request.end - self._fastest)
            if latest > horizon:
                arrivals.append(latest)
            elif not request.tracked:
                del self._requests[ticket]
        return in_flight + len(arrivals), arrivals

    def _wait(self, now: float) -> float | None:
        """Seconds until a request may start; None while only a request in flight can free a slot."""
        wait = self._paused_until - now
        counted, arrivals = self._counted(now)
        excess = counted - self.limit.requests + 1
        if excess > 0:
            if excess > len(arrivals):
                return None
            arrivals.sort()
            wait = max(wait, arrivals[excess - 1] + self.window - now)
        if self._budget is not None:
            if now >= self._budget_until:
                self._budget = None
            elif self._budget <= 0:
                wait = max(wait, self._budget_until - now)
        return wait


class LimiterRegistry:
    """One limiter per destination account for a run, so every sync of it shares the ceiling."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, RateLimiter] = {}

    def get(self, account: str, limit: RateLimit | None) -> RateLimiter | None:
        """The limiter of ``account`` (a destination name), created on first use; None if unlimited."""
        if limit is None:
            return None
        limiter = self._limiters.get(account)
        if limiter is None:
            limiter = RateLimiter(limit, clock=self._clock, sleep=self._sleep)
            self._limiters[account] = limiter
        return limiter
