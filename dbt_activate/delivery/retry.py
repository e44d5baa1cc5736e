"""Retries with exponential backoff and full jitter, and ``deliver()``: one batch, retried.

Destinations never retry on their own (DESIGN §5): they raise ``RetryableDestinationError`` for
throttling, 5xx, timeouts and dropped connections, and ``deliver()`` decides whether and when to try
again. Any other ``DestinationError`` (bad credentials, a rejected request, ``QuotaExhaustedError``)
is raised at once: repeating it would only spend the vendor's quota.

Full jitter (a uniform delay between 0 and the exponential cap, as in the AWS architecture blog's
"Exponential Backoff And Jitter") spreads the retries of concurrent batches, so they do not return
together and trip the same limit again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dbt_activate.delivery.context import using_limiter
from dbt_activate.errors import ConfigError, RetryableDestinationError

if TYPE_CHECKING:
    from dbt_activate.core.types import Batch, BatchResult, BatchWriter, SyncTarget
    from dbt_activate.delivery.ratelimit import RateLimiter


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a batch that failed for a passing reason.

    ``max_attempts`` counts the first try. A vendor's ``Retry-After`` is always honoured (the delay
    is never shorter), but one longer than ``max_retry_after`` seconds is not waited for: the error
    is raised, the rows stay unacknowledged and go out with the next run.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: bool = True
    max_retry_after: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigError("retry delays must not be negative")

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Pause after failed attempt number ``attempt`` (1-based), before the vendor's opinion."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return cap * rng() if self.jitter else cap

    def delay(self, attempt: int, retry_after: float | None = None,
              rng: Callable[[], float] = random.random) -> float:
        """Pause after failed attempt ``attempt``: the backoff, but never less than ``retry_after``."""
        pause = self.backoff(attempt, rng)
        return pause if retry_after is None else max(pause, retry_after)

    def gives_up(self, attempt: int, retry_after: float | None = None) -> bool:
        """True when attempt ``attempt`` was the last one worth making."""
        if attempt >= self.max_attempts:
            return True
        return retry_after is not None and retry_after > self.max_retry_after


OnRetry = Callable[[int, BaseException, float], None]


async def deliver(
    destination: BatchWriter,
    target: SyncTarget,
    batch: Batch,
    *,
    limiter: RateLimiter | None,
    policy: RetryPolicy,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BatchResult:
    """Write ``batch`` through ``destination``, retrying passing failures per ``policy``.

    ``limiter`` is made the current limiter while the destination writes: every request of its
    ``HttpSession`` waits for it (vendors count requests, not batches, and one batch may take
    several). Destinations that do not use ``HttpSession`` call ``await current_limiter().acquire()``
    themselves. ``on_retry(attempt, error, delay)`` is called before each pause, ``attempt`` being
    the number (1-based) of the attempt that failed. The last ``RetryableDestinationError`` is raised
    when the policy gives up; other errors are raised at once.
    """
    attempt = 1
    with using_limiter(limiter):
        while True:
            try:
                return await destination.write(target, batch)
            except RetryableDestinationError as exc:
                if policy.gives_up(attempt, exc.retry_after):
                    raise
                if limiter is not None and exc.retry_after is not None:
                    # The vendor asked everyone to wait, not just this batch.
                    limiter.throttled(exc.retry_after)
                pause = policy.delay(attempt, exc.retry_after)
                if on_retry is not None:
                    on_retry(attempt, exc, pause)
                await sleep(pause)
                attempt += 1
