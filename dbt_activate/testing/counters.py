"""Request counters of an emulator, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Counts:
    """A consistent snapshot of an emulator's counters.

    ``requests`` counts every request read (dropped and throttled ones too); ``throttled`` the
    responses refused by a rate limit or quota (429, or Salesforce's 403 REQUEST_LIMIT_EXCEEDED),
    injected ``throttle`` faults included; ``records`` the records received by write endpoints
    (counted when the request reaches its handler); ``faults`` the injected faults that fired.
    """

    requests: int = 0
    throttled: int = 0
    records: int = 0
    faults: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)


class Counters:
    """Thread-safe counters behind ``Emulator.counters``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = self._throttled = self._records = self._faults = 0
            self._by_path: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()

    def request(self, path: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_path[path] += 1

    def response(self, status: int, throttled: bool = False) -> None:
        with self._lock:
            self._by_status[status] += 1
            if throttled:
                self._throttled += 1

    def records(self, count: int) -> None:
        with self._lock:
            self._records += count

    def fault(self) -> None:
        with self._lock:
            self._faults += 1

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(
                self._requests,
                self._throttled,
                self._records,
                self._faults,
                dict(self._by_path),
                dict(self._by_status),
            )
