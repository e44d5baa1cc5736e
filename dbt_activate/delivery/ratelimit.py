"""Client-side rate limiting: stay under a vendor's request ceiling instead of bouncing off it.

``RateLimiter`` is a sliding-window log: a request may start only when fewer than ``requests``
requests started in the last ``per_seconds``. Unlike a token bucket, which allows a full burst on
top of a full refill (up to twice the ceiling inside one window), this never exceeds the ceiling in
*any* window, so a vendor that counts fixed windows, sliding windows or a bucket of the same size
never answers 429 once our history covers a window, while we still send at the ceiling.

The window is padded by ``headroom`` (2% by default) because the vendor counts arrivals, not our
start times, and arrivals jitter by the network latency. One limiter serves every sync that uses the
same destination account in a run, and every concurrent task of those syncs: ``acquire`` is
serialised by a FIFO lock, so waiters are served in order and the log is never raced.

Two signals from the vendor tighten it further:

- ``throttled(retry_after)`` after a 429 pauses every user of the limiter until then;
- ``observe(remaining, interval_seconds)`` feeds vendor headers (e.g. HubSpot's
  ``X-HubSpot-RateLimit-Remaining`` / ``-Interval-Milliseconds``): when the vendor has fewer requests
  left than we think (another process shares the account), no more than that are sent before the
  vendor's interval is over.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from dbt_activate.destinations.base import RateLimit
from dbt_activate.errors import ConfigError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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
        self._starts: deque[float] = deque(maxlen=limit.requests)
        self._paused_until = float("-inf")
        # The vendor's own count, when it is lower than ours: at most `_budget` more starts before
        # `_budget_until`.
        self._budget: int | None = None
        self._budget_until = float("-inf")
        self._issued = 0  # tickets handed out so far
        self._lock: asyncio.Lock | None = None

    @property
    def clock(self) -> Clock:
        return self._clock

    async def acquire(self) -> int:
        """Wait until one more request may start; return its ticket (1, 2, 3, ... in start order).

        Pass the ticket to ``observe`` with the vendor headers of that request's response.
        """
        if self._lock is None:
            # Created lazily so the lock belongs to the loop of the run, not to whoever built us.
            self._lock = asyncio.Lock()
        async with self._lock:
            # Re-check after every sleep: throttled()/observe() may have moved the goalposts meanwhile.
            while True:
                now = self._clock()
                wait = self._wait(now)
                if wait <= 0:
                    break
                await self._sleep(wait)
            self._starts.append(now)
            self._issued += 1
            if self._budget is not None:
                self._budget -= 1
            return self._issued

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

        ``ticket`` is what ``acquire()`` returned for the request whose response carried the
        header: requests started after it may not be counted by the vendor yet, so they are taken
        off ``remaining``. Without it the count is taken as of now.
        """
        now = self._clock()
        interval = self.limit.per_seconds if interval_seconds is None else interval_seconds
        unseen = 0 if ticket is None else max(0, self._issued - ticket)
        vendor_left = max(0, remaining - unseen)
        if vendor_left >= self._room(now):
            # Our own log is at least as strict; an earlier, tighter count is out of date.
            self._budget = None
            return
        # We do not know where the vendor's interval started: assume it just did, the safe side.
        self._budget = vendor_left
        self._budget_until = now + interval

    def _room(self, now: float) -> int:
        """Starts our own log still allows in the window ending now."""
        recent = sum(1 for t in self._starts if t > now - self.window)
        return self.limit.requests - recent

    def _wait(self, now: float) -> float:
        wait = self._paused_until - now
        if len(self._starts) == self._starts.maxlen:
            wait = max(wait, self._starts[0] + self.window - now)
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
