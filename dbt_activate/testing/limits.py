"""Rate limiters shared by the emulators: a rolling request window and a daily quota.

Vendors throttle in two ways that matter to a sync (see the contracts' "cross-cutting notes"):
a short rolling window (HubSpot 100 requests / 10 s, Pipedrive's 2-second burst) and a long
quota (HubSpot's daily calls, Salesforce's 24-hour allocation, Pipedrive's daily token budget).
``Limits`` holds both, thread-safe, and answers one question per request with a ``Decision``
that each emulator turns into its vendor's headers and 429/403 body.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Union

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class RateLimit:
    """``requests`` allowed in any rolling window of ``per_seconds``."""

    requests: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            raise ValueError(f"rate limit must be >= 1 request per > 0 s, got {self}")

    @classmethod
    def parse(cls, spec: RateLimitSpec, default: RateLimit | None = None) -> RateLimit | None:
        """``None``/``False`` -> off; ``True`` -> the vendor default; ``(n, s)`` or ``"n/s"``."""
        if spec is None or spec is False:
            return None
        if spec is True:
            if default is None:
                raise ValueError("this emulator has no documented default rate limit; give (requests, seconds)")
            return default
        if isinstance(spec, RateLimit):
            return spec
        if isinstance(spec, str):
            requests, _, seconds = spec.partition("/")
            return cls(int(requests), float(seconds or "1"))
        requests_n, seconds_f = spec
        return cls(int(requests_n), float(seconds_f))


RateLimitSpec = Union[RateLimit, "tuple[int, float]", str, bool, None]


@dataclass(frozen=True)
class Decision:
    """What the limiters said about one request, with the numbers vendors put in headers."""

    allowed: bool
    policy: str | None = None  # "window" or "daily" when refused
    group: str = "default"
    limit: int | None = None  # window size in requests, None when no window applies
    remaining: int | None = None
    reset: float = 0.0  # seconds until the window frees a slot
    interval: float | None = None  # window length in seconds
    daily_limit: int | None = None
    daily_used: int = 0

    @property
    def daily_remaining(self) -> int | None:
        return None if self.daily_limit is None else max(self.daily_limit - self.daily_used, 0)


class _Window:
    """Rolling window as a log of accepted request times: exact, and O(1) amortised."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def prune(self, now: float) -> None:
        horizon = now - self.limit.per_seconds
        times = self.times
        while times and times[0] <= horizon:
            times.popleft()

    def reset_in(self, now: float) -> float:
        return max(self.times[0] + self.limit.per_seconds - now, 0.0) if self.times else 0.0


class Limits:
    """The window limiters (one per route group) and the daily quota of one emulator."""

    def __init__(self, daily_period: float = DAY_SECONDS) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._daily_limit: int | None = None
        self._daily_used = 0
        self._daily_period = daily_period
        self._day_started = time.monotonic()

    def set_window(self, group: str, limit: RateLimit | None) -> None:
        with self._lock:
            if limit is None:
                self._windows.pop(group, None)
            else:
                self._windows[group] = _Window(limit)

    def window(self, group: str) -> RateLimit | None:
        with self._lock:
            found = self._windows.get(group)
            return found.limit if found else None

    def set_daily(self, limit: int | None) -> None:
        with self._lock:
            self._daily_limit = limit

    @property
    def daily_limit(self) -> int | None:
        return self._daily_limit

    @property
    def daily_used(self) -> int:
        return self._daily_used

    def reset_daily(self) -> None:
        """Start a new "day" now (tests use this instead of waiting for midnight)."""
        with self._lock:
            self._daily_used = 0
            self._day_started = time.monotonic()

    def check(self, group: str = "default", cost: int = 1) -> Decision:
        """Admit or refuse one request; an admitted request is counted, a refused one is not."""
        now = time.monotonic()
        with self._lock:
            if now - self._day_started >= self._daily_period:
                self._daily_used, self._day_started = 0, now
            window = self._windows.get(group)
            if window is not None:
                window.prune(now)
            daily = self._daily_limit
            if daily is not None and self._daily_used + cost > daily:
                return self._decide(False, "daily", group, window, now)
            if window is not None and len(window.times) >= window.limit.requests:
                return self._decide(False, "window", group, window, now)
            if window is not None:
                window.times.append(now)
            self._daily_used += cost
            return self._decide(True, None, group, window, now)

    def _decide(self, allowed: bool, policy: str | None, group: str, window: _Window | None, now: float) -> Decision:
        if window is None:
            return Decision(allowed, policy, group, daily_limit=self._daily_limit, daily_used=self._daily_used)
        return Decision(
            allowed,
            policy,
            group,
            limit=window.limit.requests,
            remaining=max(window.limit.requests - len(window.times), 0),
            reset=window.reset_in(now),
            interval=window.limit.per_seconds,
            daily_limit=self._daily_limit,
            daily_used=self._daily_used,
        )
