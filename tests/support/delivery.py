"""Helpers for the delivery tests: a virtual clock, a scripted destination, a vendor that counts, a
recording HTTP handler, batches written as a run writes them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.base import Destination as _Destination


class FakeClock:
    """Virtual time: ``sleep`` moves the clock instead of waiting, so hours of limits take no time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


class SlidingWindowVendor:
    """Counts arrivals like a vendor enforcing ``requests`` per rolling ``per_seconds``."""

    def __init__(self, requests: int, per_seconds: float, clock: Callable[[], float]) -> None:
        self.requests = requests
        self.per_seconds = per_seconds
        self.clock = clock
        self.accepted: deque[float] = deque()
        self.accepted_times: list[float] = []
        self.throttled_times: list[float] = []

    def preload(self, count: int) -> None:
        """Requests another process made just now, which our limiter cannot know about."""
        self.accepted.extend([self.clock()] * count)

    def arrive(self) -> tuple[bool, int, float]:
        """(accepted, remaining in window, seconds until a slot frees) for one request now."""
        now = self.clock()
        while self.accepted and self.accepted[0] <= now - self.per_seconds:
            self.accepted.popleft()
        if len(self.accepted) >= self.requests:
            self.throttled_times.append(now)
            return False, 0, self.accepted[0] + self.per_seconds - now
        self.accepted.append(now)
        self.accepted_times.append(now)
        return True, self.requests - len(self.accepted), 0.0


def target(mode: Mode = Mode.UPSERT, run_id: str = "run-1") -> SyncTarget:
    return SyncTarget(
        sync_name="people__hook__contacts",
        object="contacts",
        mode=mode,
        fields=(FieldSpec("id", "id"), FieldSpec("email", "email")),
        identity=("id",),
        run_id=run_id,
    )


def batch(keys: Sequence[str] = ("1", "2"), operation: Operation = Operation.UPSERT) -> Batch:
    return Batch(operation, [Record(k, {"id": int(k), "email": f"u{k}@example.com"}) for k in keys])


class ScriptedDestination(_Destination):
    """``write`` raises the scripted errors in order, then returns ``result``."""

    kind = "scripted"

    def __init__(self, errors: Sequence[BaseException] = (), result: BatchResult | None = None) -> None:
        super().__init__("scripted", {"type": "scripted"})
        self.errors = list(errors)
        self.result = result or BatchResult()
        self.calls = 0
        self.seen_limiters: list[object] = []

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        from dbt_activate.delivery import current_limiter

        self.calls += 1
        self.seen_limiters.append(current_limiter())
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def write_batches(destination: _Destination, target: SyncTarget, *batches: Batch,
                  open_first: bool = True) -> list[BatchResult]:
    """Write ``batches`` in turn in a fresh event loop, as a run does: the destination opened for
    ``target`` first (not with ``open_first=False``: tests of ``write`` alone) and closed at the end."""
    async def run() -> list[BatchResult]:
        if open_first:
            await destination.open(target)
        try:
            return [await destination.write(target, batch) for batch in batches]
        finally:
            await destination.close()

    return asyncio.run(run())


Handler = Callable[[httpx.Request], httpx.Response]


def recording(*responses: httpx.Response, status: int = 200, json: Any = None) -> tuple[Handler, list[httpx.Request]]:
    """An ``httpx.MockTransport`` handler answering ``responses`` in order, then ``status`` with the JSON
    body ``json`` (no body when None) every time; and the list of the requests it received."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if queue:
            return queue.pop(0)
        return httpx.Response(status, json=json) if json is not None else httpx.Response(status)

    return handler, seen
